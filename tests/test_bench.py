"""The benchmark scripts of bench/ run end to end (tiny sizes, real subprocesses); figures are not asserted.

Every script writes its results JSON where `--out` says; a `--quick` run without `--out` writes nothing, and no test
here ever touches the committed bench/results/*.json (checked around every test).
"""
import hashlib, json, os, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLOW = 'slow' in os.environ.get('AGIFORMER_TEST_FLAGS', '').split()
# the scripts whose results JSON holds one run (the studies merge records into theirs: quick_records below)
ONE_RUN = ('throughput', 'generate_speed', 'memory', 'train_small_600', 'one_row_products', 'quickstart')


def run(*args, timeout=300):
    p = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.fixture(autouse=True)
def committed_results_untouched():
    "No test writes the committed results of the one-run scripts."
    def digest(): return {n: hashlib.sha256(f.read_bytes()).hexdigest() if (f := ROOT / 'bench' / 'results' / f'{n}.json').exists()
                          else None for n in ONE_RUN}
    before = digest()
    yield
    assert digest() == before, 'a test wrote a committed bench/results JSON: give the script --out in a temporary folder'


def results(path: Path, script: str) -> dict:
    "The JSON a run wrote to `path`, checked for the record every results file carries."
    rec = json.loads(path.read_text())
    for k in ('machine', 'cores', 'torch', 'threads', 'load_1min', 'command', 'date_utc', 'git_rev'): assert k in rec, k
    assert isinstance(rec['load_1min'], float) and rec['machine'] and rec['cores'] >= 1, rec
    assert rec['command'].startswith(f'python bench/{script}.py ') and '--out' in rec['command'], rec['command']
    assert re.fullmatch(r'\d{4}-\d\d-\d\d \d\d:\d\d UTC', rec['date_utc']), rec['date_utc']
    return rec


def test_quick_writes_no_results(tmp_path):
    "--quick without --out writes nothing and says so; the default for a full run is the committed file."
    out = run('bench/one_row_products.py', '--quick')
    assert 'results: not written (--quick without --out)' in out, out
    sys.path.insert(0, str(ROOT / 'bench'))
    try: from _harness import result_path, RESULTS
    finally: sys.path.pop(0)
    assert result_path('bench/memory.py', None, quick=False) == RESULTS / 'memory.json'
    assert result_path('bench/memory.py', None, quick=True) is None
    assert result_path('bench/memory.py', str(tmp_path / 'm.json'), quick=False) == tmp_path / 'm.json'


def test_memory_quick(tmp_path):
    out = run('bench/memory.py', '--quick', '--sizes', '256,512', '--out', str(tmp_path / 'memory.json'))
    rows = [l for l in out.splitlines() if re.match(r'\s*(256|512)\s+(reference|fast)\s', l)]
    assert len(rows) == 4 and all(l.rstrip().endswith('ok') for l in rows), out
    assert 'memory per byte 256 -> 512' in out
    rec = results(tmp_path / 'memory.json', 'memory')
    assert [(r['bytes'], r['impl'], r['status']) for r in rec['rows']] == [
        (L, i, 'ok') for L in (256, 512) for i in ('reference', 'fast')]
    assert rec['preset'] == 'tiny' and all(r['peak_gb'] > 0 for r in rec['rows'])


def test_memory_guard_stops_the_reference(tmp_path):
    "A cap too small for the run: the child's allocation fails and is reported, the script still finishes."
    out = run('bench/memory.py', '--preset', 'small', '--sizes', '16384', '--impls', 'reference', '--cap-gb', '2',
              '--out', str(tmp_path / 'memory.json'))
    assert 'stopped by the memory guard (2 GB)' in out, out
    assert results(tmp_path / 'memory.json', 'memory')['rows'][0]['status'] == 'stopped by the memory guard (2 GB)'


