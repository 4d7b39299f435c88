"""Does more context make predictions worse? BPC of the same validation bytes read in windows of 1, 4, 16 and 64 KB.

Trains (or reuses) `small` models on the offline pystdlib corpus with the seed recipe, then scores the first
`--eval_bytes` bytes (default 262,144) of the validation split in non-overlapping windows of each size, each window
scored on its own (x = w[:-P], y = w[P:], eval mode, float64 sums), once per position scheme:

- `protocol`: the comparison protocol's model: 600 steps of 4 windows of 1,024 bytes. Its positions 0..255 are the
  only ones it has seen.
- `offsets`: the same recipe with `position_offsets` so that a window's first patch starts anywhere in 0..3,840:
  the model sees every position up to 16 KB (4,096 patches) during training, on the same bytes per step.
- `long`: the same bytes per step as one window of 4,096 bytes (batch 1), so that the model learns to use 4 KB of
  context, not only the positions.

Position schemes (`AGIConfig.positions`): `absolute` (positions as they are: what the model did before the scheme
existed), `wrap` (modulo the trained context; the default), `cap` (clamped to the last trained position).

A run directory that already holds a finished run is reused, so the script can be continued; `--quick` trains tiny
models for a few steps into a temporary directory and scores 16 KB (checks that the script runs; figures mean
nothing). The machine (CPU model, cores, torch) is printed with the results.

    python bench/context_length.py [--root runs/context] [--models protocol,offsets,long] [--steps 600]
    python bench/context_length.py --quick
"""
import argparse, json, os, tempfile, time
from pathlib import Path

from _harness import cpu_model

import torch

from agiformer.core import AGIConfig
from agiformer.checkpoint import load_model
from agiformer.data import load_corpus
from agiformer.evaluate import evaluate_bpc
from agiformer.recipe import TrainConfig
from agiformer.runs import read_metrics
from agiformer.trainer import Trainer

SCHEMES = ('absolute', 'wrap', 'cap')
MODELS = {  # name: (TrainConfig changes, one line of what it is)
    'protocol': (dict(), 'seed recipe, 4 x 1,024 bytes, positions from 0'),
    'offsets': (dict(position_offsets=3840), 'seed recipe, 4 x 1,024 bytes, random start positions 0..3,840 patches'),
    'long': (dict(batch_size=1, seq_len=4096), 'seed recipe, 1 x 4,096 bytes (same bytes per step)'),
}


def train(name: str, root: Path, steps: int, preset: str, quick: bool) -> Path:
    "Train model `name` into root/name unless a finished run is there; its run directory."
    out = root / name
    recs = read_metrics(out) if (out / 'metrics.jsonl').exists() else []
    if any(r['kind'] == 'train' and r['step'] >= steps for r in recs) and (out / 'last').exists():
        print(f"[{name}] reusing the finished run in {out}")
        return out
    changes, what = MODELS[name]
    if quick and 'seq_len' in changes: changes = dict(changes, seq_len=256)
    if quick and 'position_offsets' in changes: changes = dict(changes, position_offsets=192)
    tc = TrainConfig(data='pystdlib', steps=steps, device='cpu', log_every=max(1, steps // 10),
                     val_every=steps if quick else 200, val_windows=4 if quick else 64,
                     **(dict(seq_len=64, batch_size=4) if quick else {}) | changes)
    print(f"[{name}] training {preset}: {what}, {steps} steps -> {out}")
    Trainer(AGIConfig.from_preset(preset), tc, out, quiet=True, overwrite=True).fit()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--root', default='runs/context', help='where the run directories go')
    ap.add_argument('--models', default='protocol,offsets,long')
    ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--eval_bytes', type=int, default=262144)
    ap.add_argument('--windows', default='1024,4096,16384,65536')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--quick', action='store_true', help='tiny models, a few steps, a temporary directory')
    ap.add_argument('--json', default=None, help='also write the results here')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    preset, root = 'small', Path(a.root)
    if a.quick:
        preset, a.steps, a.eval_bytes, a.windows = 'tiny', 8, 16384, '256,1024,16384'
        root = Path(tempfile.mkdtemp(prefix='context-quick-'))
    windows = [int(w) for w in a.windows.split(',')]
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}, {a.threads} threads")
    val = load_corpus('pystdlib', progress=False).val[:a.eval_bytes]
    results = []
    for name in a.models.split(','):
        run = train(name, root, a.steps, preset, a.quick)
        for scheme in SCHEMES:
            model = load_model(run / 'last', positions=scheme)
            row = dict(model=name, scheme=scheme, trained_context=model.config.context_bytes)
            for w in windows:
                t = time.perf_counter()
                r = evaluate_bpc(model, val, window=w, n_windows=a.eval_bytes // w, batch_size=max(1, 8192 // w))
                row[w] = r.bpc
                row[f'{w}_s'] = time.perf_counter() - t
            results.append(row)
            print(f"[{name}] {scheme:9s} " + '  '.join(f"{w // 1024 if w >= 1024 else w}{'K' if w >= 1024 else 'B'}: "
                                                     f"{row[w]:.3f}" for w in windows), flush=True)
    head = '| model | positions | ' + ' | '.join(f"{w:,} B" for w in windows) + ' |'
    print(f"\nBPC on the first {a.eval_bytes:,} bytes of pystdlib val, windows scored on their own "
          f"({preset}, {a.steps} steps each):\n")
    print(head); print('| --- ' * (2 + len(windows)) + '|')
    for r in results:
        print(f"| {r['model']} | {r['scheme']} | " + ' | '.join(f"{r[w]:.3f}" for w in windows) + ' |')
    out = dict(machine=cpu_model(), cores=os.cpu_count(), torch=torch.__version__, preset=preset, steps=a.steps,
               eval_bytes=a.eval_bytes, windows=windows, results=[{str(k): v for k, v in r.items()} for r in results])
    if a.json: Path(a.json).write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == '__main__':
    main()
