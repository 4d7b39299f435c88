"""Peak memory and time of one training step at batch 1, reference vs fast attention, one fresh process per case.

For each sequence length (bytes) and each attention implementation, a new process builds the model (seed 0,
train mode, dropout as configured), runs forward + backward + AdamW step `--reps` times (default 3) on random
bytes and reports: the fastest forward + backward after the first (which pays for page faults), the process's peak
resident memory over all steps (VmHWM, everything: Python, torch, weights, optimizer state, activations, and what
the C allocator keeps after a step: glibc's adaptive mmap threshold makes freed activations stay resident, so the
peak rises over the first steps before it settles), the resident memory just before the first forward (`base`), and
`(peak - base) / bytes`, the memory a byte of sequence costs. Reference runs are capped
by a memory guard (RLIMIT_AS, `--cap-gb`): they stop instead of taking the machine. A case whose peak, extrapolated
from three or more smaller lengths of the same implementation (a quadratic fit of peak - base against length: the
reference materialises N x N attention scores), exceeds the memory the machine has available is not run, and every
case that did not run to the end gets that extrapolation printed, labelled EXTRAPOLATED: an estimate, not a measurement.

    python bench/memory.py                          # small preset, 1K 4K 16K 64K, both implementations
    python bench/memory.py --preset seed --sizes 1024,4096,16384
    python bench/memory.py --quick                  # tiny preset, seconds (a smoke test of this script)

A full run writes bench/results/memory.json (`--out` elsewhere; `--quick` writes nothing unless given `--out`): every
case, the extrapolations (labelled as such), the machine, the load average at the start, the command and the date.

Targets (issue 6, small preset, this CPU): 65,536 bytes train in <= 6 GB; memory per byte grows <= 1.3x from 4K to 64K.
"""
import argparse, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import child_main, run_child, proc_status_gb, table, machine_note, run_meta, result_path, write_result


def measure(preset: str, impl: str, length: int, threads: int, reps: int = 3) -> dict:
    import torch
    torch.set_num_threads(threads)
    from agiformer.model import AGIFORMER
    torch.manual_seed(0)
    model = AGIFORMER.from_preset(preset, attn_impl=impl).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    P = model.config.patch_size
    seq = torch.randint(0, 256, (1, length + P), generator=torch.Generator().manual_seed(0))
    base = proc_status_gb('VmRSS')
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        loss = model.loss(seq); loss.backward()
        times.append(time.perf_counter() - t0)
        opt.step(); opt.zero_grad(set_to_none=True)
    return {'time_s': min(times[1:] or times), 'first_s': times[0], 'peak_gb': proc_status_gb('VmHWM'), 'base_gb': base,
            'loss': loss.item()}


def available_gb() -> float:
    "Memory the machine could give a new process now (MemAvailable), in GB."
    for line in open('/proc/meminfo'):
        if line.startswith('MemAvailable:'): return int(line.split()[1]) * 1024 / 2 ** 30
    return float('inf')


