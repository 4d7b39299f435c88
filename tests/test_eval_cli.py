"""agiformer_eval as users run it: full split, --protocol, the JSON last line, bad input."""
import json, subprocess

import numpy as np
import pytest
import torch

from agiformer.checkpoint import save_model
from agiformer.data import load_corpus
from agiformer.evaluate import evaluate_bpc
from agiformer.model import AGIFORMER


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('eval')
    torch.manual_seed(0)
    m = AGIFORMER.from_preset('tiny').eval()
    save_model(m, tmp / 'tiny.safetensors')
    corpus = tmp / 'corpus.txt'
    rng = np.random.default_rng(0)
    corpus.write_bytes(bytes(rng.integers(32, 127, 1_400_000, dtype=np.uint8)))   # val: 70,000 bytes
    return tmp, m, corpus


def _run(*args):
    return subprocess.run(['agiformer_eval', *args], capture_output=True, text=True, timeout=300)


def test_full_split_matches_in_process(setup):
    tmp, m, corpus = setup
    r = _run('--checkpoint', str(tmp / 'tiny.safetensors'), '--data', str(corpus), '--split', 'test', '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    test = load_corpus(str(corpus)).test
    assert out['n_windows'] == len(test) // 1024 and out['split'] == 'test' and out['protocol'] is False
    assert out['n_bytes'] == out['n_windows'] * 1020
    assert abs(out['bpc'] - evaluate_bpc(m, test).bpc) < 1e-6
    assert out['seconds'] > 0
    assert 'BPC' in r.stdout.splitlines()[0]          # the human-readable line comes first


def test_protocol(setup):
    tmp, m, corpus = setup
    r = _run('--checkpoint', str(tmp / 'tiny.safetensors'), '--data', str(corpus), '--protocol', '--quiet')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1                             # --quiet: only the JSON
    out = json.loads(lines[0])
    assert (out['n_windows'], out['window'], out['n_bytes']) == (64, 1024, 65_280)
    assert 7.0 < out['bpc'] < 9.0                      # an untrained model is close to uniform (8 bits)


def test_bad_input(setup):
    tmp, m, corpus = setup
    r = _run('--checkpoint', str(tmp / 'missing.safetensors'), '--data', str(corpus))
    assert r.returncode == 2 and 'does not exist' in r.stderr
    r = _run('--checkpoint', str(tmp / 'tiny.safetensors'), '--data', str(corpus), '--split', 'dev')
    assert r.returncode == 2 and 'unknown split' in r.stderr
    r = _run('--checkpoint', str(tmp / 'tiny.safetensors'), '--data', str(corpus), '--protocol', '--n_windows', '3')
    assert r.returncode == 2 and '--protocol fixes the windows' in r.stderr
    (tmp / 'broken.safetensors').write_bytes((tmp / 'tiny.safetensors').read_bytes()[:500])
    r = _run('--checkpoint', str(tmp / 'broken.safetensors'), '--data', str(corpus))
    assert r.returncode == 2 and 'corrupted' in r.stderr
