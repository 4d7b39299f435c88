"""The agiformer_inspect command as users run it: the per-step table on stdout, PNG figures and inspect.json in --out."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agiformer.checkpoint import save_model
from agiformer.model import AGIFORMER
from agiformer.inspect import trace_thinking

PNG = b'\x89PNG\r\n\x1a\n'
TEXT = "import os\n\ndef walk(top):\n    for name in os.listdir(top):\n        yield os.path.join(top, name)\n"


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny model saved as a run directory (best/ model + metrics.jsonl in the trainer's record format)."""
    torch.manual_seed(0)
    model = AGIFORMER.from_preset('tiny').eval()
    run = tmp_path_factory.mktemp('run')
    save_model(model, run / 'best' / 'model.safetensors')
    (run / 'best' / 'config.json').write_text(model.config.to_json())
    recs = [{'kind': 'train', 'step': s, 'loss': 5.0 - s / 10, 'bpc': (5.0 - s / 10) / np.log(2), 'bytes': 512 * s,
             'time': 0.1 * s} for s in range(1, 11)]
    recs.append({'kind': 'val', 'step': 10, 'loss': 4.2, 'bpc': 4.2 / np.log(2), 'n_bytes': 504, 'bytes': 5120, 'time': 1.1})
    (run / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    return model, run


# the console script installed beside this Python (the venv's bin/ need not be on PATH)
EXE = str(Path(sys.executable).parent / 'agiformer_inspect') if (Path(sys.executable).parent / 'agiformer_inspect').exists() \
    else shutil.which('agiformer_inspect')


def _run(*args, env=None):
    assert EXE, "agiformer_inspect is not installed: pip install -e ."
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def _one_line_error(r, msg):
    "A user error: exit status 2 and one line `agiformer_inspect: error: ...` on stderr, no traceback."
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.startswith('agiformer_inspect: error: ') and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert msg in r.stderr, r.stderr


def test_help_lists_the_options():
    out = _run('--help').stdout
    for opt in ['--checkpoint', '--text', '--data', '--split', '--n_windows', '--max_thinking_steps', '--position', '--out']:
        assert opt in out, opt


def test_text_gives_table_figures_and_numbers(tiny, tmp_path):
    model, run = tiny
    T = model.config.thinking_steps
    r = _run('--checkpoint', run, '--text', TEXT, '--out', tmp_path / 'out', '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    head = next(i for i, l in enumerate(lines) if l.split()[:3] == ['t', 'BPC', 'dBPC'])
    rows = [l.split() for l in lines[head + 1:head + 2 + 2 * T]]
    assert [row[0] for row in rows] == [str(t) + ('*' if t == T else '') for t in range(2 * T + 1)]
    assert "its thresholds would say" in r.stdout and 'Measured: System 2' in r.stdout
    out = tmp_path / 'out'
    assert sorted(p.name for p in out.iterdir()) == ['bpc.png', 'depth_sweep.png', 'inspect.json', 'steps.png', 'thinking.png']
    for p in out.glob('*.png'): assert p.read_bytes()[:8] == PNG, p
    summary = json.loads((out / 'inspect.json').read_text())
    expect = trace_thinking(model, TEXT, 2 * T).bpc
    np.testing.assert_allclose([s['bpc'] for s in summary['steps']], expect, atol=1e-6)
    assert [float(row[1]) for row in rows] == pytest.approx(list(expect), abs=1e-4)     # the table prints the same
    assert summary['n_bytes'] == len(TEXT) - 4 and summary['verdict']['label'] in (
        'helps', 'hurts', 'no measurable effect')


def test_text_from_file_position_and_depth(tiny, tmp_path):
    model, run = tiny
    f = tmp_path / 'code.py'; f.write_text(TEXT)
    r = _run('--checkpoint', run / 'best' / 'model.safetensors', '--text', f'@{f}', '--max_thinking_steps', '3', '--position',
             '20', '--out', tmp_path / 'o')
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / 'o' / 'inspect.json').read_text())
    assert [row['t'] for row in s['steps']] == [0, 1, 2, 3] and s['position'] == 20
    assert 'bpc.png' not in s['figures']                       # a model file has no training curves


def test_dataset_windows(tiny, tmp_path):
    model, run = tiny
    corpus = tmp_path / 'corpus.txt'
    corpus.write_bytes((TEXT * 400).encode())
    r = _run('--checkpoint', run, '--data', corpus, '--split', 'val', '--n_windows', '3', '--window', '256',
             '--out', tmp_path / 'd')
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / 'd' / 'inspect.json').read_text())
    assert s['n_bytes'] == 3 * 252 and 'val, 3 windows of 256 bytes' in s['source']


@pytest.mark.parametrize('args, msg', [
    ([], '--checkpoint is required'),
    (['--checkpoint', 'X'], 'exactly one of --text'),
    (['--checkpoint', 'X', '--text', 'abcdefgh', '--data', 'pystdlib'], 'exactly one of --text'),
    (['--checkpoint', 'X', '--text', 'abcdefgh', '--max_thinking_steps', '-1'], '--max_thinking_steps must be an integer in [0, 10000]'),
])
def test_usage_errors_are_clear(args, msg, tmp_path):
    _one_line_error(_run(*args, '--out', tmp_path / 'e'), msg)


def test_bad_checkpoint_and_short_text(tiny, tmp_path):
    model, run = tiny
    _one_line_error(_run('--checkpoint', tmp_path / 'nothing', '--text', TEXT, '--out', tmp_path / 'e'), 'does not exist')
    _one_line_error(_run('--checkpoint', run, '--text', 'abc', '--out', tmp_path / 'e'), 'give at least 5')
    _one_line_error(_run('--checkpoint', run, '--text', '@' + str(tmp_path / 'none.txt'), '--out', tmp_path / 'e'),
                    'no such file')
    _one_line_error(_run('--checkpoint', run, '--text', TEXT, '--max_thinking_steps', '1', '--out', tmp_path / 'e'),
                    'below the trained T=2')
    r = _run('--checkpoint', run, '--text', TEXT, '--position', '999', '--out', tmp_path / 'e')
    _one_line_error(r, 'position 999 is not predicted')
    assert r.stdout == '' and not (tmp_path / 'e').exists()           # refused before anything is printed or written


def _hub_cache(hf_home, repo_id, model):
    "A hub repository as huggingface_hub caches it (refs/main -> snapshots/<commit>/), so it loads offline."
    commit = '0123456789abcdef0123456789abcdef01234567'
    repo = Path(hf_home) / 'hub' / f"models--{repo_id.replace('/', '--')}"
    snap = repo / 'snapshots' / commit
    snap.mkdir(parents=True)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text(commit)
    save_model(model, snap / 'model.safetensors')
    (snap / 'config.json').write_text(model.config.to_json())


def test_hub_ids(tiny, tmp_path):
    "A hub id is read like the other commands read it: from the hub's cache here; one clear line when it cannot be had."
    model, run = tiny
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp_path / 'hf')}
    env.pop('HF_TOKEN', None)
    _hub_cache(tmp_path / 'hf', 'tester/tiny-agiformer', model)
    r = _run('--checkpoint', 'tester/tiny-agiformer', '--text', TEXT, '--out', tmp_path / 'h', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / 'h' / 'inspect.json').read_text())
    T = model.config.thinking_steps
    np.testing.assert_allclose([x['bpc'] for x in s['steps']], trace_thinking(model, TEXT, 2 * T).bpc, atol=1e-6)
    _one_line_error(_run('--checkpoint', 'nobody/no-such-model', '--text', TEXT, '--out', tmp_path / 'e', env=env),
                    'nobody/no-such-model')
