"""GPU benchmark: reference vs fast attention at the seed preset, fp32 / fp16 / bf16, eager and torch.compile.

Shapes batch 4 x 1,024 and 1 x 16,384 bytes. Each case builds the model (seed 0, train mode), runs `--warmup`
untimed training steps (compilation happens there) and `--steps` timed ones: forward, cross-entropy, backward
(fp16 through a GradScaler), clipping at 0.5, AdamW; CUDA is synchronised around the timed steps. It prints
predicted bytes/s, peak GPU memory (max_memory_allocated), whether the last loss was finite, and the fast/reference
ratio of each pair. Cases run eager first, then compiled; a time budget (`--budget-s`, default 420 s) skips a case
that the longest similar case so far says would end after it, rather than overrun 8 minutes. fp32 runs at PyTorch's
default matmul precision (no TF32). Target (issue 6): fast >= 3x the reference's bytes/s at the seed preset.

    python bench/gpu.py                              # on a CUDA machine
    python bench/gpu.py --no-compile                 # eager only
    python bench/gpu.py --device cpu --quick         # dry run on a CPU: tiny preset, tiny shapes (tests this script)
"""
import argparse, math, sys, time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from agiformer.model import AGIFORMER

DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def gb(x): return '-' if x is None else f"{x:.2f}"


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def run_case(preset, impl, prec, compiled, B, L, dev, warmup, steps):
    "Train `warmup + steps` steps; -> dict of the timed steps' figures."
    torch.manual_seed(0)
    if compiled: torch._dynamo.reset()
    model = AGIFORMER.from_preset(preset, attn_impl=impl).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    scaler = torch.amp.GradScaler(dev.type, enabled=prec == 'fp16')
    amp = torch.autocast(dev.type, dtype=DTYPES[prec]) if DTYPES[prec] else nullcontext()
    fwd = torch.compile(model) if compiled else model
    P = model.config.patch_size
    g = torch.Generator(device='cpu').manual_seed(0)
    seqs = [torch.randint(0, 256, (B, L + P), generator=g).to(dev) for _ in range(2)]
    def step(seq):
        x, y = seq[:, :-P], seq[:, P:]
        with amp:
            logits = fwd(x, y)                                                  # (B, N, P, 256)
        loss = F.cross_entropy(logits.reshape(-1, 256).float(), y.reshape(-1))
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        scaler.step(opt); scaler.update(); opt.zero_grad(set_to_none=True)
        return loss
    t0 = time.perf_counter()
    for i in range(warmup): step(seqs[i % 2])
    sync(dev)
    t_warm = time.perf_counter() - t0
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for i in range(steps): loss = step(seqs[i % 2])
    sync(dev)
    dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(dev) / 2 ** 30 if dev.type == 'cuda' else None   # no GPU memory on a dry run
    return {'bytes_per_s': B * L / dt, 's_per_step': dt, 'peak_gb': peak, 'finite': bool(math.isfinite(loss.item())),
            'warmup_s': t_warm}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--preset', default=None, help='default seed (tiny with --quick)')
    ap.add_argument('--shapes', default=None, help='BATCHxBYTES, comma-separated (default 4x1024,1x16384; 2x64,1x512 with --quick)')
    ap.add_argument('--precisions', default='fp32,fp16,bf16')
    ap.add_argument('--no-compile', action='store_true', help='eager cases only')
    ap.add_argument('--warmup', type=int, default=None, help='untimed steps per case (default 3; 1 with --quick)')
    ap.add_argument('--steps', type=int, default=None, help='timed steps per case (default 10; 1 with --quick)')
    ap.add_argument('--budget-s', type=float, default=420.0, help='skip a case that would end after this much time')
    ap.add_argument('--quick', action='store_true', help='tiny preset, shapes 2x64 and 1x512, 1+1 steps: a dry run')
    a = ap.parse_args()
    for k, full, quick in (('preset', 'seed', 'tiny'), ('shapes', '4x1024,1x16384', '2x64,1x512'), ('warmup', 3, 1), ('steps', 10, 1)):
        if getattr(a, k) is None: setattr(a, k, quick if a.quick else full)
    dev = torch.device(a.device)
    if dev.type == 'cuda':
        if not torch.cuda.is_available(): sys.exit("CUDA is not available here: run on a GPU machine, or use --device cpu --quick for a dry run")
        print(f"device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
    else: print(f"device: {dev} (a dry run: figures are not GPU figures), torch {torch.__version__}")
    precs = a.precisions.split(',')
    bad = [p for p in precs if p not in DTYPES]
    if bad: sys.exit(f"unknown precision(s) {bad}: choose from {list(DTYPES)}")
    shapes = [tuple(int(v) for v in s.split('x')) for s in a.shapes.split(',')]
    cases = [(c, (B, L), p, impl) for c in ([False] if a.no_compile else [False, True])
             for (B, L) in shapes for p in precs for impl in ('reference', 'fast')]
    t_start, res, longest = time.perf_counter(), {}, {}
    for compiled, (B, L), prec, impl in cases:
        key = (compiled, B, L, prec, impl)
        expect = longest.get((compiled, L), 0.0)            # the longest similar case so far predicts this one
        if time.perf_counter() - t_start + expect > a.budget_s:
            res[key] = {'status': 'skipped (budget)'}; continue
        t_case = time.perf_counter()
        try: res[key] = {'status': 'ok', **run_case(a.preset, impl, prec, compiled, B, L, dev, a.warmup, a.steps)}
        except torch.cuda.OutOfMemoryError: res[key] = {'status': 'out of memory'}
        except Exception as e: res[key] = {'status': f'failed: {type(e).__name__}: {str(e)[:120]}'}
        finally:
            if dev.type == 'cuda': torch.cuda.empty_cache()
            longest[compiled, L] = max(longest.get((compiled, L), 0.0), time.perf_counter() - t_case)
        r = res[key]
        print(f"  {'compiled' if compiled else 'eager':8s} {B}x{L} {prec} {impl:9s}: " +
              (f"{r['bytes_per_s']:,.0f} B/s, {gb(r['peak_gb'])} GB, warm-up {r['warmup_s']:.1f} s" if r['status'] == 'ok' else r['status']),
              flush=True)
    print(f"\npreset {a.preset}; {a.steps} timed steps after {a.warmup} warm-up steps per case\n")
    hdr = f"{'mode':8s} {'shape':>8s} {'prec':>4s} | {'ref bytes/s':>12s} {'ref GB':>7s} | {'fast bytes/s':>12s} {'fast GB':>7s} | {'fast/ref':>8s} {'vs ref fp32 eager':>17s}"
    print(hdr); print('-' * len(hdr))
    for compiled in ([False] if a.no_compile else [False, True]):
        for (B, L) in shapes:
            base = res.get((False, B, L, 'fp32', 'reference'), {})
            for prec in precs:
                r, f = res[(compiled, B, L, prec, 'reference')], res[(compiled, B, L, prec, 'fast')]
                cell = lambda x: (f"{x['bytes_per_s']:12,.0f} {gb(x['peak_gb']):>7s}" + ('' if x['finite'] else ' (loss not finite)')
                                  if x['status'] == 'ok' else f"{x['status'][:20]:>20s}")
                ratio = f"{f['bytes_per_s'] / r['bytes_per_s']:7.2f}x" if r['status'] == f['status'] == 'ok' else f"{'-':>8s}"
                vs = f"{f['bytes_per_s'] / base['bytes_per_s']:16.2f}x" if f['status'] == 'ok' and base.get('status') == 'ok' else f"{'-':>17s}"
                print(f"{'compiled' if compiled else 'eager':8s} {f'{B}x{L}':>8s} {prec:>4s} | {cell(r)} | {cell(f)} | {ratio} {vs}")
    print(f"\nwall time {time.perf_counter() - t_start:.0f} s")


if __name__ == '__main__':
    main()