def test_throughput_quick(tmp_path):
    out = run('bench/throughput.py', '--quick', '--seqs', '256', '--out', str(tmp_path / 'tp.json'))
    assert re.search(r'tiny\s+16x256\s+[\d,]+\s+[\d,]+\s+[\d.]+x', out), out
    rec = results(tmp_path / 'tp.json', 'throughput')
    (row,) = rec['rows']
    assert (row['preset'], row['shape']) == ('tiny', '16x256') and row['reference'] > 0 and row['fast'] > 0, row
    assert abs(row['ratio'] - row['fast'] / row['reference']) < 1e-9 and rec['steps'] == 1


def test_train_small_600_quick(tmp_path):
    "The 600-step run's script, tiny and 6 steps: its record holds every figure it prints."
    out = run('bench/train_small_600.py', '--quick', '--out', str(tmp_path / 't.json'))
    rec = results(tmp_path / 't.json', 'train_small_600')
    assert (rec['preset'], rec['steps'], sorted(rec['val'])) == ('tiny', 6, ['3', '6']), rec
    assert 0 < rec['test_bpc'] < 9 and rec['s_per_step'] > 0 and sorted(rec['same_run_s_per_step']) == ['fast', 'reference']
    assert 'quoted' not in out and f"test BPC (last)" in out


def test_quickstart_quick(tmp_path):
    "scripts/quickstart, 12 steps, in a temporary copy: the checkout's runs/ is not written."
    if not (Path(sys.prefix) / '.agiformer-installed').exists():
        pytest.skip(f"needs the environment scripts/env.sh sets up (bash scripts/test runs in it), not {sys.prefix}")
    qs = ROOT / 'runs' / 'quickstart' / 'metrics.jsonl'
    before = qs.stat().st_mtime_ns if qs.exists() else None
    run('bench/quickstart.py', '--quick', '--out', str(tmp_path / 'q.json'), timeout=900)
    rec = results(tmp_path / 'q.json', 'quickstart')
    assert rec['steps'] == 12 and [s for s, _ in rec['val_curve']] == [6, 12] and rec['wall_s'] > 0, rec
    assert rec['val_bpc'] == rec['val_curve'][-1][1] and rec['best_val_bpc'] <= rec['val_bpc']
    assert (qs.stat().st_mtime_ns if qs.exists() else None) == before


def test_generate_speed_quick(tmp_path):
    out = run('bench/generate_speed.py', '--quick', '--threads', '1', '--out', str(tmp_path / 'g.json'))
    assert 'stateful == full-history recompute on 64 greedy bytes: True' in out, out
    assert re.search(r'machine: .+, \d+ logical cores, torch ', out), out
    assert re.search(r'decode time per patch [\d.]+ ms vs the weight-streaming limit [\d.]+ ms', out), out
    assert re.search(r'stateful / original within each round: median [\d.]+x, [\d.]+x to [\d.]+x over 2 rounds', out), out
    assert re.search(r'the same structure with d_model 32 .+: [\d.]+ ms per patch, \d+% of the tiny model', out), out
    res = json.loads(out.strip().splitlines()[-1])
    assert all(r['recompute_paths_agree'] for r in res['by_threads'].values()), res   # the original's decode = the head's
    assert results(tmp_path / 'g.json', 'generate_speed') == res                       # the file holds what it printed


def quick_records(script: str) -> list:
    "The records that `script --quick` writes, from a results file that is never the committed one."
    out = run(script, '--quick', timeout=900)
    path = Path(re.search(r'results: (\S+)', out).group(1))
    assert not str(path).startswith(str(ROOT / 'bench' / 'results')), path
    return json.loads(path.read_text())['runs']


