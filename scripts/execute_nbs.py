#!/usr/bin/env python
"""Re-execute the chapters in order and leave them clean for committing, so the docs site shows their results.

nbdev renders the outputs stored in a notebook; it does not run cells. This runs each notebook top to bottom in a
fresh IPython shell (execnb's `CaptureShell`, the one `nbdev_test` uses), in the notebook's folder, skipping exactly
the cells `nbdev_test` skips (`#| eval: false`, the export call, and cells marked with a test flag from settings.ini
that is not asked for with `--flags`), and writes the outputs back. A skipped cell, or one that prints nothing, keeps no output. Then it removes
widget state (`scripts/clear_widget_state.py`: a live widget cannot be stored, its static PNG twin stays) and runs
`nbdev_clean`. Figures are stored as PNG at 72 dpi (not retina) to keep the notebooks small.

It stops at the first failing cell, naming the notebook and the cell, and leaves that notebook as it was.

    python scripts/execute_nbs.py                       # every chapter nbs/[0-9]*.ipynb and nbs/index.ipynb, in order
    python scripts/execute_nbs.py nbs/05_model.ipynb    # some
    python scripts/execute_nbs.py --flags slow nbs/13_tutorial.ipynb   # also run the cells marked slow

Repository tooling: not part of the agiformer package.
"""
import argparse, configparser, os, subprocess, sys, time
from pathlib import Path

from nbdev.process import extract_directives

ROOT = Path(__file__).resolve().parent.parent
def test_flags() -> set:
    "The test flags of settings.ini (`tst_flags`): cells marked with one are skipped unless it is asked for."
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split())


def runs(cell, flags: set) -> bool:
    "Whether `nbdev_test` runs this cell: code, not `#| eval: false`, not the export call, no flag of `flags`."
    if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return False
    d = extract_directives(cell, remove=False)
    return d.get('eval:', [''])[0].lower() != 'false' and not flags & d.keys()


def skipper(flags: set):
    "A preproc for `CaptureShell.run_all`: clears every code cell's old outputs; True for the cells `nbdev_test` would not run."
    def skip(cell) -> bool:
        if cell.cell_type == 'code': cell.outputs = []     # a cell that now prints nothing keeps no stale output
        return not runs(cell, flags)
    return skip


def execute(path: Path, flags: set, timeout: int) -> float:
    "Run notebook `path` and write its outputs; return the seconds it took. Raises on a failing cell."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    t0 = time.time()
    nb = read_nb(path)
    shell = CaptureShell(path, mpl_format='png', timeout=timeout)
    shell._run("import matplotlib; matplotlib.rcParams['figure.dpi'] = 72; matplotlib.rcParams['savefig.dpi'] = 72")
    cwd = os.getcwd()
    try:
        os.chdir(path.parent)
        shell.run_all(nb, exc_stop=True, preproc=skipper(flags))
    except Exception:
        raise RuntimeError(f"{path.name}: a cell failed\n{shell.prettytb(fname=path)}") from None
    finally: os.chdir(cwd)
    for c in nb.cells:                                   # execution counts change on every run: keep them out of the diff
        if c.cell_type == 'code': c.execution_count = None
    write_nb(nb, path)
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', help='notebooks to run (default: every chapter and the index, in order)')
    ap.add_argument('--flags', default='', help='space-separated test flags whose cells run too (e.g. slow)')
    ap.add_argument('--timeout', type=int, default=1800, help='seconds one cell may run')
    a = ap.parse_args()
    flags = test_flags() - set(a.flags.split())
    nbs = [Path(p).resolve() for p in a.notebooks] or sorted((ROOT / 'nbs').glob('[0-9]*.ipynb')) + [ROOT / 'nbs' / 'index.ipynb']
    os.environ.setdefault('MPLBACKEND', 'agg')
    total = time.time()
    for p in nbs:
        print(f"{p.name}: {execute(p, flags, a.timeout):.0f} s", flush=True)
    subprocess.run([sys.executable, str(ROOT / 'scripts' / 'clear_widget_state.py'), *map(str, nbs)], check=True)
    for p in nbs: subprocess.run(['nbdev_clean', '--fname', str(p)], check=True, cwd=ROOT)
    print(f"executed {len(nbs)} notebooks in {time.time() - total:.0f} s; review `git diff --stat nbs/` and commit")


if __name__ == '__main__':
    main()
