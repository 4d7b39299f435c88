"""The study, second edition: AGIFORMER against a byte-level GPT of equal training compute, at two budgets.

Configurations (`CONFIGS`), each trained with this project's trainer on the offline pystdlib corpus:

- `T3`: the `small` AGIFORMER, T = 3, with the `short` recipe's model and System 2 settings (no dropout, System 2 from
  the identity at a tenth of the rate);
- `T0`: the same without System 2;
- `GPT`: the `gpt-small` byte-level GPT (chapter 05b), training FLOPs within 5% of `T3`'s;
- `T3-block`: a System 2 that reads its context (`thinking_mode='block'`, chapter 03: each step a weight-shared hybrid
  block over all patch latents, the backbone latent injected), trained with random depth (mean 3) and gradients
  through the last 2 steps, on 3 backbone layers instead of 4 so that its training FLOPs are within 2% of `T3`'s.

Budgets (`BUDGETS`): B1 is 600 steps of 4 x 1,024 bytes (the `short` recipe's length), B2 four times as many steps;
each with warm-up and a cosine decay to a tenth set for its length. Every configuration gets the same learning-rate
sweep at each budget (`LRS`, seed 0, the best chosen on validation; where the best is at the sweep's edge, the sweep goes
one factor of 2 further that way, at most `MORE[budget]` times: twice at B1, not at B2), then more seeds at the chosen
rate (`SEEDS`).

One record per run in the results JSON (merged atomically under a file lock): `budget`, `name`, `lr`, `seed`,
`stage` (sweep or seeds), `config`, `train`, `val_bpc` and `test_bpc` (the comparison protocol's 64 windows of val
and of test), `val_curve`, `train_flops` (`agiformer.gpt.forward_flops`, 3 forward passes per step, as
`bench/system2_study.py` counts), `seconds` (training time), `bytes_per_s` (training bytes per second), `threads`,
`machine`, `params`, and for recurrent models `depth_sweep` (val protocol BPC at T' = 0 .. 4T), `test_bpc_2T` (test at
T' = 2T) and `halting` / `halting_test` (val / test BPC and steps per patch at the halting thresholds of
`bench/system2_study.py`, depth up to 4T; not for `T3-block`, which does not halt).

A run whose record is in the JSON is skipped; a run that was stopped (Ctrl-C, SIGTERM) resumes from its last
checkpoint when the study is run again. Wall-clock figures compare only runs made the same way: run the study as two
processes of one thread each (one per core), as the committed results were.

    python bench/baseline_study.py --budget B1 [--only T3,T0,GPT] [--threads 1]   # every sweep, then the seeds seed by seed
    python bench/baseline_study.py --budget B1 --stage sweep --only GPT
    python bench/baseline_study.py --quick
"""
import argparse, json, os, statistics, tempfile, time
from pathlib import Path

from _harness import cpu_model, merge_record
from system2_study import HALT_THRESHOLDS, train_flops

import torch

from agiformer.core import AGIConfig
from agiformer.checkpoint import load_model
from agiformer.data import load_corpus
from agiformer.evaluate import evaluate_bpc, protocol_bpc
from agiformer.recipe import recipe_model, train_recipe
from agiformer.runs import read_metrics
from agiformer.trainer import Trainer

# name: (preset, model changes, training changes, what it is)
CONFIGS = {
    'T3': ('small', dict(recipe_model('short')), dict(), 'AGIFORMER small, T = 3 (System 2 from the identity at 0.1x the rate)'),
    'T0': ('small', dict(recipe_model('short'), thinking_steps=0), dict(), 'AGIFORMER small without System 2 (T = 0)'),
    'GPT': ('gpt-small', dict(), dict(), 'byte-level GPT (gpt-small), training FLOPs within 5% of T3'),
    'T3-block': ('small', dict(recipe_model('short'), n_layers=3, thinking_mode='block', thinking_inject=True),
                 dict(thinking_sampler='poisson_lognormal', thinking_backprop=2),
                 'AGIFORMER with a System 2 that reads its context (a hybrid block per step, input injected), 3 backbone '
                 'layers, random depth (mean 3) with gradients through the last 2 steps: training FLOPs within 2% of T3'),
}
BUDGETS = {'B1': dict(steps=600, warmup_steps=50), 'B2': dict(steps=2400, warmup_steps=200)}   # 4 x 1,024 bytes a step
LRS = (5e-4, 1e-3, 2e-3)                # the learning-rate sweep, the same for every configuration and budget
MORE = {'B1': 2, 'B2': 0}               # at most this many rates beyond LRS, while the best is at the edge (B2: the
                                        # three rates only, for time: each B2 run is 35-45 min on one core)
