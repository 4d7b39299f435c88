"""Generation speed: the original-style recompute path against the stateful decoder, same model, same prompt, one run.

Targets, on the `small` preset (d=256, 4 layers, T=3, random weights: speed does not depend on them),
greedy, a prompt of Python stdlib source:
  - 1,024-byte prompt, 512 new bytes: stateful >= 20x the original's loop on a 2-core CPU (the ratio depends on the
    CPU: the machine is printed with every run);
  - per-byte decode time with a 16,384-byte prompt within 1.2x of the 1,024-byte case;
  - prefill of a 65,536-byte prompt at batch 1 succeeds (time and peak memory reported).

Two recompute paths are timed. "original": the original's generation loop, exactly: for every new patch, the whole
model over the last 1,024 bytes with the original's algorithms, the attention ones (attn_impl='reference') and its
head's decode (the GRU module called byte by byte on concat(embedding of the previous byte, context), for every
position: `original_decode`), and the last patch is kept; the ratio target is against it. "lean": `recompute_generate(...,
context_bytes=1024)`, the same algorithm with this project's attention kernels, decoding only the last latent; its
ratio is printed too. A recompute costs the same for every patch (always a 1,024-byte window), so a measurement
stops early, with the rate over the bytes made so far, once it has run `--budget` seconds.

Every path is timed at 1 and at `--threads` intra-op threads, and each path's best is compared, so no ratio is
flattered by a badly threaded baseline (on a 2-core machine shared with other jobs, two threads can be 5x slower than
one). The paths are measured in rounds (`--rounds`): each round times, at each thread count, `--recompute-bytes` of
the original loop and of the lean recompute, then one stateful generation after each prompt, so that every path sees
the same spells of a shared machine (measured one after the other, minutes apart, two paths can see loads that
differ by half). Each path's rate is its median over the rounds; the ratio of the best medians is the headline, and
the ratio within each round (best stateful over best original of that round) is printed with its spread. The
stateful rate is end to end (prefill and generation); the decode rate excludes the prefill.

The weight-streaming limit: one decoded patch reads every weight of a step once (every layer, the final norm, System 2
once per patch however many refinements reuse it, the head's latent projection, its context share of the GRU input
weights, its hidden weights and its output layer) plus the rows of the derived tables it looks up (P rows of the
encoder's patch table, which stands for the embedding and the convolution, and P rows of the head's byte-gate table)
and the layers' caches (W keys and values, the S and z sums). Divided by the single-thread
memory read bandwidth measured in the same run (the sum of a 512 MiB float32 tensor, best of 5), it is the time a
patch would take if decoding did nothing but stream those bytes from memory once; the measured time per patch over
it is the headroom. (Weights that stay in the CPU's caches can beat it: it is a reference line, not a bound.)
The stateful figures are medians over the rounds, the two prompt lengths alternating.

    python bench/generate_speed.py [--threads 2] [--rounds 5] [--new-bytes 512] [--recompute-bytes 128] [--budget 60]
    python bench/generate_speed.py --quick      # the tiny preset and short prompts: checks the script runs (seconds)

A full run writes its figures to bench/results/generate_speed.json (`--out` elsewhere; `--quick` writes nothing unless
given `--out`), with the machine, the load average at the start, the command and the date; the last line it prints
is the same record.
"""
import argparse, json, os, statistics, sysconfig, time
from pathlib import Path

from _harness import cpu_model, run_meta, result_path, write_result


def read_bandwidth(mib: int = 512, repeats: int = 5) -> float:
    "Single-thread memory read bandwidth in bytes/s: the best of `repeats` sums of a `mib` MiB float32 tensor."
    import torch
    old = torch.get_num_threads(); torch.set_num_threads(1)
    try:
        a = torch.ones(mib * 2**20 // 4)
        best = float('inf')
        for _ in range(repeats):
            t = time.perf_counter(); a.sum().item(); best = min(best, time.perf_counter() - t)
        return a.numel() * 4 / best
    finally: torch.set_num_threads(old)


def bytes_per_patch(model) -> tuple[int, int]:
    "(weight bytes, cache bytes) one decoding step reads: see the module docstring."
    c = model.config
    table_read = ('encoder.byte_embedding.weight', 'encoder.patch_conv.weight', 'head.byte_emb.weight')  # through tables
    w = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if n not in table_read)
    w -= 3 * c.head_hidden * c.head_hidden * 4                       # the byte half of the GRU input weights (a table too)
    w += c.patch_size * (c.d_model + 3 * c.head_hidden) * 4          # the table rows a patch uses
    cache = c.n_layers * (2 * c.window_size * c.d_model + c.num_heads * c.head_dim * (c.head_dim + 1)) * 4
    return w, cache


