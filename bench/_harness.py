"""Shared helpers of the CPU benchmark scripts: one measurement per fresh process, its peak RSS, a memory guard.

Every script writes its results to `bench/results/<script>.json` on a full run (`result_path`, `write_result`), with
`run_meta()`: the machine, the load average when the run started, the exact command, the date and the revision.

A measurement runs as `python SCRIPT --child JSON` in a new process, so that its peak resident memory (VmHWM from
/proc/self/status) is its own. The parent caps the child's address space with RLIMIT_AS (the memory guard): a
reference run that would need more than the cap fails its allocation instead of taking the machine, and is
reported as stopped. The child prints one line `RESULT {json}` as its last output.
"""
import fcntl, json, os, platform, resource, shlex, subprocess, sys, time, traceback
from datetime import datetime, timezone
from pathlib import Path

from agiformer.core import atomic_write

GB = 2 ** 30


def proc_status_gb(field: str) -> float:
    "A memory field of /proc/self/status (VmHWM: peak RSS, VmRSS: current RSS) in GiB."
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'): return int(line.split()[1]) * 1024 / GB
    raise RuntimeError(f"{field} not in /proc/self/status: these benchmarks need Linux")


def run_child(script: str, args: dict, cap_gb: float, timeout: float = 1800) -> dict:
    "Run `script --child json(args)` in a fresh process with its address space capped at `cap_gb`; its result dict."
    cap = int(cap_gb * GB)
    def limit(): resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, script, '--child', json.dumps(args)], capture_output=True, text=True,
                           preexec_fn=limit, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'status': f'timeout after {timeout:.0f} s'}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith('RESULT '):
            res = json.loads(line[len('RESULT '):])
            res.setdefault('status', 'ok')
            if res['status'] == 'stopped by the memory guard': res['status'] += f' ({cap_gb:g} GB)'
            return res
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    oom = any(s in (p.stderr or '') for s in ("can't allocate memory", 'MemoryError', 'std::bad_alloc'))
    return {'status': f'stopped by the memory guard ({cap_gb:g} GB)' if oom else f'failed (exit {p.returncode}): ' + ' | '.join(tail),
            'wall_s': time.perf_counter() - t0}


def child_main(fn):
    "In the child: parse the JSON argument, run fn(**args), print `RESULT {json}`; allocation failures become a status."
    args = json.loads(sys.argv[sys.argv.index('--child') + 1])
    try: res = fn(**args)
    except (MemoryError, RuntimeError) as e:
        if isinstance(e, MemoryError) or "can't allocate memory" in str(e) or 'bad_alloc' in str(e):
            res = {'status': 'stopped by the memory guard', 'peak_gb': proc_status_gb('VmHWM')}
        else:
            traceback.print_exc(); raise
    print('RESULT ' + json.dumps(res), flush=True)


def table(rows: list, cols: list) -> str:
    "A plain text table of dict rows; cols are (key, header, format)."
    cells = [[h for _, h, _ in cols]] + [[(f.format(r[k]) if isinstance(r.get(k), (int, float)) else str(r.get(k, '-')))
                                          for k, _, f in cols] for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    return '\n'.join('  '.join(c[i].rjust(w[i]) for i in range(len(cols))) for c in cells)


def machine_note(threads: int) -> str:
    load = os.getloadavg()
    return (f"{cpu_model()}, torch {__import__('torch').__version__}, torch threads {threads}, {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
            "(a shared machine: other processes add noise; ratios within one run are the comparable figures)")


def cpu_model() -> str:
    "The CPU's model name (Linux /proc/cpuinfo; platform.processor() elsewhere), printed beside every figure."
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or 'unknown CPU'


def merge_record(out, rec: dict, keys: tuple, **meta) -> dict:
    "Put `rec` into the results JSON `out` (replacing the one with the same `keys`) atomically, under a file lock."
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    key = lambda r: tuple(r[k] for k in keys)
    with open(out.with_suffix('.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(out.read_text()) if out.exists() else {'runs': []}
        results.update(meta)
        results['runs'] = [r for r in results['runs'] if key(r) != key(rec)] + [rec]
        atomic_write(out, lambda t: Path(t).write_text(json.dumps(results, indent=1)))
    return results


ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'bench' / 'results'


def git_rev(root: Path = ROOT) -> str|None:
    "The commit the working tree is based on (None outside a clone or without git)."
    try: p = subprocess.run(['git', '-C', str(root), 'rev-parse', 'HEAD'], capture_output=True, text=True)
    except OSError: return None
    return p.stdout.strip() if p.returncode == 0 else None


def run_meta(threads: int|None = None) -> dict:
    "What a results JSON records about its run; call it when the run starts (the load average is the one at that moment)."
    import torch
    return {'machine': cpu_model(), 'cores': os.cpu_count(), 'torch': torch.__version__, 'threads': threads,
            'load_1min': round(os.getloadavg()[0], 2), 'command': shlex.join(['python', *sys.argv]),
            'date_utc': datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), 'git_rev': git_rev()}


def result_path(script: str, out: str|None, quick: bool) -> Path|None:
    "Where a run writes its JSON: `out` if given; else bench/results/<script>.json for a full run, nowhere for --quick."
    if out: return Path(out)
    return None if quick else RESULTS / f"{Path(script).stem}.json"


def write_result(path: Path|None, rec: dict) -> Path|None:
    "Write `rec` to `path` atomically (the old file survives a crash) and say where; nothing when `path` is None."
    if path is None:
        print("results: not written (--quick without --out)"); return None
    atomic_write(path, lambda t: Path(t).write_text(json.dumps(rec, indent=1) + '\n'))
    print(f"results: {path}")
    return path
