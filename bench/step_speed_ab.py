"""Did a change make decoding faster? Time the decode loop of the package at a git revision against the working
tree's, in alternating fresh processes, and print the ratio.

Each measurement is a fresh `python` process that imports `agiformer` from one of two places (the working tree, or
the revision exported with `git archive` into a temporary directory), builds the `--preset` model with seed 0,
prefills a `--prompt-bytes` prompt, then times `--patches` iterations of the generation loop (`head.decode`, then
`model.step`) at one thread: the median of 9 timings, in ms per patch. `--mode generate` times the public
`generate(model, prompt, P * patches)` instead, end to end (prefill included), which every revision since stateful
generation has: use it to compare with revisions older than `model.step` (the decoder before chapter-owned steps).
The two sides alternate `--pairs` times, so that a busy spell of a shared machine hits both; the ratio of each pair
(revision / working tree) is printed with their median. A ratio above 1 means the working tree decodes faster.

    python bench/step_speed_ab.py [--rev HEAD] [--pairs 4] [--preset small] [--mode step|generate]
"""
import argparse, io, json, os, statistics, subprocess, sys, tarfile, tempfile
from pathlib import Path

from _harness import machine_note

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, statistics, sys, time, torch
sys.path.insert(0, sys.argv[1])
import agiformer
from agiformer.model import AGIFORMER
assert agiformer.__file__.startswith(sys.argv[1]), agiformer.__file__
preset, prompt_bytes, patches, mode = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(1); torch.manual_seed(0)
m = AGIFORMER.from_preset(preset).eval()
x = torch.randint(0, 256, (1, prompt_bytes))
def run():
    if mode == 'generate':
        from agiformer.generate import generate
        t = time.perf_counter()
        out = generate(m, bytes(x[0].tolist()), m.config.patch_size * patches)
        assert len(out) == m.config.patch_size * patches
        return (time.perf_counter() - t) / patches * 1e3
    try: from agiformer.rows import RowKernels; rows = RowKernels(m)       # what generation decodes with, where it exists
    except ImportError: import contextlib; rows = contextlib.nullcontext()
    with torch.inference_mode():
        with rows: z, cache = m.prefill(x)
        z = z[:, -1]
        t = time.perf_counter()
        for _ in range(patches):
            with rows: z = m.step(m.head.decode(m.head.context(z)), cache)
        return (time.perf_counter() - t) / patches * 1e3
run()
print(json.dumps(statistics.median(run() for _ in range(9))))
"""


def ms_per_patch(root: Path, a) -> float:
    "One fresh process importing agiformer from `root`: median ms per decoded patch."
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    p = subprocess.run([sys.executable, '-c', CHILD, str(root), a.preset, str(a.prompt_bytes), str(a.patches), a.mode],
                       capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if p.returncode: raise SystemExit(f"a measurement failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def export_revision(rev: str, dest: Path) -> Path:
    "The `agiformer/` package of git revision `rev`, extracted under `dest`."
    tar = subprocess.run(['git', 'archive', rev, 'agiformer'], cwd=ROOT, capture_output=True)
    if tar.returncode: raise SystemExit(f"git archive {rev} failed: {tar.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t: t.extractall(dest, filter='data')
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rev', default='HEAD', help='git revision to compare the working tree with')
    ap.add_argument('--pairs', type=int, default=4)
    ap.add_argument('--preset', default='small')
    ap.add_argument('--prompt-bytes', type=int, default=1024)
    ap.add_argument('--patches', type=int, default=128)
    ap.add_argument('--mode', choices=('step', 'generate'), default='step',
                    help="'step': the decode loop of head.decode and model.step; 'generate': generate() end to end")
    a = ap.parse_args()
    print(f"machine: {machine_note(1)}")
    with tempfile.TemporaryDirectory() as tmp:
        old = export_revision(a.rev, Path(tmp))
        ratios = []
        for i in range(a.pairs):
            r, w = ms_per_patch(old, a), ms_per_patch(ROOT, a)
            ratios.append(r / w)
            print(f"pair {i + 1}: {a.rev} {r:.2f} ms/patch, working tree {w:.2f} ms/patch: {r / w:.2f}x", flush=True)
    what = 'ms per decoded patch' if a.mode == 'step' else 'ms per patch of generate(), prefill included'
    print(f"{a.rev} / working tree, {what} ({a.preset}, one thread): median {statistics.median(ratios):.2f}x "
          f"({min(ratios):.2f}x to {max(ratios):.2f}x over {a.pairs} pairs)")


if __name__ == '__main__':
    main()
