#!/usr/bin/env python
"""Train the small model the book's chapters inspect, and write it to nbs/models/pystdlib-mini/.

The chapters that show what System 2 does (tracing, verdict, views) need a model that has learned something; a
randomly initialised one thinks nothing worth drawing. This trains a 1.0 M-parameter AGIFORMER (d_model 128, 2
hybrid layers, 4 heads, a window of 64 patches, T = 3 thinking steps, head width 128) on the offline pystdlib corpus
(the Python standard library's source) for 1,000 steps of 4 x 1,024 bytes with the trainer, seed 0 (learning rate
2e-3 with 50 warm-up steps and a cosine decay, no dropout), and copies its final weights (4 MB of safetensors) and
config into the repository, with about.txt stating how it was made and its validation BPC.

    python scripts/book_model.py [--steps 1000] [--threads 2]

Repository tooling: not part of the agiformer package.
"""
import argparse, json, shutil, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'bench'))
from _harness import cpu_model

from agiformer.checkpoint import load_model
from agiformer.core import AGIConfig
from agiformer.recipe import TrainConfig
from agiformer.runs import read_metrics
from agiformer.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'nbs' / 'models' / 'pystdlib-mini'
CONFIG = dict(d_model=128, n_layers=2, num_heads=4, window_size=64, head_hidden=128, thinking_steps=3, dropout=0.0)  # = the mini preset


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=1000)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--out', default=str(OUT))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    mc = AGIConfig.from_preset('small', **CONFIG)
    tc = TrainConfig(data='pystdlib', steps=a.steps, seed=0, lr=2e-3, warmup_steps=50, schedule='cosine', device='cpu',
                     log_every=50, val_every=a.steps, val_windows=64)
    run = Path(tempfile.mkdtemp(prefix='book-model-'))
    t0 = time.time()
    Trainer(mc, tc, run, quiet=True, overwrite=True).fit()
    val = [r for r in read_metrics(run) if r['kind'] == 'val'][-1]
    out = Path(a.out)
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in ('model.safetensors', 'config.json'): shutil.copy(run / 'last' / f, out / f)
    n_params = sum(p.numel() for p in load_model(out).parameters())
    (out / 'about.txt').write_text(
        f"pystdlib-mini: the model the book's chapters inspect, written by `python scripts/book_model.py`: "
        f"{n_params:,} parameters, config {json.dumps(CONFIG)}, trained on the pystdlib corpus for {a.steps} steps "
        f"of 4 x 1,024 bytes, seed 0, lr 2e-3 (50 warm-up steps, cosine), in {time.time() - t0:.0f} s on {a.threads} "
        f"CPU threads ({cpu_model()}, torch {torch.__version__}). Validation BPC (the first 64 windows of 1,024 bytes "
        f"of the val split): {val['bpc']:.4f}.\n")
    print(f"wrote {out}: val BPC {val['bpc']:.4f} after {a.steps} steps, {time.time() - t0:.0f} s")
    shutil.rmtree(run)


if __name__ == '__main__':
    main()
