"""The 600-step run (chapter 09b_train), with this project's trainer, and the same-run speed of the two attention forms.

small preset (d=256, 4 layers, T=3), the original's recipe (`seed`: AdamW 3e-4, wd 0.01, 100-step warm-up, clip 0.5,
batch 4 x 1024), pystdlib, CPU. Prints seconds per step, val BPC by the comparison protocol at 200/400/600 (the
trainer's validation is exactly that protocol: the first 64 windows of 1,024 bytes of val) and the test BPC at 600.
Because seconds per step depend on the machine and its load on the day, it then times, in the same process, a few
training steps of the same model with the original's attention algorithms (`attn_impl='reference'`) and with this
project's kernels, and prints that ratio too. Every figure it prints is measured by this run.

A full run writes bench/results/train_small_600.json (`--out` elsewhere), with the machine, the load average at the
start, the command and the date. `--quick` trains the tiny preset for 6 steps of 4 x 64 bytes into a temporary
directory and writes nothing unless given `--out` (it checks that the script runs; its figures mean nothing).

    python bench/train_small_600.py [--run-dir runs/bench-small-600] [--steps 600] [--threads 2] [--out FILE]
    python bench/train_small_600.py --quick [--out FILE]
"""
import argparse, statistics, tempfile, time
from pathlib import Path

import torch

from _harness import machine_note, run_meta, result_path, write_result
from agiformer.core import AGIConfig
from agiformer.checkpoint import load_model
from agiformer.data import WindowSampler, load_corpus
from agiformer.evaluate import PROTOCOL, evaluate_bpc
from agiformer.model import AGIFORMER
from agiformer.recipe import TrainConfig, lm_loss
from agiformer.runs import read_metrics
from agiformer.trainer import Trainer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run-dir', default='runs/bench-small-600', help='the training run (replaced if it holds one)')
    ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--compare_steps', type=int, default=5, help='timed steps per implementation for the same-run ratio (0: skip)')
    ap.add_argument('--quick', action='store_true', help='tiny preset, 6 steps of 4 x 64 bytes, a temporary run directory')
    ap.add_argument('--out', default=None, help='results JSON (default: bench/results/train_small_600.json; none with --quick)')
    a = ap.parse_args()
    meta = run_meta(a.threads)
    torch.set_num_threads(a.threads)
    preset, seq_len, val_every, val_windows = 'small', 1024, 200, 64
    if a.quick:
        preset, seq_len, a.steps, val_every, val_windows, a.compare_steps = 'tiny', 64, 6, 3, 2, min(a.compare_steps, 1)
        a.run_dir = tempfile.mkdtemp(prefix='train-small-600-quick-')
    tc = TrainConfig(data='pystdlib', steps=a.steps, val_every=val_every, log_every=10, device='cpu', val_windows=val_windows,
                     seq_len=seq_len)
    t0 = time.perf_counter()
    Trainer(AGIConfig.from_preset(preset), tc, a.run_dir, overwrite=True).fit()
    wall = time.perf_counter() - t0
    recs = read_metrics(a.run_dir)
    tr = [r for r in recs if r['kind'] == 'train']
    val = {r['step']: r['bpc'] for r in recs if r['kind'] == 'val'}
    s_per_step = tr[-1]['time'] / tr[-1]['step']
    corpus = load_corpus('pystdlib')
    proto = dict(PROTOCOL, n_windows=2) if a.quick else PROTOCOL   # the comparison protocol: 64 windows of 1,024 bytes
    test = evaluate_bpc(load_model(Path(a.run_dir) / 'last'), corpus.test, **proto).bpc
    torch.manual_seed(0)
    init = evaluate_bpc(AGIFORMER.from_preset(preset), corpus.val, **proto).bpc
    print(f"\nmachine: {machine_note(a.threads)}")
    print(f"{'seconds / step':24s}{s_per_step:10.3f}")
    print(f"{'val BPC init':24s}{init:10.3f}")
    for s in sorted(val): print(f"{f'val BPC step {s}':24s}{val[s]:10.3f}")
    print(f"{'test BPC (last)':24s}{test:10.3f}")
    cmp = compare_impls(a.compare_steps, preset, seq_len) if a.compare_steps else {}
    if cmp:
        print(f"same run, {a.compare_steps} steps each (median): original's algorithms {cmp['reference']:.3f} s/step, "
              f"this project's kernels {cmp['fast']:.3f} s/step: {cmp['reference'] / cmp['fast']:.2f}x")
    print(f"wall time {wall:.0f} s")
    write_result(result_path(__file__, a.out, a.quick),
                 {**meta, 'preset': preset, 'recipe': 'seed', 'data': 'pystdlib', 'steps': a.steps, 'seq_len': seq_len,
                  'batch_size': tc.batch_size, 's_per_step': s_per_step, 'val': {str(k): v for k, v in sorted(val.items())},
                  'init_val_bpc': init, 'test_bpc': test, 'protocol_windows': proto['n_windows'], 'wall_s': wall,
                  'compare_steps': a.compare_steps, 'same_run_s_per_step': cmp})


def compare_impls(steps: int, preset: str = 'small', seq_len: int = 1024) -> dict:
    "Median seconds per training step (4 windows of `seq_len` bytes of pystdlib) with each attention implementation."
    train = load_corpus('pystdlib').train
    out = {}
    for impl in ('reference', 'fast'):
        torch.manual_seed(0)
        m = AGIFORMER.from_preset(preset, attn_impl=impl).train()
        P = m.config.patch_size
        opt = torch.optim.AdamW(m.parameters(), lr=3e-4, weight_decay=0.01)
        sampler, times = WindowSampler(train, seq_len + P, 4, seed=0), []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            lm_loss(m, sampler.next(), P).backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
            opt.step(); opt.zero_grad(set_to_none=True)
            if i: times.append(time.perf_counter() - t0)
        out[impl] = statistics.median(times)
    return out

if __name__ == '__main__':
    main()
