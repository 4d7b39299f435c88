"""The README's Measurements table, read from the results the benchmark scripts wrote in bench/results/.

Every figure of that table comes from a JSON file written by the script named in its row when it measured it.
`rows()` reads the files and gives the table's rows (what was measured, this project's figure, the other side's, the
script, the machine it ran on), `table()` their Markdown. nbs/index.ipynb shows `table()`, README.md is made from it,
and scripts/docs_check.py fails when README.md's table differs from what `table()` gives for the committed files: after
a new measurement, re-execute the index (`python scripts/execute_nbs.py nbs/index.ipynb`) and run
`python scripts/make_readme.py`. A row whose JSON is missing is left out.

The statistics the study chapter (17) uses are here too (`t95`, `ci`, `study_final`, `paired`), so that its headline
rows (`headline_rows`) and the README's are one function. From a notebook in nbs/:

    import sys; sys.path.insert(0, '../bench')
    from measurements import table, load, source
"""
import json, math, statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / 'results'
HEADER = ('| what | this project | the original (or the baseline) | script | measured on |\n'
          '| --- | --- | --- | --- | --- |')


def load(name: str) -> dict|None:
    "bench/results/{name}.json, or None when that benchmark has not been run."
    p = RESULTS / f'{name}.json'
    return json.loads(p.read_text()) if p.exists() else None


def machine(rec: dict) -> str:
    "The machine a results file names, with the load average at the start and the date where it records them."
    s = f"{rec.get('machine', '?')}, {rec.get('cores', '?')} cores, torch {rec.get('torch', '?')}"
    if rec.get('load_1min') is not None: s += f", load {rec['load_1min']:.1f} at the start"
    if rec.get('date_utc'): s += f", {rec['date_utc'][:10]}"
    return s


def source(name: str) -> str:
    "One line for a table or figure read from bench/results/{name}.json: the script, its command, the machine, the load."
    rec = load(name)
    if rec is None: return f"bench/results/{name}.json is missing: run `python bench/{name}.py`"
    cmd = rec.get('command', f'python bench/{name}.py')
    return (f"measured by `{cmd}` on {rec.get('machine', '?')} ({rec.get('cores', '?')} cores, torch {rec.get('torch', '?')}"
            + (f", {rec['threads']} thread{'s' if rec['threads'] != 1 else ''}" if rec.get('threads') else '')
            + (f"; load average {rec['load_1min']:.1f} when it started" if rec.get('load_1min') is not None else '')
            + (f"; {rec['date_utc']}" if rec.get('date_utc') else '') + f"), from bench/results/{name}.json")


# ---- statistics (chapter 17 uses them too) ----

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]     # t quantiles, 1 .. 10 degrees of freedom

def t95(d: list) -> tuple:
    "(mean, half-width of the 95% t interval with n - 1 degrees of freedom) of `d`; the half-width is nan for one value."
    m = statistics.mean(d)
    return m, (T975[len(d) - 2] * statistics.stdev(d) / math.sqrt(len(d)) if 1 < len(d) <= 11 else float('nan'))

def ci(d: list, f: str='+.3f') -> str:
    "'mean ± half-width' of the 95% t interval, e.g. '+0.036 ± 0.011'."
    m, h = t95(d)
    return f"{m:{f}}" + ('' if math.isnan(h) else f" ± {h:{f.lstrip('+')}}")

def chosen(bs: dict, budget: str, name: str) -> float|None:
    "The rate the baseline study chose on validation for (budget, name): the one its further seeds ran at (None before them)."
    return next((r['lr'] for r in bs['runs'] if (r['budget'], r['name'], r['stage']) == (budget, name, 'seeds')), None)

def study_final(bs: dict) -> dict:
    "{(budget, name): the baseline study's runs at the chosen rate, by seed}."
    out = {}
    for b in bs.get('budgets', {}):
        for n in bs.get('configs', {}):
            if (lr := chosen(bs, b, n)) is None: continue
            out[b, n] = sorted((r for r in bs['runs'] if (r['budget'], r['name'], r['lr']) == (b, n, lr)), key=lambda r: r['seed'])
    return out

def paired(final: dict, b: str, x: str, y: str, key: str='test_bpc') -> list:
    "Seed-by-seed differences x - y at budget b, on the seeds both ran at their chosen rates."
    ys = {r['seed']: r[key] for r in final.get((b, y), [])}
    return [r[key] - ys[r['seed']] for r in final.get((b, x), []) if r['seed'] in ys]


# ---- the rows ----

def row(what: str, ours: str, other: str, script: str, rec: dict) -> str:
    "One row of the table."
    return f"| {what} | {ours} | {other} | `{script}` | {machine(rec)} |"