def stdlib_text(n: int) -> bytes:
    "The first n bytes of the stdlib's *.py files concatenated in sorted relative-path order (the pystdlib corpus)."
    root = Path(sysconfig.get_paths()['stdlib'])
    out = bytearray()
    for p in sorted(root.rglob('*.py'), key=lambda p: p.relative_to(root).as_posix()):
        if 'site-packages' in p.parts: continue
        out += p.read_bytes()
        if len(out) >= n: break
    if len(out) < n: raise SystemExit(f"the stdlib holds only {len(out)} bytes of Python source; need {n}")
    return bytes(out[:n])


def peak_rss_reset() -> bool:
    "Reset the kernel's peak-RSS mark of this process (Linux); False where that is not possible."
    try:
        Path('/proc/self/clear_refs').write_text('5'); return True
    except OSError: return False


def rss_kb(field: str) -> int:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'): return int(line.split()[1])
    return -1


def original_decode(head, latents):
    "The original head's greedy decode: for every latent, P bytes one at a time through the GRU module, its state carried."
    import torch
    B, N, _ = latents.shape
    c = head.proj_latent(latents).reshape(B * N, 1, -1)                          # (BN, 1, hidden)
    prev, h, out = torch.zeros(B * N, 1, dtype=torch.long), None, []
    for _ in range(head.patch_size):
        o, h = head.rnn(torch.cat([head.byte_emb(prev), c], dim=-1), h)          # (BN, 1, hidden)
        prev = head.head(o).argmax(dim=-1)                                        # (BN, 1)
        out.append(prev)
    return torch.cat(out, dim=1).view(B, N, -1)                                   # (B, N, P)


def original_patches(model, prompt: bytes, context: int=1024):
    "The original's greedy loop, one new patch per iteration: the model over the last `context` bytes, keep its last patch."
    import torch
    seq = list(prompt)
    with torch.no_grad():
        while True:
            x = torch.tensor(seq[-context:], dtype=torch.long)[None]
            pred = original_decode(model.head, model.reasoning(model.backbone(x)))  # (1, N, P): a next patch per position
            new = pred[0, -1].tolist()
            seq += new
            yield bytes(new)


def lean_patches(model, prompt: bytes, context: int=1024):
    "recompute_generate one patch at a time (it keeps no state, so this is the same computation)."
    from agiformer.generate import recompute_generate
    seq = bytes(prompt)
    while True:
        new = recompute_generate(model, seq, model.patch_size, context_bytes=context)
        seq += new
        yield new


def budgeted_rate(patches, n_new: int, budget: float):
    "(bytes per second, bytes made, bytes) of an iterator of new patches, stopped at n_new bytes or `budget` seconds."
    out, t0 = bytearray(), time.perf_counter()
    for new in patches:
        out += new
        if len(out) >= n_new or time.perf_counter() - t0 > budget: break
    dt = time.perf_counter() - t0
    return len(out) / dt, len(out), bytes(out[:n_new])


