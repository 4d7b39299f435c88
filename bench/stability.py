"""Does the recommended recipe hold? T = 3 and T = 0 with the `short` recipe, and T = 3 with the original's, on two corpora.

Each (corpus, configuration, seed) is one run of the `small` preset for 600 steps with this project's trainer (one
run directory each under `--root`), validated every 100 steps on the comparison protocol's 64 windows of val. After
training, its record is merged into the results JSON (atomically, under a file lock):

- `corpus`, `name`, `seed`, `recipe` (the recipe's name), `config` (the model's AGIConfig), `train` (the TrainConfig);
- `val_bpc` (protocol windows of val, final weights), `test_bpc` (the same windows of test), `val_curve`
  ([step, val BPC] every 100 steps), `unigram_bpc` (the training bytes' frequencies alone: the stall guard's level);
- `signals`: every train record of the run's `metrics.jsonl` (step, train BPC, gradient norm per component, clipping
  factor, System 2's gate and relative update per thinking step), so the study chapter can show what a stall is;
- `seconds` (training time), `params`, `threads`.

Corpora: "pystdlib" (the Python standard library's source) and "stdlib-prose" (the English prose of the same library:
its reference topics and docstrings), which `scripts/stdlib_prose.py` builds offline into `data/stdlib-prose.txt`
(this script builds it if it is missing).

Finished records are skipped, so the grid can be run a piece at a time (`--only`, `--seeds`, `--corpora`), the
order is seed-major, so a partial grid holds whole seeds, and a run that was stopped (Ctrl-C, SIGTERM) resumes from
its last checkpoint when the grid is run again (bit for bit with the same --threads). `--quick` runs a tiny version into a temporary directory.

    python bench/stability.py [--seeds 0,1,2,3,4] [--only T3,T0,T3-original] [--corpora pystdlib,stdlib-prose]
    python bench/stability.py --only T3-recommended --corpora stdlib-prose --seeds 0,1
    python bench/stability.py --quick
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

from _harness import cpu_model, merge_record

import torch

from agiformer.core import AGIConfig
from agiformer.checkpoint import load_model
from agiformer.data import load_corpus
from agiformer.evaluate import protocol_bpc, evaluate_bpc
from agiformer.recipe import recipe_model, train_recipe
from agiformer.runs import read_metrics
from agiformer.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
PROSE = ROOT / 'data' / 'stdlib-prose.txt'
CORPORA = {'pystdlib': 'pystdlib', 'stdlib-prose': str(PROSE)}
# name: (recipe, model changes, training changes, what it is)
GRID = {
    'T3': ('short', dict(), dict(), 'T = 3, the short recipe'),
    'T0': ('short', dict(thinking_steps=0), dict(), 'T = 0 (no System 2), the short recipe'),
    'T3-original': ('seed', dict(), dict(), "T = 3, the original's recipe (lr 3e-4, 100 warm-up steps, constant, dropout 0.1)"),
    'T3-recommended': ('short', dict(thinking_init='default'), dict(lr=2e-3, thinking_lr_scale=1.0),
                       'T = 3, the recipe the study recommended before (lr 2e-3, 50 warm-up steps, cosine, no dropout)'),
    'T3-lr2e-3': ('short', dict(), dict(lr=2e-3), "T = 3, the short recipe at the pystdlib sweep's rate 2e-3"),
    'T0-lr2e-3': ('short', dict(thinking_steps=0), dict(lr=2e-3), "T = 0, the short recipe at the pystdlib sweep's rate 2e-3"),
}
DEFAULT = 'T3,T0,T3-original'           # the grid; the others ran on a few seeds: a stall, and the rate the short recipe left


def configure(name: str, corpus: str, seed: int, quick: bool):
    "(AGIConfig, TrainConfig, recipe name) of one run."
    recipe, m_over, t_over, _ = GRID[name]
    steps = 6 if quick else 600
    t = dict(data=CORPORA[corpus], steps=steps, seed=seed, device='cpu', log_every=2 if quick else 10,
             val_every=3 if quick else 100, val_windows=4 if quick else 64)
    if quick: t.update(seq_len=64, val_window=256)
    mc = AGIConfig.from_preset('tiny' if quick else 'small', **{**recipe_model(recipe), **m_over})
    return mc, train_recipe(recipe, **t, **t_over), recipe


def measure(run: Path, corpus_name: str, name: str, seed: int, recipe: str, mc, tc, corpus, trainer, quick: bool) -> dict:
    "The record of one finished run."
    model = load_model(run / 'last')
    ev = ((lambda split: evaluate_bpc(model, split, window=256, n_windows=4).bpc) if quick
          else (lambda split: protocol_bpc(model, split).bpc))
    recs = read_metrics(run)
    vals = [r for r in recs if r['kind'] == 'val']
    train = [r for r in recs if r['kind'] == 'train']
    keep = ('step', 'bpc', 'grad_norm', 'grad_norms', 'clip_factor', 'think_gate', 'think_update')
    return dict(corpus=corpus_name, name=name, seed=seed, recipe=recipe, what=GRID[name][3], config=mc.to_dict(),
                train=tc.to_dict(), val_bpc=ev(corpus.val), test_bpc=ev(corpus.test),
                val_curve=[[r['step'], r['bpc']] for r in vals], unigram_bpc=trainer.unigram,
                signals=[{k: r[k] for k in keep if k in r} for r in train], seconds=train[-1]['time'],
                params=model.num_params(), threads=torch.get_num_threads())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--root', default='runs/stability', help='run directories go here')
    ap.add_argument('--out', default='bench/results/stability.json')
    ap.add_argument('--seeds', default='0,1,2,3,4')
    ap.add_argument('--only', default=DEFAULT, help=f'comma-separated configuration names of {list(GRID)}')
    ap.add_argument('--corpora', default=','.join(CORPORA))
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--quick', action='store_true', help='tiny preset, 6 steps, seed 0, a temporary directory')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names, corpora, seeds = a.only.split(','), a.corpora.split(','), [int(s) for s in a.seeds.split(',')]
    bad = [n for n in names if n not in GRID] + [c for c in corpora if c not in CORPORA]
    if bad: raise SystemExit(f"unknown configurations or corpora {bad}; the grid is {list(GRID)} on {list(CORPORA)}")
    if a.quick:
        tmp = Path(tempfile.mkdtemp(prefix='stability-quick-'))
        a.root, a.out, seeds = str(tmp / 'runs'), str(tmp / 'stability.json'), [0]
    if 'stdlib-prose' in corpora and not PROSE.exists():
        subprocess.run([sys.executable, str(ROOT / 'scripts' / 'stdlib_prose.py'), '--out', str(PROSE)], check=True)
    out = Path(a.out)
    meta = dict(machine=cpu_model(), cores=os.cpu_count(), torch=torch.__version__,
                grid={n: GRID[n][3] for n in GRID}, corpora={c: CORPORA[c] for c in CORPORA})
    done = {(r['corpus'], r['name'], r['seed']) for r in (json.loads(out.read_text())['runs'] if out.exists() else [])}
    data = {c: load_corpus(CORPORA[c], progress=False) for c in corpora}
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for seed in seeds:
        for c in corpora:
            for name in names:
                if (c, name, seed) in done: print(f"[{c} {name} seed {seed}] done: skipped"); continue
                mc, tc, recipe = configure(name, c, seed, a.quick)
                run = Path(a.root) / f"{c}-{name}-s{seed}"
                t0 = time.perf_counter()
                try: trainer = Trainer(mc, tc, run, quiet=True, resume=True)      # a stopped run goes on from its last checkpoint
                except (OSError, ValueError): trainer = Trainer(mc, tc, run, quiet=True, overwrite=True)
                if trainer.fit()['status'] != 'finished':           # stopped (Ctrl-C, SIGTERM): no record; run again to redo it
                    print(f"[{c} {name} seed {seed}] stopped: not recorded"); return
                rec = measure(run, c, name, seed, recipe, mc, tc, data[c], trainer, a.quick)
                merge_record(out, rec, ('corpus', 'name', 'seed'), **meta)
                print(f"[{c} {name} seed {seed}] val {rec['val_bpc']:.4f}, test {rec['test_bpc']:.4f}, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
    print(f"results: {out}")


if __name__ == '__main__':
    main()
