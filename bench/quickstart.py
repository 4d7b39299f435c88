"""The quick start, timed: `bash scripts/quickstart` as a reader runs it, its final val BPC and its wall time.

scripts/quickstart trains into `runs/quickstart` of the folder it lives in. So that the checkout's `runs/` is left
alone, this copies the script and what it reads (`scripts/quickstart`, `scripts/env.sh`, `settings.ini`, `setup.py`,
times kept) into a temporary folder and runs it there, with the active environment (`AGIFORMER_VENV`: nothing is
installed, as on a reader's second run) and the checkout's data directory (`AGIFORMER_DATA`, unless set: the
pystdlib corpus is not rebuilt). The wall time is the whole command's, its sample included; the BPC figures are read
from the run's `metrics.jsonl`: the validation BPC at the last step (the comparison protocol's 64 windows) and the
best one. The temporary folder is removed afterwards.

A full run writes bench/results/quickstart.json (`--out` elsewhere), with the machine, the load average at the start,
the command and the date. `--quick` runs the script for 12 steps (it checks that this script runs; its figures mean
nothing) and writes nothing unless given `--out`. Other arguments go to scripts/quickstart (and from it to
agiformer_train).

    python bench/quickstart.py [--out FILE]
    python bench/quickstart.py --quick [--out FILE]
"""
import argparse, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

from _harness import ROOT, run_meta, result_path, write_result
from agiformer.runs import read_metrics

COPY = ('scripts/quickstart', 'scripts/env.sh', 'settings.ini', 'setup.py')
QUICK = ['--steps', '12', '--val_every', '6', '--log_every', '6', '--val_windows', '2']


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='12 steps: checks that this script runs')
    ap.add_argument('--out', default=None, help='results JSON (default: bench/results/quickstart.json; none with --quick)')
    a, extra = ap.parse_known_args()
    if sys.prefix == sys.base_prefix or not (Path(sys.prefix) / '.agiformer-installed').exists():
        sys.exit(f"run this in the environment scripts/env.sh sets up (source .venv/bin/activate): {sys.prefix} is not one")
    meta = run_meta()
    extra = (QUICK if a.quick else []) + extra
    work = Path(tempfile.mkdtemp(prefix='agiformer-quickstart-'))
    try:
        for f in COPY:
            (work / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, work / f)
        env = dict(os.environ, AGIFORMER_VENV=sys.prefix)
        env.setdefault('AGIFORMER_DATA', str(ROOT / 'data'))
        cmd = ['bash', 'scripts/quickstart', *extra]
        print(f"running {' '.join(cmd)} in a temporary copy ({work})", flush=True)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wall = time.perf_counter() - t0
        print(p.stdout[-4000:])
        if p.returncode != 0: sys.exit(f"scripts/quickstart exited {p.returncode}")
        val = [(r['step'], r['bpc']) for r in read_metrics(work / 'runs' / 'quickstart') if r['kind'] == 'val']
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (step, last), best = val[-1], min(b for _, b in val)
    print(f"quick start: val BPC {last:.3f} at step {step} (best {best:.3f}), {wall:.0f} s wall ({round(wall) // 60} min "
          f"{round(wall) % 60} s), the sample included")
    write_result(result_path(__file__, a.out, a.quick),
                 {**meta, 'script_args': extra, 'steps': step, 'val_bpc': last, 'best_val_bpc': best,
                  'val_curve': val, 'wall_s': wall})


if __name__ == '__main__':
    main()
