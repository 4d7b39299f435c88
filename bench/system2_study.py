"""Does System 2 earn its compute? A grid of training runs on the offline pystdlib corpus, with several seeds each.

Each configuration is trained with this project's trainer (`small` preset unless said, seed recipe unless said) for
`--steps` steps per seed, one run directory per (configuration, seed) under `--root`. After training, each run is
measured and appended to the results JSON (written atomically after every run):

- `val_bpc`: the comparison protocol (the first 64 windows of 1,024 bytes of val) of the final weights;
- `test_bpc`: the same windows of test (recipes are chosen on val; a verdict is read on test);
- `full_val_bpc`: every whole 1,024-byte window of the val split;
- `depth_sweep`: protocol BPC at test-time depths T' = 0 .. max(4T, 4);
- `halting`: protocol BPC and mean steps per patch at several halting thresholds (depth up to 4T), T > 0 only;
- `context`: BPC on the first 256 KB of val in windows of 1, 4 and 16 KB (the model was trained on 1 KB windows);
- `train_bytes`, `train_flops`: bytes read in training, and the training FLOPs estimated from the model's shapes
  (`train_flops`: `agiformer.gpt.forward_flops`, the multiply-adds x 2 of every matrix product of a forward pass per
  byte, attention included, as the model chapters count them; a training step costs 3x its forward (backward ~2x),
  except System 2 steps outside the truncated backpropagation, which cost 1x; the expected depth is used for a
  random-depth sampler). Runs recorded before this count moved into the package (the JSON's first 18) used an
  older count that took W keys per patch and half the attention products: their `train_flops` are about 1% lower.

A (configuration, seed) whose record is already in the JSON is skipped, so the grid can be run a piece at a time
across sessions (`--only NAME`, `--seeds 0,1`), and by several processes at once (records are merged into the JSON
under a file lock). Records made before `test_bpc` was measured have none. `--quick` runs a tiny version of the same grid (tiny preset, a few steps, one seed) into a temporary directory, never over the committed results.

    python bench/system2_study.py [--steps 600] [--seeds 0,1,2] [--only T3-fixed,T0] [--out bench/results/system2_study.json]
    python bench/system2_study.py --quick
"""
import argparse, json, os, tempfile, time
from pathlib import Path

from _harness import cpu_model, merge_record

import torch

from agiformer.core import AGIConfig
from agiformer.checkpoint import load_model
from agiformer.data import load_corpus
from agiformer.gpt import forward_flops
from agiformer.evaluate import evaluate_bpc, protocol_bpc
from agiformer.recipe import TrainConfig
from agiformer.runs import read_metrics
from agiformer.trainer import Trainer

# name: (model changes, training changes, what it is)
GRID = {
    'T3-fixed': (dict(), dict(), 'T = 3 fixed: the original'),
    'T0': (dict(thinking_steps=0), dict(), 'no System 2, same layers: equal steps'),
    'T0-deeper': (dict(thinking_steps=0, n_layers='+2'), dict(), 'no System 2, two more layers: training FLOPs of T3-fixed (+6%)'),
    'T3-random': (dict(), dict(thinking_sampler='poisson_lognormal', thinking_backprop=2),
                  'random depth (mean 3), gradients through the last 2 steps'),
    'T3-random-inject': (dict(thinking_inject=True), dict(thinking_sampler='poisson_lognormal', thinking_backprop=2),
                         'random depth + input injection'),
    'recommended': (dict(dropout=0.0), dict(lr=2e-3, schedule='cosine', warmup_steps=50),
                    'T = 3 fixed, the recipe for this budget (bench/recipe_sweep.py): lr 2e-3, 50 warm-up steps, cosine, no dropout'),
}
HALT_THRESHOLDS = (0.0, 0.01, 0.03, 0.1, 0.3)


def expected_depth(tc: TrainConfig, T: int) -> float:
    "Mean System 2 depth of a training step under the recipe's sampler."
    return float(T)      # every sampler here has mean T (see `recipe.train_thinking`)


def train_flops(mc: AGIConfig, tc: TrainConfig) -> float:
    "Estimated training FLOPs of the whole run (see the module docstring)."
    depth = expected_depth(tc, mc.thinking_steps)
    K = depth if tc.thinking_backprop is None else min(depth, tc.thinking_backprop)
    think = forward_flops(mc, tc.seq_len, 1) - forward_flops(mc, tc.seq_len, 0)         # one System 2 step, per byte
    per_byte = 3 * forward_flops(mc, tc.seq_len, depth) - 2 * (depth - K) * think      # steps without gradients: forward only
    return per_byte * tc.steps * tc.batch_size * tc.grad_accum * tc.seq_len