def headline_rows(bs: dict|None = None) -> list:
    "The baseline study's rows: AGIFORMER T = 3 and T = 0 against a byte-level GPT, per budget with two seeds or more."
    bs = load('baseline_study') if bs is None else bs
    if bs is None: return []
    final, rows = study_final(bs), []
    for b in bs['budgets']:
        if not all(len(final.get((b, n), [])) > 1 for n in ('T3', 'T0', 'GPT')): continue
        k = min(len(final[b, n]) for n in ('T3', 'T0', 'GPT'))
        test = lambda n: ci([r['test_bpc'] for r in final[b, n]], '.3f')
        rows.append(row(f"baseline study {b}: small, {bs['budgets'][b]['steps']:,} steps on pystdlib, test BPC (protocol), "
                        f"AGIFORMER T = 3 and T = 0 against a byte-level GPT at equal training FLOPs "
                        f"({final[b, 'GPT'][0]['train_flops'] / final[b, 'T3'][0]['train_flops']:.2f}x), each at its own best "
                        f"rate; mean ± 95% t over seeds",
                        f"T = 3: {test('T3')}; T = 0: {test('T0')}; GPT: {test('GPT')}; "
                        f"GPT minus T = 3, paired: {ci(paired(final, b, 'GPT', 'T3'))} ({k} seeds)", '', 'bench/baseline_study.py', bs))
    return rows


def _train_small_600(r: dict) -> list:
    val = ' / '.join(f"{int(s):,}" for s in r['val'])
    out = [row(f"small, {r['steps']:,} steps of the original's recipe on pystdlib: val BPC at {val} (protocol)",
               ' / '.join(f"{v:.3f}" for v in r['val'].values()), '', 'bench/train_small_600.py', r),
           row('same run: test BPC', f"{r['test_bpc']:.3f}", '', 'bench/train_small_600.py', r)]
    if (c := r.get('same_run_s_per_step')):
        out.append(row(f"same run: seconds per training step, small, 4 x 1,024 (this project's kernels vs the original's "
                       f"algorithms, same model, median of {r['compare_steps']} steps)",
                       f"{c['fast']:.2f} s ({c['reference'] / c['fast']:.1f}x)", f"{c['reference']:.2f} s (1x)",
                       'bench/train_small_600.py', r))
    return out


def _throughput(r: dict) -> list:
    x = next((x for x in r['rows'] if (x['preset'], x['shape']) == ('small', '4x1024') and 'ratio' in x), None)
    if x is None: return []
    return [row("training bytes/s, small, 4 x 1,024 (this project's kernels vs the original's algorithms, same model, "
                f"fastest of {r['steps']} steps)", f"{x['ratio']:.1f}x ({x['fast']:,.0f} B/s)",
                f"1x ({x['reference']:,.0f} B/s)", 'bench/throughput.py', r)]


def _generate_speed(r: dict) -> list:
    rr = r['round_ratios']
    return [row(f"generation bytes/s, {r['preset']}, {r['prompt_bytes']:,}-byte prompt, {r['new_bytes']} new bytes, greedy "
                f"(stateful steps vs the original's loop, each path's median over {r['rounds']} rounds, best thread count)",
                f"{r['ratio_vs_original']:.1f}x ({r['stateful_bytes_per_s']:,.0f} B/s); within each round "
                f"{statistics.median(rr):.1f}x ({min(rr):.1f}x to {max(rr):.1f}x)",
                f"1x ({r['original_bytes_per_s']:.1f} B/s)", 'bench/generate_speed.py', r)]


def _context_length(r: dict) -> list:
    res = {(x['model'], x['scheme']): x for x in r['results']}
    if ('protocol', 'wrap') not in res or ('protocol', 'absolute') not in res: return []
    ws = [str(w) for w in r['windows']]
    fmt = lambda x: ' / '.join(f"{x[w]:.3f}" for w in ws)
    return [row(f"val BPC of the protocol model in {' / '.join(str(int(w) // 1024) for w in ws)} KB windows, same bytes "
                "(wrapped positions vs the original's absolute ones)", fmt(res['protocol', 'wrap']),
                fmt(res['protocol', 'absolute']), 'bench/context_length.py', r)]


def _system2_study(r: dict) -> list:
    by = {}
    for x in r['runs']: by.setdefault(x['name'], []).append(x)
    if not {'T3-fixed', 'T0', 'T0-deeper', 'recommended'} <= set(by): return []
    sd = lambda n: f"{statistics.mean(x['val_bpc'] for x in by[n]):.4f} ± {statistics.stdev(x['val_bpc'] for x in by[n]):.4f}"
    flops = lambda n: by[n][0]['train_flops'] / by['T3-fixed'][0]['train_flops']
    k, ref, s = len(by['T3-fixed']), sd('T3-fixed'), 'bench/system2_study.py'
    return [row(f"System 2 study, small, 600 steps on pystdlib, val BPC (protocol), mean ± sd over {k} seeds: without System 2 "
                f"(T = 0, {1 - flops('T0'):.0%} fewer training FLOPs) vs the original's T = 3", sd('T0'), ref, s, r),
            row(f"same study: without System 2 but with {by['T0-deeper'][0]['config']['n_layers']} layers instead of "
                f"{by['T0'][0]['config']['n_layers']} (training FLOPs within {abs(flops('T0-deeper') - 1):.0%} of T = 3) vs the "
                "original's T = 3", sd('T0-deeper'), ref, s, r),
            row("same study: the recommended recipe (lr 2e-3, 50 warm-up steps, cosine, no dropout) vs the original's recipe, "
                "both T = 3", sd('recommended'), ref, s, r)]


