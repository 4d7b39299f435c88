"""Training throughput (predicted bytes per second), reference vs fast attention, side by side in one run.

For each preset and sequence length, and each attention implementation, a fresh process builds the model (seed 0,
train mode, the seed recipe's dropout 0.1), then runs the real training step: forward, cross-entropy over every
predicted byte, backward, gradient clipping at 0.5, AdamW. One warm-up step is not timed; the fastest of `--steps`
timed steps gives seconds per step (on a shared machine the least disturbed step is the most repeatable figure; the
median is printed too), and bytes/s = batch x length / (seconds per step). Batch is
max(1, `--batch-bytes` / length): 4 x 1,024 (the original recipe), 1 x 4,096 and longer. Few steps per case keep
the run short (about 10 minutes on 2 cores); the reference is stopped by a memory guard (`--cap-gb`) where it
would need more.

    python bench/throughput.py                      # small and seed, 1K 4K 8K 16K
    python bench/throughput.py --presets small --seqs 1024,8192 --steps 5
    python bench/throughput.py --quick              # tiny preset, seconds (a smoke test of this script)

A full run writes bench/results/throughput.json (`--out` elsewhere; `--quick` writes nothing unless given `--out`):
every case's figures, with the machine, the load average at the start, the command and the date.

Targets (issue 6, this CPU): small at 1,024 >= 1.5x the reference's bytes/s; small at 8,192 >= 4x.
"""
import argparse, os, statistics, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import child_main, run_child, proc_status_gb, table, machine_note, run_meta, result_path, write_result


def measure(preset: str, impl: str, seq_len: int, batch: int, steps: int, threads: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    from agiformer.model import AGIFORMER
    torch.manual_seed(0)
    model = AGIFORMER.from_preset(preset, attn_impl=impl).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    P = model.config.patch_size
    g = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 1):
        seq = torch.randint(0, 256, (batch, seq_len + P), generator=g)
        t0 = time.perf_counter()
        loss = model.loss(seq)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step(); opt.zero_grad(set_to_none=True)
        if i: times.append(time.perf_counter() - t0)
    s = min(times)
    return {'s_per_step': s, 'median_s': statistics.median(times), 'bytes_per_s': batch * seq_len / s,
            'peak_gb': proc_status_gb('VmHWM'),
            'loss': loss.item(), 'steps': steps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--presets', default=None, help='default small,seed (tiny with --quick)')
    ap.add_argument('--seqs', default=None, help='sequence lengths in bytes, comma-separated (default 1024,4096,8192,16384)')
    ap.add_argument('--batch-bytes', type=int, default=4096, help='batch = max(1, batch_bytes // seq)')
    ap.add_argument('--steps', type=int, default=None, help='timed steps per case, after one warm-up step (default 3)')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--cap-gb', type=float, default=10.0, help='memory guard: address-space cap of each process')
    ap.add_argument('--quick', action='store_true', help='tiny preset, 256 and 1024 bytes, 1 step: checks the script runs')
    ap.add_argument('--out', default=None, help='results JSON (default: bench/results/throughput.json; none with --quick)')
    a = ap.parse_args()
    meta = run_meta(a.threads)
    for k, full, quick in (('presets', 'small,seed', 'tiny'), ('seqs', '1024,4096,8192,16384', '256,1024'), ('steps', 3, 1)):
        if getattr(a, k) is None: setattr(a, k, quick if a.quick else full)
    seqs = [int(s) for s in a.seqs.split(',')]
    print(f"training throughput: presets {a.presets}, seqs {seqs}, {a.steps} timed steps + 1 warm-up each; "
          f"{machine_note(a.threads)}", flush=True)
    rows, t0 = [], time.perf_counter()
    for preset in a.presets.split(','):
        for L in seqs:
            B = max(1, a.batch_bytes // L)
            r = {impl: run_child(__file__, dict(preset=preset, impl=impl, seq_len=L, batch=B, steps=a.steps,
                                                threads=a.threads), a.cap_gb) for impl in ('reference', 'fast')}
            row = dict(preset=preset, shape=f"{B}x{L}")
            for impl in r:
                row[impl] = r[impl]['bytes_per_s'] if r[impl].get('status') == 'ok' else r[impl].get('status')
                if r[impl].get('status') == 'ok': row[impl + '_gb'], row[impl + '_med'] = r[impl]['peak_gb'], r[impl]['median_s']
            if all(r[i].get('status') == 'ok' for i in r):
                row['ratio'] = r['fast']['bytes_per_s'] / r['reference']['bytes_per_s']
                row['ratio_med'] = r['reference']['median_s'] / r['fast']['median_s']
            rows.append(row)
            show = lambda v: f"{v:,.0f} B/s" if isinstance(v, float) else v
            print(f"  {preset} {B}x{L}: reference {show(row['reference'])}, fast {show(row['fast'])}", flush=True)
    print()
    print(table(rows, [('preset', 'preset', '{}'), ('shape', 'batch x bytes', '{}'),
                       ('reference', 'reference bytes/s', '{:,.0f}'), ('fast', 'fast bytes/s', '{:,.0f}'),
                       ('ratio', 'fast/ref', '{:.2f}x'), ('ratio_med', '(median steps)', '{:.2f}x'), ('reference_gb', 'ref peak GB', '{:.2f}'),
                       ('fast_gb', 'fast peak GB', '{:.2f}')]))
    wall = time.perf_counter() - t0
    print(f"\nwall time {wall:.0f} s")
    for L, need in ((1024, 1.5), (8192, 4.0)):
        row = next((r for r in rows if r['preset'] == 'small' and r['shape'].endswith(f"x{L}")), None)
        if row and 'ratio' in row:
            print(f"target: small at {L} bytes >= {need}x the reference: {row['ratio']:.2f}x -> {'PASS' if row['ratio'] >= need else 'FAIL'}")
    write_result(result_path(__file__, a.out, a.quick),
                 {**meta, 'presets': a.presets.split(','), 'seqs': seqs, 'batch_bytes': a.batch_bytes, 'steps': a.steps,
                  'cap_gb': a.cap_gb, 'rows': rows, 'wall_s': wall})


if __name__ == '__main__':
    if '--child' in sys.argv: child_main(measure)
    else: main()