def timed_stateful(model, prompt: bytes, n_new: int):
    "(total seconds, seconds to the first patch, decode seconds per byte after it, output bytes) of greedy generation."
    from agiformer.generate import generate_patches
    t0 = time.perf_counter()
    it = generate_patches(model, [prompt], n_new)
    first = next(it)[0]
    t1 = time.perf_counter()
    out = bytearray(first)
    for news in it: out += news[0]
    t2 = time.perf_counter()
    return t2 - t0, t1 - t0, (t2 - t1) / max(1, len(out) - len(first)), bytes(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--threads', type=int, default=2, help='thread count compared with 1 (torch intra-op threads)')
    ap.add_argument('--rounds', type=int, default=5, help='rounds of every path (medians reported)')
    ap.add_argument('--recompute-bytes', type=int, default=128, help='bytes each recompute path makes per round')
    ap.add_argument('--prompt-bytes', type=int, default=1024)
    ap.add_argument('--long-prompt-bytes', type=int, default=16384)
    ap.add_argument('--huge-prompt-bytes', type=int, default=65536)
    ap.add_argument('--new-bytes', type=int, default=512)
    ap.add_argument('--budget', type=float, default=60, help='seconds after which a round of a recompute path stops')
    ap.add_argument('--preset', default='small', help='model size (speed does not depend on the weights)')
    ap.add_argument('--quick', action='store_true', help='tiny preset, short prompts, two rounds: a smoke run')
    ap.add_argument('--out', default=None, help='results JSON (default: bench/results/generate_speed.json; none with --quick)')
    a = ap.parse_args()
    meta = run_meta(a.threads)
    if a.quick:
        a.preset, a.rounds, a.prompt_bytes, a.long_prompt_bytes, a.huge_prompt_bytes = 'tiny', 2, 256, 1024, 4096
        a.new_bytes, a.recompute_bytes, a.budget = min(a.new_bytes, 32), 16, min(a.budget, 5)
    import torch
    from agiformer.model import AGIFORMER
    from agiformer.generate import generate, recompute_generate
    torch.manual_seed(0)
    model = AGIFORMER.from_preset(a.preset).eval()
    orig_model = AGIFORMER.from_config(model.config.replace(attn_impl='reference')).eval()
    orig_model.load_state_dict(model.state_dict())
    text = stdlib_text(max(a.prompt_bytes, a.long_prompt_bytes, a.huge_prompt_bytes))
    prompt, long_prompt, huge_prompt = text[-a.prompt_bytes:], text[-a.long_prompt_bytes:], text[-a.huge_prompt_bytes:]
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}")
    print(f"{a.preset} preset ({model.num_params():,} parameters), greedy, {a.prompt_bytes:,}-byte prompt of stdlib source, "
          f"{a.new_bytes} new bytes")

    # correctness first: greedy stateful == greedy full-history recompute, byte for byte
    same = generate(model, prompt, 64) == recompute_generate(model, prompt, 64)
    print(f"stateful == full-history recompute on 64 greedy bytes: {same}")

    threads = sorted({1, a.threads})
    rates = {th: {'original': [], 'lean': []} for th in threads}
    made = {th: {'original': 0, 'lean': 0} for th in threads}
    runs = {th: {len(prompt): [], len(long_prompt): []} for th in threads}
    outs = {}
    for _ in range(a.rounds):                      # every round measures every path at every thread count
        for th in threads:
            torch.set_num_threads(th)
            for name, patches in (('original', original_patches(orig_model, prompt)), ('lean', lean_patches(model, prompt))):
                rate, n, out = budgeted_rate(patches, a.recompute_bytes, a.budget)
                rates[th][name].append(rate); made[th][name] += n; outs.setdefault(name, out)
            for p in (prompt, long_prompt): runs[th][len(p)].append(timed_stateful(model, p, a.new_bytes))
    k = min(len(outs['original']), len(outs['lean']))
    rows = {}
    for th in threads:
        r = rows[th] = {'original': statistics.median(rates[th]['original']), 'lean': statistics.median(rates[th]['lean']),
                        'original_bytes': made[th]['original'], 'lean_bytes': made[th]['lean'],
                        'recompute_paths_agree': outs['original'][:k] == outs['lean'][:k]}
        for name, p in (('short', prompt), ('long', long_prompt)):
            total, first, per_byte = (statistics.median(x[i] for x in runs[th][len(p)]) for i in range(3))
            r[name] = {'bytes_per_s': a.new_bytes / total, 'decode_bytes_per_s': 1 / per_byte, 'first_patch_ms': first * 1e3}
        print(f"{th} thread(s): original {r['original']:7.1f} B/s ({r['original_bytes']} bytes) | lean recompute "
              f"{r['lean']:7.1f} B/s ({r['lean_bytes']} bytes) | stateful {r['short']['bytes_per_s']:7.1f} B/s end to end, "
              f"{r['short']['decode_bytes_per_s']:7.1f} B/s decoding, first patch {r['short']['first_patch_ms']:.0f} ms | "
              f"{a.long_prompt_bytes:,}-byte prompt: {r['long']['decode_bytes_per_s']:7.1f} B/s decoding, "
              f"first patch {r['long']['first_patch_ms']:.0f} ms")
    # the same comparison within each round: best stateful over best original, measured seconds apart
    round_ratios = [max(a.new_bytes / runs[th][len(prompt)][i][0] for th in threads) /
                    max(rates[th]['original'][i] for th in threads) for i in range(a.rounds)]

    best = lambda f: max(rows.values(), key=f)
    orig_rate, lean_rate = max(r['original'] for r in rows.values()), max(r['lean'] for r in rows.values())
    st = best(lambda r: r['short']['bytes_per_s'])
    rate = st['short']['bytes_per_s']
    th_best = next(t for t, r in rows.items() if r is st)
    per_byte_ratio = st['short']['decode_bytes_per_s'] / st['long']['decode_bytes_per_s']
    print(f"\nbest of each path: original {orig_rate:.1f} B/s, lean recompute {lean_rate:.1f} B/s, "
          f"stateful {rate:.1f} B/s ({th_best} thread(s))")
    print(f"stateful / original:       {rate / orig_rate:7.1f}x   (target >= 20x on a 2-core CPU: {rate:.0f} B/s)")
    print(f"stateful / original within each round: median {statistics.median(round_ratios):.1f}x, "
          f"{min(round_ratios):.1f}x to {max(round_ratios):.1f}x over {a.rounds} rounds")
    print(f"stateful / lean recompute: {rate / lean_rate:7.1f}x")
    print(f"per-byte decode time, {a.long_prompt_bytes:,}-byte vs {a.prompt_bytes:,}-byte prompt: {per_byte_ratio:.2f}x "
          f"(target <= 1.2x)")
    # the position scheme (wrap, the default) against plain absolute positions: same model, same prompt, this run
    torch.set_num_threads(th_best)
    pos_rates = {}
    for _ in range(a.rounds):
        for scheme in ('absolute', model.config.positions):
            model.encoder.positions = scheme
            pos_rates.setdefault(scheme, []).append(1 / timed_stateful(model, prompt, a.new_bytes)[2])
    model.encoder.positions = model.config.positions
    pos_ratio = statistics.median(pos_rates[model.config.positions]) / statistics.median(pos_rates['absolute'])
    print(f"decoding with positions={model.config.positions!r} vs 'absolute' (same run, {th_best} thread(s)): "
          f"{pos_ratio:.3f}x the speed")
    # the fixed cost of the operations: the same structure with D = 32 and a 32-wide head, whose products cost ~nothing
    ops_model = AGIFORMER.from_config(model.config.replace(d_model=32, head_hidden=32)).eval()
    ops_ms = model.patch_size * 1e3 * statistics.median(timed_stateful(ops_model, prompt, a.new_bytes)[2]
                                                        for _ in range(a.rounds))
    w_bytes, c_bytes = bytes_per_patch(model)
    bw = read_bandwidth()
    limit_ms = (w_bytes + c_bytes) / bw * 1e3
    patch_ms = model.patch_size / st['short']['decode_bytes_per_s'] * 1e3
    print(f"decode time per patch {patch_ms:.2f} ms vs the weight-streaming limit {limit_ms:.2f} ms "
          f"({w_bytes / 2**20:.1f} MiB of weights + {c_bytes / 2**20:.2f} MiB of caches per patch at "
          f"{bw / 1e9:.1f} GB/s single-thread read bandwidth): {patch_ms / limit_ms:.2f}x the limit")
    print(f"the same structure with d_model 32 (its operations, almost no weights): {ops_ms:.2f} ms per patch, "
          f"{ops_ms / patch_ms:.0%} of the {a.preset} model's")

    huge = {}
    for th in sorted({1, a.threads}):
        torch.set_num_threads(th)
        x = torch.tensor(list(huge_prompt), dtype=torch.long)[None]
        base, reset = rss_kb('VmRSS'), peak_rss_reset()
        t = time.perf_counter()
        with torch.inference_mode(): z, _ = model.prefill(x)
        secs, peak = time.perf_counter() - t, rss_kb('VmHWM')
        huge[th] = {'seconds': secs, 'peak_rss_gib': peak / 2**20,
                    'above_base_gib': (peak - base) / 2**20 if reset else None, 'finite': bool(torch.isfinite(z).all())}
        mem = (f"peak RSS {peak / 2**20:.2f} GiB, {(peak - base) / 2**20:.2f} GiB above the {base / 2**20:.2f} GiB before"
               if reset else f"peak RSS of the process so far {peak / 2**20:.2f} GiB")
        print(f"prefill of a {a.huge_prompt_bytes:,}-byte prompt, batch 1, {th} thread(s): {secs:.2f} s, {mem}; "
              f"latent finite: {huge[th]['finite']}")
    rec = {**meta, 'preset': a.preset, 'rounds': a.rounds, 'prompt_bytes': a.prompt_bytes,
           'long_prompt_bytes': a.long_prompt_bytes, 'huge_prompt_bytes': a.huge_prompt_bytes, 'new_bytes': a.new_bytes,
           'recompute_bytes': a.recompute_bytes, 'stateful_equals_recompute': same, 'by_threads': rows,
           'original_bytes_per_s': orig_rate, 'lean_recompute_bytes_per_s': lean_rate, 'stateful_bytes_per_s': rate,
           'best_threads': th_best, 'ratio_vs_original': rate / orig_rate, 'round_ratios': round_ratios,
           'ratio_vs_lean': rate / lean_rate, 'per_byte_ratio_long': per_byte_ratio, 'prefill_huge': huge,
           'patch_ms': patch_ms, 'streaming_limit_ms': limit_ms, 'weight_bytes_per_patch': w_bytes,
           'cache_bytes_per_patch': c_bytes, 'read_bandwidth_gbs': bw / 1e9, 'ops_only_patch_ms': ops_ms,
           'positions_speed_ratio': pos_ratio}
    write_result(result_path(__file__, a.out, a.quick), rec)
    print(json.dumps(rec))


if __name__ == '__main__':
    main()