def _quickstart(r: dict) -> list:
    w = round(r['wall_s'])
    return [row(f"`bash scripts/quickstart`: the `mini` preset, {r['steps']:,} steps of the `short` recipe",
                f"val BPC {r['val_bpc']:.3f} in {w // 60} min {w % 60} s (`.venv` already set up; the sample included)",
                '', 'bench/quickstart.py', r)]


def stalled(run: dict, step: int = 200, margin: float = 0.25) -> bool:
    "A stability run that stalled: its val BPC at `step` still within `margin` of the bytes' frequencies (unigram BPC)."
    return run['unigram_bpc'] - next(x['bpc'] for x in run['signals'] if x['step'] == step) <= margin


def stability_pairs(r: dict, corpus: str) -> tuple:
    "(seeds, T3 - T0, T3 - T3-original): the stability study's test BPC differences on `corpus`, paired by seed."
    srun = {(x['corpus'], x['name'], x['seed']): x for x in r['runs']}
    seeds = sorted(s for c, n, s in srun if (c, n) == (corpus, 'T3') and (c, 'T0', s) in srun and (c, 'T3-original', s) in srun)
    diff = lambda other: [srun[corpus, 'T3', s]['test_bpc'] - srun[corpus, other, s]['test_bpc'] for s in seeds]
    return seeds, diff('T0'), diff('T3-original')


def _stability(r: dict) -> list:
    parts, worst0, worsto = [], [], []
    for corpus, label in (('pystdlib', 'pystdlib'), ('stdlib-prose', 'English prose (stdlib-prose)')):
        seeds, d0, do = stability_pairs(r, corpus)
        if not seeds: continue
        parts.append(f"{label}, {len(seeds)} seeds: {ci(d0)} and {ci(do)}"); worst0.append(max(d0)); worsto.append(max(do))
    if not parts: return []
    short = [x for x in r['runs'] if x['name'] in ('T3', 'T0')]
    n_stalled = sum(map(stalled, short))
    prev = [x for x in r['runs'] if (x['corpus'], x['name']) == ('stdlib-prose', 'T3-recommended')]
    was = [x for x in prev if stalled(x)]
    text = (f"{'; '.join(parts)}; worst seeds {max(worst0):+.3f} and {max(worsto):+.3f}; "
            + ('no run stalled' if not n_stalled else f"{n_stalled} of {len(short)} runs stalled")
            + (f" (the previous recipe stalled {len(was)} of {len(prev)} prose seeds at "
               f"{', '.join(format(x['test_bpc'], '.3f') for x in was)})" if was else ''))
    return [row("recipe stability, small, 600 steps, test BPC (protocol): the `short` recipe's T = 3 minus T = 0, and minus "
                "the original's recipe, paired by seed (95% t)", text, '', 'bench/stability.py', r)]


def _memory(r: dict) -> list:
    ok = {(x['impl'], x['bytes']): x for x in r['rows'] if x.get('status') == 'ok'}
    L = max(r['sizes'])
    if ('fast', L) not in ok: return []
    if ('reference', L) in ok: other = f"{ok['reference', L]['peak_gb']:.1f} GB"
    elif (e := next((e for e in r.get('extrapolated', []) if (e['impl'], e['bytes']) == ('reference', L)), None)):
        pts = e['from_bytes']
        other = (f"about {e['peak_gb']:.0f} GB (*extrapolated* from its measured "
                 f"{' / '.join(format(ok['reference', p]['peak_gb'], '.2f') for p in pts)} GB at "
                 f"{' / '.join(str(p // 1024) for p in pts)} KB; not run: more than the machine has)")
    else: other = 'not measured'
    return [row(f"peak memory of one training step at {L:,} bytes, batch 1, {r['preset']}", f"{ok['fast', L]['peak_gb']:.1f} GB",
                other, 'bench/memory.py', r)]


SECTIONS = [('train_small_600', _train_small_600), ('throughput', _throughput), ('generate_speed', _generate_speed),
            ('context_length', _context_length), ('system2_study', _system2_study), ('quickstart', _quickstart),
            ('stability', _stability), ('baseline_study', headline_rows), ('memory', _memory)]


def rows() -> list:
    "The table's rows (Markdown), in order, from every results file present."
    return [x for name, f in SECTIONS if (r := load(name)) is not None for x in f(r)]


def table() -> str:
    "The README's Measurements table, in Markdown."
    return '\n'.join([HEADER, *rows()])


if __name__ == '__main__': print(table())