SEEDS = {'B1': (0, 1, 2, 3, 4), 'B2': (0, 1)}


def configure(name: str, budget: str, lr: float, seed: int, quick: bool):
    "(AGIConfig, TrainConfig) of one run."
    preset, m_over, t_over, _ = CONFIGS[name]
    b = BUDGETS[budget]
    t = dict(data='pystdlib', steps=b['steps'], warmup_steps=b['warmup_steps'], lr=lr, seed=seed, device='cpu',
             log_every=10, val_every=b['steps'] // 6, val_windows=64, stall_check=0)
    if quick: t.update(steps=6, warmup_steps=2, seq_len=64, log_every=2, val_every=3, val_windows=4, val_window=256)
    mc = AGIConfig.from_preset(preset, **m_over)
    if quick: mc = mc.replace(d_model=32, n_layers=1, num_heads=4)
    return mc, train_recipe('short', **t, **t_over)


def measure(run: Path, budget: str, name: str, lr: float, seed: int, stage: str, mc, tc, corpus, quick: bool) -> dict:
    "The record of one finished run."
    model = load_model(run / 'last')
    ev = ((lambda split, **kw: evaluate_bpc(model, split, window=256, n_windows=4, **kw)) if quick
          else (lambda split, **kw: protocol_bpc(model, split, **kw)))
    T = mc.thinking_steps
    recs = read_metrics(run)
    train = [r for r in recs if r['kind'] == 'train']
    rec = dict(budget=budget, name=name, lr=lr, seed=seed, stage=stage, what=CONFIGS[name][3], config=mc.to_dict(),
               train=tc.to_dict(), val_bpc=ev(corpus.val).bpc, test_bpc=ev(corpus.test).bpc,
               val_curve=[[r['step'], r['bpc']] for r in recs if r['kind'] == 'val'], train_flops=train_flops(mc, tc),
               seconds=train[-1]['time'], bytes_per_s=train[-1]['bytes'] / train[-1]['time'],
               threads=torch.get_num_threads(), machine=cpu_model(), params=model.num_params())
    if T:
        rec['depth_sweep'] = {str(d): ev(corpus.val, thinking_steps=d).bpc for d in range(4 * T + 1)}
        rec['test_bpc_2T'] = ev(corpus.test, thinking_steps=2 * T).bpc      # the verdict on depth is read on test
    if T and mc.thinking_mode == 'mlp':           # (a System 2 that reads its context does not halt)
        halt = lambda split, e: {k: v for k, v in ev(split, thinking_steps=4 * T, halt_threshold=e).to_dict().items()
                                 if k in ('bpc', 'mean_thinking_steps')}
        rec['halting'] = [dict(threshold=e, **halt(corpus.val, e)) for e in HALT_THRESHOLDS]
        rec['halting_test'] = [dict(threshold=e, **halt(corpus.test, e)) for e in HALT_THRESHOLDS]
    return rec


def sweep_rates(val: dict, budget: str) -> list:
    "The rates the sweep runs, given `val` ({rate: val BPC} of those run so far): LRS, extended by a factor of 2 while the best is at an edge, at most `MORE[budget]` times."
    rates = list(LRS)
    while all(lr in val for lr in rates) and len(rates) < len(LRS) + MORE[budget]:
        best = min(rates, key=val.get)
        if best == rates[-1]: rates.append(rates[-1] * 2)
        elif best == rates[0]: rates.insert(0, rates[0] / 2)
        else: break
    return rates


def sweep_val(runs: list, budget: str, name: str) -> dict:
    "{rate: val BPC} of the sweep's runs (seed 0) of (budget, name)."
    return {r['lr']: r['val_bpc'] for r in runs if (r['budget'], r['name'], r['seed']) == (budget, name, 0)}


def chosen_lr(runs: list, budget: str, name: str) -> float|None:
    "The sweep's rate with the lowest val BPC for (budget, name); None until every rate of the sweep has run."
    val = sweep_val(runs, budget, name)
    rates = sweep_rates(val, budget)
    if any(lr not in val for lr in rates): return None
    return min(rates, key=val.get)


def train_one(root: Path, out: Path, meta: dict, corpus, budget: str, name: str, lr: float, seed: int, stage: str,
              quick: bool) -> bool:
    "Train and measure one run (resuming a stopped one); False if it was stopped before the end."
    mc, tc = configure(name, budget, lr, seed, quick)
    run = root / f"{budget}-{name}-lr{lr:g}-s{seed}"
    t0 = time.perf_counter()
    try: trainer = Trainer(mc, tc, run, quiet=True, resume=True)         # a stopped run goes on from its last checkpoint
    except (OSError, ValueError): trainer = Trainer(mc, tc, run, quiet=True, overwrite=True)
    if trainer.fit()['status'] != 'finished':
        print(f"[{budget} {name} lr {lr:g} seed {seed}] stopped: not recorded (run again to continue it)"); return False
    rec = measure(run, budget, name, lr, seed, stage, mc, tc, corpus, quick)
    merge_record(out, rec, ('budget', 'name', 'lr', 'seed'), **meta)
    print(f"[{budget} {name} lr {lr:g} seed {seed}] val {rec['val_bpc']:.4f}, test {rec['test_bpc']:.4f}, "
          f"{rec['train_flops']:.3g} FLOPs, {rec['bytes_per_s']:,.0f} B/s, {time.perf_counter() - t0:.0f} s", flush=True)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--budget', default='B1', choices=list(BUDGETS))
    ap.add_argument('--only', default=','.join(CONFIGS), help=f'comma-separated configuration names of {list(CONFIGS)}')
    ap.add_argument('--stage', default='all', choices=('sweep', 'seeds', 'all'), help='the sweep, the seeds after it, or both')
    ap.add_argument('--root', default='runs/baseline', help='run directories go here')
    ap.add_argument('--out', default='bench/results/baseline_study.json')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--quick', action='store_true', help='a tiny version (6 steps, tiny widths) in a temporary directory')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = a.only.split(',')
    bad = [n for n in names if n not in CONFIGS]
    if bad: raise SystemExit(f"unknown configurations {bad}; the study has {list(CONFIGS)}")
    seeds = SEEDS[a.budget]
    if a.quick:
        tmp = Path(tempfile.mkdtemp(prefix='baseline-quick-'))
        a.root, a.out, seeds = str(tmp / 'runs'), str(tmp / 'baseline_study.json'), (0, 1)
    out, root = Path(a.out), Path(a.root)
    meta = dict(machine=cpu_model(), cores=os.cpu_count(), torch=torch.__version__,
                configs={n: CONFIGS[n][3] for n in CONFIGS}, budgets=BUDGETS, lrs=LRS, more=MORE)
    corpus = load_corpus('pystdlib', progress=False)
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    runs = lambda: json.loads(out.read_text())['runs'] if out.exists() else []
    done = lambda: {(r['budget'], r['name'], r['lr'], r['seed']) for r in runs()}
    if a.stage in ('sweep', 'all'):                      # every configuration's sweep first ...
        for name in names:
            while todo := [lr for lr in sweep_rates(sweep_val(runs(), a.budget, name), a.budget) if (a.budget, name, lr, 0) not in done()]:
                if not train_one(root, out, meta, corpus, a.budget, name, todo[0], 0, 'sweep', a.quick): return
            print(f"[{a.budget} {name}] sweep done: lr {chosen_lr(runs(), a.budget, name):g}")
    if a.stage in ('seeds', 'all'):                      # ... then the seeds, seed by seed, so that a stopped grid stays paired
        for seed in seeds[1:]:
            for name in names:
                lr = chosen_lr(runs(), a.budget, name)
                if lr is None: print(f"[{a.budget} {name}] the sweep is not complete: run --stage sweep first"); continue
                if (a.budget, name, lr, seed) in done(): print(f"[{a.budget} {name} lr {lr:g} seed {seed}] done: skipped"); continue
                if not train_one(root, out, meta, corpus, a.budget, name, lr, seed, 'seeds', a.quick): return
    print(f"results: {out}")


if __name__ == '__main__':
    main()