def test_system2_study_quick():
    "The study's grid, tiny and short, into a temporary directory: one record per configuration, every field filled."
    recs = quick_records('bench/system2_study.py')
    assert sorted(r['name'] for r in recs) == sorted(['T3-fixed', 'T0', 'T0-deeper', 'T3-random', 'T3-random-inject', 'recommended'])
    for r in recs:
        for k in ('seed', 'config', 'steps', 'train_bytes', 'train_flops', 'val_bpc', 'test_bpc', 'full_val_bpc', 'depth_sweep', 'context'):
            assert r.get(k) is not None, (r['name'], k)
        assert sorted(r['context']) == ['256', '64'] and all(0 < v < 9 for v in r['context'].values())
        assert len(r['depth_sweep']) == max(4 * r['config']['thinking_steps'], 4) + 1
    by = {r['name']: r for r in recs}
    assert by['T0']['train_flops'] < by['T3-fixed']['train_flops']
    assert by['T0-deeper']['config']['n_layers'] == by['T0']['config']['n_layers'] + 2
    assert by['T0-deeper']['train_flops'] > by['T0']['train_flops']
    assert by['T3-random-inject']['config']['thinking_inject'] and by['T3-random']['train']['thinking_sampler'] != 'fixed'
    assert [h['threshold'] for h in by['T3-fixed']['halting']][0] == 0.0


def test_baseline_study_quick():
    "The second edition, tiny: a sweep of three rates or more per configuration, then a second seed at the rate chosen on val."
    recs = quick_records('bench/baseline_study.py')
    assert sorted({r['name'] for r in recs}) == ['GPT', 'T0', 'T3', 'T3-block']
    for name in ('T3', 'T0', 'GPT', 'T3-block'):
        rs = [r for r in recs if r['name'] == name]
        sweep = {r['lr']: r['val_bpc'] for r in rs if r['stage'] == 'sweep'}
        assert all(r['seed'] == 0 for r in rs if r['stage'] == 'sweep')
        rates, best = sorted(sweep), min(sweep, key=sweep.get)
        assert {5e-4, 1e-3, 2e-3} <= set(rates) and all(b == 2 * a for a, b in zip(rates, rates[1:])), rates
        assert best not in (rates[0], rates[-1]) or len(rates) == 5, rates     # the sweep goes on past an edge, twice at most
        if len(rates) > 3: assert {rates[0], rates[-1]} - {5e-4, 2e-3} and best != 1e-3, rates
        (second,) = [r for r in rs if r['stage'] == 'seeds']
        assert second['seed'] == 1 and second['lr'] == min(sweep, key=sweep.get)      # the rate chosen on validation
        for r in rs:
            for k in ('val_bpc', 'test_bpc', 'train_flops', 'seconds', 'bytes_per_s', 'params', 'val_curve'):
                assert r.get(k) is not None, (name, k)
        assert ('depth_sweep' in rs[0]) == (name in ('T3', 'T3-block')) and ('halting' in rs[0]) == (name == 'T3')
        assert rs[0]['config']['arch'] == ('gpt' if name == 'GPT' else 'agiformer')
    t3, blk = (next(r for r in recs if r['name'] == n) for n in ('T3', 'T3-block'))
    assert len(t3['depth_sweep']) == 13 and len(t3['halting']) == 5 and len(blk['depth_sweep']) == 13
    assert len(t3['halting_test']) == 5 and 'halting_test' not in blk                 # the halting verdict is read on test
    assert all(r.get('test_bpc_2T') is not None and r['machine'] for r in recs if r['name'] in ('T3', 'T3-block'))
    # every sweep first, then the seeds seed by seed: a grid stopped part-way leaves every configuration's sweep done
    order = [(r['stage'], r['name']) for r in recs]
    assert order.index(('seeds', 'T3')) > max(i for i, (st, _) in enumerate(order) if st == 'sweep')
    assert blk['config']['thinking_mode'] == 'block' and blk['train']['thinking_backprop'] == 2