def configure(name: str, preset: str, steps: int, seed: int, quick: bool):
    "(AGIConfig, TrainConfig) of configuration `name`."
    m_over, t_over, _ = GRID[name]
    base_t = dict(data='pystdlib', steps=steps, seed=seed, device='cpu', log_every=max(1, steps // 20),
                  val_every=steps, val_windows=4 if quick else 64)
    if quick: base_t.update(seq_len=64, batch_size=4)
    tc = TrainConfig(**{**base_t, **t_over})
    if m_over.get('n_layers') == '+2':               # two more layers than the preset's (small: 6)
        m_over = {**m_over, 'n_layers': AGIConfig.from_preset(preset).n_layers + 2}
    return AGIConfig.from_preset(preset, **m_over), tc


CONTEXT_BYTES = 262_144     # the same first 256 KB of val, cut into windows of each length


def context_bpc(model, corpus, quick: bool) -> dict:
    "BPC on the first 256 KB of val in windows of 1, 4 and 16 KB (positions past the trained 1 KB: the model's scheme)."
    sizes, total = ((64, 256), 1024) if quick else ((1024, 4096, 16384), CONTEXT_BYTES)
    return {str(w): evaluate_bpc(model, corpus.val, window=w, n_windows=total // w, batch_size=max(1, 8192 // w)).bpc
            for w in sizes}


def measure(run: Path, name: str, seed: int, mc: AGIConfig, tc: TrainConfig, corpus, quick: bool) -> dict:
    "The record of one finished run."
    model = load_model(run / 'last')
    T = mc.thinking_steps
    nw = 4 if quick else None
    val = (evaluate_bpc(model, corpus.val, window=1024 if not quick else 64, n_windows=4) if quick
           else protocol_bpc(model, corpus.val))
    test = (evaluate_bpc(model, corpus.test, window=64, n_windows=4) if quick else protocol_bpc(model, corpus.test))
    full = evaluate_bpc(model, corpus.val, window=1024 if not quick else 64, n_windows=nw, batch_size=8)
    ev = lambda **kw: (evaluate_bpc(model, corpus.val, window=64, n_windows=4, **kw) if quick
                       else protocol_bpc(model, corpus.val, **kw))
    sweep = {t: ev(thinking_steps=t).bpc for t in range(max(4 * T, 4) + 1)}
    halting = ([dict(threshold=e, **{k: v for k, v in ev(thinking_steps=4 * T, halt_threshold=e).to_dict().items()
                                      if k in ('bpc', 'mean_thinking_steps')}) for e in HALT_THRESHOLDS] if T else [])
    tr = [r for r in read_metrics(run) if r['kind'] == 'train']
    return dict(context=context_bpc(model, corpus, quick), name=name, seed=seed, what=GRID[name][2], config=mc.to_dict(), train=tc.to_dict(), steps=tr[-1]['step'],
                train_bytes=tr[-1]['bytes'], train_flops=train_flops(mc, tc), seconds=tr[-1]['time'],
                params=model.num_params(), val_bpc=val.bpc, test_bpc=test.bpc, full_val_bpc=full.bpc, full_val_windows=full.n_windows,
                depth_sweep={str(k): v for k, v in sweep.items()}, halting=halting)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--root', default='runs/system2', help='run directories go here')
    ap.add_argument('--out', default='bench/results/system2_study.json')
    ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--seeds', default='0,1,2')
    ap.add_argument('--only', default=None, help='comma-separated configuration names (default: the whole grid)')
    ap.add_argument('--preset', default='small')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--add-context', action='store_true', help='only measure `context` for records without it (from their run directories)')
    ap.add_argument('--quick', action='store_true', help='tiny preset, 6 steps, one seed, a temporary directory')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = list(GRID) if a.only is None else a.only.split(',')
    bad = [n for n in names if n not in GRID]
    if bad: raise SystemExit(f"unknown configurations {bad}; the grid is {list(GRID)}")
    seeds = [int(s) for s in a.seeds.split(',')]
    if a.quick:
        tmp = Path(tempfile.mkdtemp(prefix='system2-quick-'))
        a.root, a.out, a.steps, a.preset, seeds = str(tmp / 'runs'), str(tmp / 'system2_study.json'), 6, 'tiny', [0]
    out = Path(a.out)
    meta = dict(machine=cpu_model(), cores=os.cpu_count(), torch=torch.__version__, grid={n: GRID[n][2] for n in GRID})
    done = {(r['name'], r['seed']) for r in (json.loads(out.read_text())['runs'] if out.exists() else [])}
    corpus = load_corpus('pystdlib', progress=False)
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}; {a.preset}, {a.steps} steps")
    if a.add_context:               # records made before `context` was measured: measure it from their run directories
        for r in (json.loads(out.read_text())['runs'] if out.exists() else []):
            run = Path(a.root) / f"{r['name']}-s{r['seed']}"
            if 'context' in r or r['name'] not in names or not (run / 'last').exists(): continue
            r['context'] = context_bpc(load_model(run / 'last'), corpus, a.quick)
            merge_record(out, r, ('name', 'seed'), **meta)
            print(f"[{r['name']} seed {r['seed']}] context: {r['context']}", flush=True)
        return
    for name in names:
        for seed in seeds:
            run = Path(a.root) / f"{name}-s{seed}"
            if (name, seed) in done:                 # its record is in: the run was measured (its directory may be gone)
                print(f"[{name} seed {seed}] done: skipped"); continue
            mc, tc = configure(name, a.preset, a.steps, seed, a.quick)
            t0 = time.perf_counter()
            Trainer(mc, tc, run, quiet=True, overwrite=True).fit()
            rec = measure(run, name, seed, mc, tc, corpus, a.quick)
            rec['threads'] = torch.get_num_threads()
            merge_record(out, rec, ('name', 'seed'), **meta)
            print(f"[{name} seed {seed}] val {rec['val_bpc']:.4f}, test {rec['test_bpc']:.4f}, full val {rec['full_val_bpc']:.4f}, "
                  f"{rec['train_flops']:.3g} FLOPs, {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"results: {out}")


if __name__ == '__main__':
    main()
