"""One row times a weight matrix, as a decoding step does it: `F.linear(x, W, b)` against `addmm(b, x, W^T)` from a
contiguous transposed copy (what `agiformer.core.linear_rows` keeps), in one run.

The matrices have the shapes of the `small` preset's layers (768x256, 256x256, 1024x256, 256x1024), 12 of each:
about 38 MB, more than the CPU's caches hold, as in a real step. Prints microseconds per matrix for each way, the
ratio, and the machine.

    python bench/one_row_products.py [--threads 1]
"""
import argparse, time

from _harness import machine_note

import torch
import torch.nn.functional as F


def per_matrix_us(f, n_mats: int, repeats: int=5, loops: int=20) -> float:
    "Best over `repeats` of the mean microseconds per matrix of `f` (which multiplies all of them once)."
    for _ in range(3): f()
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(loops): f()
        best = min(best, (time.perf_counter() - t) / loops / n_mats * 1e6)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    shapes = [(768, 256), (256, 256), (1024, 256), (256, 1024)] * 12
    W = [torch.randn(o, i) for o, i in shapes]; B = [torch.randn(o) for o, _ in shapes]
    WT = [w.t().contiguous() for w in W]
    x = {i: torch.randn(1, i) for i in (256, 1024)}
    with torch.inference_mode():
        lin = per_matrix_us(lambda: [F.linear(x[w.shape[1]], w, b) for w, b in zip(W, B)], len(W))
        tr = per_matrix_us(lambda: [torch.addmm(b, x[w.shape[0]], w) for w, b in zip(WT, B)], len(W))
    mb = sum(w.numel() for w in W) * 4 / 2**20
    print(f"machine: {machine_note(a.threads)}")
    print(f"{len(W)} matrices, {mb:.1f} MiB: F.linear {lin:.1f} us/matrix, transposed copy {tr:.1f} us/matrix: "
          f"{lin / tr:.2f}x")


if __name__ == '__main__':
    main()