def test_baseline_sweep_rates():
    "The sweep's rates: LRS, then a factor of 2 past an edge while the best is there (twice at most at B1, never at B2)."
    sys.path.insert(0, str(ROOT / 'bench'))
    try: from baseline_study import sweep_rates, chosen_lr
    finally: sys.path.pop(0)
    falling = lambda lr: 3 - lr * 100                      # val BPC that keeps improving with the rate
    assert sweep_rates({}, 'B1') == sweep_rates({}, 'B2') == [5e-4, 1e-3, 2e-3]
    assert sweep_rates({lr: falling(lr) for lr in (5e-4, 1e-3, 2e-3)}, 'B1') == [5e-4, 1e-3, 2e-3, 4e-3]
    assert sweep_rates({lr: falling(lr) for lr in (5e-4, 1e-3, 2e-3, 4e-3, 8e-3)}, 'B1') == [5e-4, 1e-3, 2e-3, 4e-3, 8e-3]
    assert sweep_rates({lr: falling(lr) for lr in (5e-4, 1e-3, 2e-3)}, 'B2') == [5e-4, 1e-3, 2e-3]
    assert sweep_rates({5e-4: 2.0, 1e-3: 2.1, 2e-3: 2.2}, 'B1') == [2.5e-4, 5e-4, 1e-3, 2e-3]
    runs = [dict(budget='B2', name='T3', seed=0, lr=lr, val_bpc=falling(lr)) for lr in (5e-4, 1e-3, 2e-3)]
    assert chosen_lr(runs, 'B2', 'T3') == 2e-3 and chosen_lr(runs, 'B1', 'T3') is None
    assert chosen_lr(runs[:2], 'B2', 'T3') is None           # not before every rate of the sweep has run


def test_gpu_script_dry_run_on_cpu():
    out = run('bench/gpu.py', '--device', 'cpu', '--quick', '--no-compile')
    for prec in ('fp32', 'fp16', 'bf16'):
        for shape in ('2x64', '1x512'):
            assert re.search(rf'eager\s+{shape}\s+{prec}\s+\|\s+[\d,]+\s+-\s+\|\s+[\d,]+\s+-\s+\|\s+[\d.]+x', out), out
    assert 'failed' not in out and 'not finite' not in out, out


@pytest.mark.skipif(not SLOW, reason="compiles the model twice on CPU (minutes): set AGIFORMER_TEST_FLAGS=slow")
def test_gpu_script_dry_run_compiled():
    out = run('bench/gpu.py', '--device', 'cpu', '--quick', '--shapes', '2x64', '--precisions', 'fp32', timeout=900)
    assert re.search(r'compiled\s+2x64\s+fp32\s+\|\s+[\d,]+\s+-\s+\|\s+[\d,]+\s+-\s+\|', out), out