def extrapolate(res: dict, impl: str, length: int) -> float|None:
    "Peak GB of `impl` at `length` bytes from its measured smaller lengths (>= 3): base + a quadratic fit of peak - base."
    ok = sorted((L, r) for (i, L), r in res.items() if i == impl and r.get('status') == 'ok' and L < length)
    if len(ok) < 3: return None
    import numpy as np
    L = np.array([l for l, _ in ok], float); extra = np.array([r['peak_gb'] - r['base_gb'] for _, r in ok])
    return float(ok[-1][1]['base_gb'] + max(0.0, np.polyval(np.polyfit(L, extra, 2), length)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--preset', default=None, help='default small (tiny with --quick)')
    ap.add_argument('--sizes', default=None, help='sequence lengths in bytes, comma-separated (default 1024,4096,16384,65536)')
    ap.add_argument('--impls', default='reference,fast')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--reps', type=int, default=3, help='training steps per process (peak over all of them)')
    ap.add_argument('--cap-gb', type=float, default=10.0, help='memory guard: address-space cap of each process')
    ap.add_argument('--quick', action='store_true', help='tiny preset, 256 and 1024 bytes: checks the script runs')
    ap.add_argument('--out', default=None, help='results JSON (default: bench/results/memory.json; none with --quick)')
    a = ap.parse_args()
    meta = run_meta(a.threads)
    for k, full, quick in (('preset', 'small', 'tiny'), ('sizes', '1024,4096,16384,65536', '256,1024')):
        if getattr(a, k) is None: setattr(a, k, quick if a.quick else full)
    sizes = [int(s) for s in a.sizes.split(',')]
    impls = a.impls.split(',')
    print(f"memory benchmark: preset {a.preset}, batch 1, sizes {sizes}, {a.reps} steps per process; "
          f"{machine_note(a.threads)}", flush=True)
    rows, res = [], {}
    for L in sizes:
        for impl in impls:
            need = extrapolate(res, impl, L)
            room = min(available_gb(), a.cap_gb)
            if need is not None and need > room:           # where the machine (or the guard) has not the memory, do not try
                r = {'status': f'not run: needs about {need:.1f} GB (extrapolated), {room:.1f} GB available under the guard'}
                res[impl, L] = r; rows.append(dict(bytes=L, impl=impl, **r))
                print(f"  {impl:9s} {L:6d} bytes: {r['status']}", flush=True)
                continue
            r = run_child(__file__, dict(preset=a.preset, impl=impl, length=L, threads=a.threads, reps=a.reps), a.cap_gb)
            if 'peak_gb' in r and 'base_gb' in r: r['mb_per_kb'] = (r['peak_gb'] - r['base_gb']) * 1024 / (L / 1024)
            res[impl, L] = r
            rows.append(dict(bytes=L, impl=impl, **r))
            print(f"  {impl:9s} {L:6d} bytes: {r.get('status')} " +
                  (f"{r['time_s']:.2f} s, peak {r['peak_gb']:.2f} GB" if r.get('status') == 'ok' else ''), flush=True)
        f, ref = res.get(('fast', L), {}), res.get(('reference', L), {})
        if f.get('status') == 'ok' and ref.get('status') == 'ok':
            rows[-1]['speedup'] = ref['time_s'] / f['time_s']; rows[-1]['mem_ratio'] = ref['peak_gb'] / f['peak_gb']
    print()
    print(table(rows, [('bytes', 'bytes', '{:d}'), ('impl', 'impl', '{}'), ('time_s', 'fwd+bwd s', '{:.2f}'),
                       ('peak_gb', 'peak GB', '{:.2f}'), ('base_gb', 'base GB', '{:.2f}'),
                       ('mb_per_kb', '(peak-base) MB/KB', '{:.1f}'), ('speedup', 'ref/fast time', '{:.1f}x'),
                       ('mem_ratio', 'ref/fast peak', '{:.1f}x'), ('status', 'status', '{}')]))
    print()
    for impl in impls:
        ok = {L: r for (i, L), r in res.items() if i == impl and r.get('status') == 'ok'}
        if len(ok) >= 2:
            lo, hi = min(ok), max(ok)
            print(f"{impl}: memory per byte {lo} -> {hi} bytes grows {ok[hi]['mb_per_kb'] / ok[lo]['mb_per_kb']:.2f}x "
                  f"(peak/bytes: {ok[hi]['peak_gb'] / hi / (ok[lo]['peak_gb'] / lo):.2f}x)")
    extrapolated = []
    for impl in impls:
        for L in sizes:
            r = res.get((impl, L), {})
            if r.get('status') != 'ok' and (est := extrapolate(res, impl, L)) is not None:
                pts = sorted(l for (i, l), x in res.items() if i == impl and x.get('status') == 'ok' and l < L)
                extrapolated.append(dict(impl=impl, bytes=L, peak_gb=est, from_bytes=pts))
                print(f"{impl} at {L:,} bytes: {r.get('status')}; EXTRAPOLATED peak about {est:.1f} GB (not measured: "
                      f"a quadratic fit of the measured peaks above base at {', '.join(f'{l:,}' for l in pts)} bytes)")
    f64, f4 = res.get(('fast', 65536), {}), res.get(('fast', 4096), {})
    if f64.get('status') == 'ok':
        print(f"target: 65,536 bytes trains in <= 6 GB: peak {f64['peak_gb']:.2f} GB -> {'PASS' if f64['peak_gb'] <= 6 else 'FAIL'}")
        if f4.get('status') == 'ok':
            g = f64['mb_per_kb'] / f4['mb_per_kb']
            print(f"target: memory per byte 4K -> 64K grows <= 1.3x: {g:.2f}x -> {'PASS' if g <= 1.3 else 'FAIL'}")
    write_result(result_path(__file__, a.out, a.quick),
                 {**meta, 'preset': a.preset, 'batch': 1, 'sizes': sizes, 'impls': impls, 'reps': a.reps, 'cap_gb': a.cap_gb,
                  'rows': rows, 'extrapolated': extrapolated})


if __name__ == '__main__':
    if '--child' in sys.argv: child_main(measure)
    else: main()
