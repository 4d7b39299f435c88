"""One row times a weight matrix, as a decoding step does it: `F.linear(x, W, b)` (W stored (out, in)) against
`addmm(b, x, W^T)` from a contiguous transposed copy (in, out), per matrix shape, in one run.

The shapes are those of the `small` preset's one-row products (768x256 and 256x256 projections, the MLPs' 1024x256
and 256x1024, written out x in), 12 of each shape: every shape's matrices together hold more than the CPU's L2
cache, as in a real step, where each matrix is read once per patch. Prints microseconds per matrix for each layout,
the faster one, the layout `agiformer.rows.linear_rows` picks for that shape (the transposed copy unless the
matrix is wider than it is tall, in > out), and the time a plain read of the same matrices takes (their sum), then
the total over one of each shape, and the machine. Then two pairs of products that read the same row
(as `agiformer.rows.linear_rows_cat` does when `RowKernels` has seen two layers read the same rows): two 768x256 (a hybrid block's two
mixers) and a 1024x256 with a 256x256 (System 2's MLP and gate), each pair as two products against one product with the stacked matrix. Last, the
exact GELU of M rows of 1,024 values (an MLP's hidden layer), as PyTorch computes it on the CPU (oneDNN's kernel)
against ATen's own kernel (oneDNN switched off), as `agiformer.rows.without_onednn` does up to 16,384 values.

    python bench/one_row_products.py [--threads 1]
    python bench/one_row_products.py --quick      # 2 matrices of each shape, fewer repeats: checks the script runs

A full run writes bench/results/one_row_products.json (`--out` elsewhere; `--quick` writes nothing unless given
`--out`), with the machine, the load average at the start, the command and the date.
"""
import argparse, time

from _harness import machine_note, run_meta, result_path, write_result

import torch
import torch.nn.functional as F

from agiformer.rows import without_onednn


def per_matrix_us(f, n_mats: int, repeats: int=7, loops: int=20) -> float:
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
    ap.add_argument('--copies', type=int, default=12, help='matrices of each shape')
    ap.add_argument('--quick', action='store_true', help='2 matrices of each shape, 2 repeats: checks the script runs')
    ap.add_argument('--out', default=None, help='results JSON (default: bench/results/one_row_products.json; none with --quick)')
    a = ap.parse_args()
    meta = run_meta(a.threads)
    repeats = 7
    if a.quick: a.copies, repeats = 2, 2
    timed = lambda f, n: per_matrix_us(f, n, repeats=repeats)
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    rec = {**meta, 'copies': a.copies, 'repeats': repeats, 'shapes': [], 'pairs': [], 'gelu': []}
    print(f"machine: {machine_note(a.threads)}")
    tot = {'stored': 0.0, 'transposed': 0.0, 'rule': 0.0}
    for out, inp in [(768, 256), (256, 256), (1024, 256), (256, 1024)]:
        W = [torch.randn(out, inp) for _ in range(a.copies)]; B = [torch.randn(out) for _ in W]
        WT = [w.t().contiguous() for w in W]
        x = torch.randn(1, inp)
        with torch.inference_mode():
            st = timed(lambda: [F.linear(x, w, b) for w, b in zip(W, B)], len(W))
            tr = timed(lambda: [torch.addmm(b, x, w) for w, b in zip(WT, B)], len(W))
            rd = timed(lambda: [w.sum() for w in W], len(W))
        rule = 'stored' if inp > out else 'transposed'
        tot['stored'] += st; tot['transposed'] += tr; tot['rule'] += st if rule == 'stored' else tr
        rec['shapes'].append(dict(out=out, inp=inp, stored_us=st, transposed_us=tr, read_us=rd, rule=rule))
        print(f"{out:5d} x {inp:<5d} ({out * inp * 4 / 2**20:.2f} MiB): stored (out, in) {st:6.1f} us, "
              f"transposed (in, out) {tr:6.1f} us; faster: {'stored' if st < tr else 'transposed'} "
              f"({max(st, tr) / min(st, tr):.2f}x); linear_rows reads: {rule}; a plain read (sum) {rd:6.1f} us, "
              f"the faster product takes {min(st, tr) / rd:.2f}x that")
    print(f"one matrix of each shape: stored {tot['stored']:.0f} us, transposed {tot['transposed']:.0f} us, "
          f"linear_rows' choice {tot['rule']:.0f} us: F.linear / linear_rows' choice = {tot['stored'] / tot['rule']:.2f}x")
    for outs in [(768, 768), (1024, 256)]:      # pairs that read one row: apart, and stacked (transposed layouts)
        parts = [[torch.randn(256, o) for o in outs] for _ in range(a.copies)]
        bias = [[torch.randn(o) for o in outs] for _ in range(a.copies)]
        stacked = [torch.cat(ws, 1).contiguous() for ws in parts]
        sbias = [torch.cat(bs) for bs in bias]
        x = torch.randn(1, 256)
        with torch.inference_mode():
            apart = timed(lambda: [torch.addmm(b, x, w) for ws, bs in zip(parts, bias) for w, b in zip(ws, bs)], a.copies)
            one = timed(lambda: [torch.addmm(b, x, w) for w, b in zip(stacked, sbias)], a.copies)
        rec['pairs'].append(dict(outs=list(outs), inp=256, apart_us=apart, stacked_us=one))
        print(f"{' + '.join(f'{o}x256' for o in outs)}: apart {apart:6.1f} us, stacked as one {sum(outs)}x256 {one:6.1f} us: "
              f"stacked / apart = {one / apart:.2f}x")
    for M in (1, 4, 16, 64):                    # GELU: oneDNN's kernel (the default) against ATen's
        xs = [torch.randn(M, 1024) for _ in range(a.copies)]
        with torch.inference_mode():
            onednn = timed(lambda: [F.gelu(x) for x in xs], a.copies)
            torch.backends.mkldnn.enabled = False
            try: aten = timed(lambda: [F.gelu(x) for x in xs], a.copies)
            finally: torch.backends.mkldnn.enabled = True
            uses = 'oneDNN' if without_onednn(lambda t: torch.backends.mkldnn.enabled, xs[0]) else 'ATen'   # asked, not copied
        print(f"GELU of {M:2d} x 1024: oneDNN {onednn:6.1f} us, ATen {aten:6.1f} us: ATen / oneDNN = {aten / onednn:.2f}x "
              f"(without_onednn uses: {uses})")
        rec['gelu'].append(dict(rows=M, width=1024, onednn_us=onednn, aten_us=aten, without_onednn_uses=uses))
    rec['one_of_each_us'] = tot
    write_result(result_path(__file__, a.out, a.quick), rec)


if __name__ == '__main__':
    main()