def test_gpu_script_needs_cuda():
    if __import__('torch').cuda.is_available(): pytest.skip('this machine has CUDA')
    p = subprocess.run([sys.executable, 'bench/gpu.py'], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode != 0 and 'CUDA is not available' in p.stderr


def test_one_row_products(tmp_path):
    "Both layouts of the one-row product are timed per shape in one run, compared, and the rule's choice named."
    out = run('bench/one_row_products.py', '--quick', '--out', str(tmp_path / 'rows.json'))
    rows = re.findall(r'stored \(out, in\) +[\d.]+ us, transposed \(in, out\) +[\d.]+ us; faster: (stored|transposed) '
                      r'\([\d.]+x\); linear_rows reads: (stored|transposed); a plain read \(sum\) +[\d.]+ us', out)
    assert len(rows) == 4 and [r[1] for r in rows] == ['transposed'] * 3 + ['stored'], out
    assert re.search(r"linear_rows' choice \d+ us: F\.linear / linear_rows' choice = [\d.]+x", out), out
    pairs = re.findall(r'(\d+x256 \+ \d+x256): apart +[\d.]+ us, stacked as one (\d+)x256 +[\d.]+ us: stacked / apart = [\d.]+x', out)
    assert pairs == [('768x256 + 768x256', '1536'), ('1024x256 + 256x256', '1280')], out
    gelu = re.findall(r'GELU of +(\d+) x 1024: oneDNN +[\d.]+ us, ATen +[\d.]+ us: ATen / oneDNN = [\d.]+x \(without_onednn uses: (\w+)\)', out)
    assert gelu == [('1', 'ATen'), ('4', 'ATen'), ('16', 'ATen'), ('64', 'oneDNN')], out
    rec = results(tmp_path / 'rows.json', 'one_row_products')
    assert [(r['out'], r['inp'], r['rule']) for r in rec['shapes']] == [
        (768, 256, 'transposed'), (256, 256, 'transposed'), (1024, 256, 'transposed'), (256, 1024, 'stored')]
    assert [r['outs'] for r in rec['pairs']] == [[768, 768], [1024, 256]] and [g['rows'] for g in rec['gelu']] == [1, 4, 16, 64]


def test_step_speed_ab():
    "The decode loop of a git revision and of the working tree, in alternating fresh processes, with their ratio."
    out = run('bench/step_speed_ab.py', '--pairs', '1', '--preset', 'tiny', '--patches', '8')
    assert re.search(r'pair 1: HEAD [\d.]+ ms/patch, working tree [\d.]+ ms/patch: [\d.]+x', out), out
    assert re.search(r'HEAD / working tree, ms per decoded patch \(tiny, one thread\): median [\d.]+x', out), out
    out = run('bench/step_speed_ab.py', '--pairs', '1', '--preset', 'tiny', '--patches', '4', '--mode', 'generate')
    assert re.search(r'HEAD / working tree, ms per patch of generate\(\), prefill included \(tiny, one thread\): median [\d.]+x', out), out


def test_stdlib_prose(tmp_path):
    "The second offline corpus: English prose of the running Python's standard library, built the same way twice."
    out = run('scripts/stdlib_prose.py', '--out', str(tmp_path / 'prose.txt'))
    m = re.search(r'prose\.txt: ([\d,]+) bytes of Python [\d.]+ \((\d+) reference topics, ([\d,]+) docstrings of [\d,]+ files\), '
                  r'sha256 ([0-9a-f]{64})', out)
    assert m, out
    data = (tmp_path / 'prose.txt').read_bytes()
    assert len(data) == int(m.group(1).replace(',', '')) > 1_000_000
    text = data.decode('utf-8')                                   # prose, whole and decodable
    assert text.startswith('The "assert" statement') and 'Return' in text
    assert int(m.group(2)) > 50 and int(m.group(3).replace(',', '')) > 5000
    import hashlib
    assert hashlib.sha256(data).hexdigest() == m.group(4)


def test_stability_quick():
    "The recipe-stability grid, tiny and short, into a temporary directory: one record per (corpus, configuration)."
    recs = quick_records('bench/stability.py')
    assert sorted((r['corpus'], r['name']) for r in recs) == sorted(
        (c, n) for c in ('pystdlib', 'stdlib-prose') for n in ('T3', 'T0', 'T3-original'))
    for r in recs:
        for k in ('recipe', 'config', 'train', 'val_bpc', 'test_bpc', 'val_curve', 'unigram_bpc', 'signals', 'seconds'):
            assert r.get(k) is not None, (r['corpus'], r['name'], k)
        assert [s for s, _ in r['val_curve']] == [3, 6] and 0 < r['test_bpc'] < 9
        assert all('grad_norms' in s and 'clip_factor' in s for s in r['signals'])
    by = {(r['corpus'], r['name']): r for r in recs}
    t3, orig = by['pystdlib', 'T3'], by['pystdlib', 'T3-original']
    assert (t3['recipe'], t3['config']['thinking_init'], t3['train']['thinking_lr_scale']) == ('short', 'identity', 0.1)
    assert (orig['recipe'], orig['config']['thinking_init'], orig['train']['lr']) == ('seed', 'default', 3e-4)
    assert len(t3['signals'][0]['think_update']) == t3['config']['thinking_steps']
