"""A small sweep for a training recipe that suits the System 2 study's budget: the `small` preset at T = 3 (fixed),
600 steps of 4 x 1,024 bytes on the offline pystdlib corpus, one seed, varying the learning rate, its schedule and
dropout. Each point is a run under `--root`; its protocol validation BPC every 100 steps (the curve, so shorter
budgets can be read off too) goes into `bench/results/recipe_sweep.json` (merged under a lock; points already there
are skipped). The baseline is the original's recipe (lr 3e-4 constant after 100 warm-up steps, dropout 0.1).

    python bench/recipe_sweep.py [--only lr2e-3,lr4e-3] [--threads 1]
"""
import argparse, json, os, time
from pathlib import Path

from _harness import cpu_model
from system2_study import merge_record

import torch

from agiformer.core import AGIConfig
from agiformer.recipe import TrainConfig
from agiformer.runs import read_metrics
from agiformer.trainer import Trainer

COSINE = dict(schedule='cosine', warmup_steps=50)
# name: (model changes, training changes)
POINTS = {
    'original': (dict(), dict()),
    'lr1e-3': (dict(dropout=0.0), dict(lr=1e-3, **COSINE)),
    'lr2e-3': (dict(dropout=0.0), dict(lr=2e-3, **COSINE)),
    'lr4e-3': (dict(dropout=0.0), dict(lr=4e-3, **COSINE)),
    'lr2e-3-dropout0.1': (dict(dropout=0.1), dict(lr=2e-3, **COSINE)),
    'lr2e-3-constant': (dict(dropout=0.0), dict(lr=2e-3, warmup_steps=50)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--root', default='runs/recipe_sweep')
    ap.add_argument('--out', default='bench/results/recipe_sweep.json')
    ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--only', default=None)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = list(POINTS) if a.only is None else a.only.split(',')
    bad = [n for n in names if n not in POINTS]
    if bad: raise SystemExit(f"unknown points {bad}; the sweep is {list(POINTS)}")
    out = Path(a.out)
    done = {r['name'] for r in (json.loads(out.read_text())['runs'] if out.exists() else [])}
    for name in names:
        if name in done: print(f"[{name}] done: skipped"); continue
        m_over, t_over = POINTS[name]
        mc = AGIConfig.from_preset('small', **m_over)
        tc = TrainConfig(**{**dict(data='pystdlib', steps=a.steps, seed=a.seed, device='cpu', log_every=30,
                                   val_every=100, val_windows=64), **t_over})
        t0 = time.perf_counter()
        run = Path(a.root) / name
        Trainer(mc, tc, run, quiet=True, overwrite=True).fit()
        ms = read_metrics(run)
        curve = {r['step']: r['bpc'] for r in ms if r['kind'] == 'val'}
        tr = [r for r in ms if r['kind'] == 'train']
        rec = dict(name=name, seed=a.seed, config=mc.to_dict(), train=tc.to_dict(), val_bpc=curve[max(curve)],
                   val_curve={str(k): v for k, v in curve.items()}, seconds=tr[-1]['time'], threads=a.threads)
        merge_record(out, rec, machine=cpu_model(), cores=os.cpu_count(), torch=torch.__version__,
                     points={n: dict(model=m, train=t) for n, (m, t) in POINTS.items()})
        print(f"[{name}] val {rec['val_bpc']:.4f} ({', '.join(f'{k}: {v:.3f}' for k, v in curve.items())}), "
              f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == '__main__':
    main()
