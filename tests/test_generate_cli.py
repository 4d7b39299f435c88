"""The agiformer_generate command as users run it, in real subprocesses, against a tiny saved model.

Every prompt source (--prompt, --prompt-file, stdin), every checkpoint format (safetensors file, run directory,
original .pth), sampling with a seed, stop strings, raw bytes, streaming, and the errors users will hit.
"""
import os, subprocess, sys
from pathlib import Path

import pytest
import torch

from agiformer.checkpoint import save_model
from agiformer.generate import generate
from agiformer.model import AGIFORMER

EXE = Path(sys.executable).parent / 'agiformer_generate'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A tiny random model saved as safetensors, as a run directory and as an original-style .pth."
    d = tmp_path_factory.mktemp('gen')
    torch.manual_seed(0)
    m = AGIFORMER.from_preset('tiny').eval()
    save_model(m, d / 'tiny.safetensors')
    save_model(m, d / 'run' / 'last' / 'model.safetensors')
    torch.save(m.state_dict(), d / 'best_model.pth')
    return m, d


def run(*args, stdin=None, check=True, env=None):
    r = subprocess.run([sys.executable, '-m', 'agiformer.generate', *map(str, args)], input=stdin, env=env,
                       capture_output=True, timeout=300, stdin=None if stdin is not None else subprocess.DEVNULL)
    if check: assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r


def text(b: bytes) -> bytes:
    "What text mode writes for these new bytes: their UTF-8 decoding with U+FFFD for invalid sequences."
    return b.decode('utf-8', 'replace').encode('utf-8')


def test_help_documents_every_option():
    out = subprocess.run([str(EXE), '--help'], capture_output=True, text=True, check=True).stdout
    for opt in ['--checkpoint', '--prompt', '--prompt_file', '--max_bytes', '--temperature', '--top_k', '--top_p',
                '--seed', '--stop', '--raw', '--echo', '--no_stream', '--device', '--thinking_steps']:
        assert opt in out, opt
    assert 'standard input' in out and 'greedy' in out


def test_prompt_sources_and_formats_agree_with_the_library(tiny):
    m, d = tiny
    want = generate(m, 'Grüße, €5', 40)
    for ckpt in [d / 'tiny.safetensors', d / 'run']:
        r = run('--checkpoint', ckpt, '--prompt', 'Grüße, €5', '--max-bytes', 40, '--temperature', 0)
        assert r.stdout == text(want)
    # the original's .pth does not store heads, window or T: they are given on the command line
    r = run('--checkpoint', d / 'best_model.pth', '--num-heads', 4, '--window-size', 8, '--thinking-steps', 2,
            '--prompt', 'Grüße, €5', '--max-bytes', 40, '--temperature', 0)
    assert r.stdout == text(want)
    # stdin and a prompt file with bytes that are not UTF-8; --raw writes the new bytes exactly
    prompt = b'\xff\xfe caf\xe9 \x00\x01'
    (d / 'prompt.bin').write_bytes(prompt)
    want = generate(m, prompt, 50)
    assert run('--checkpoint', d / 'tiny.safetensors', '--prompt-file', d / 'prompt.bin', '--max-bytes', 50,
               '--temperature', 0, '--raw').stdout == want
    assert run('--checkpoint', d / 'tiny.safetensors', '--max-bytes', 50, '--temperature', 0, '--raw',
               stdin=prompt).stdout == want


def test_sampling_is_reproducible_and_matches_the_library(tiny):
    m, d = tiny
    args = ['--checkpoint', d / 'tiny.safetensors', '--prompt', 'The cat', '--max-bytes', 60, '--temperature', 0.9,
            '--top-k', 50, '--top-p', 0.95, '--raw']
    a, b = run(*args, '--seed', 3).stdout, run(*args, '--seed', 3).stdout
    assert a == b == generate(m, 'The cat', 60, temperature=0.9, top_k=50, top_p=0.95, seed=3)
    assert run(*args, '--seed', 4).stdout != a


def test_stop_echo_no_stream_and_zero_bytes(tiny):
    m, d = tiny
    full = generate(m, 'abcdefgh', 80)
    stop = full[30:32]
    r = run('--checkpoint', d / 'tiny.safetensors', '--prompt', 'abcdefgh', '--max-bytes', 80, '--temperature', 0,
            '--raw', '--stop', os.fsdecode(stop), '--echo', '--no-stream')
    assert r.stdout == b'abcdefgh' + full[:full.find(stop) + len(stop)]
    assert run('--checkpoint', d / 'tiny.safetensors', '--prompt', 'abcd', '--max-bytes', 0).stdout == b''


def test_output_streams_before_generation_ends(tiny):
    _, d = tiny
    p = subprocess.Popen([sys.executable, '-m', 'agiformer.generate', '--checkpoint', str(d / 'tiny.safetensors'),
                          '--prompt', 'stream me', '--max-bytes', '100000000', '--raw'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        first = p.stdout.read(8)           # blocks until the first patches are written
        assert len(first) == 8 and p.poll() is None
    finally:
        p.kill(); p.wait(timeout=60)


@pytest.mark.parametrize('args,msg', [
    (['--prompt', 'abc'], 'fewer than one patch'),
    (['--prompt', 'abcd', '--temperature', '-1'], 'temperature must be a finite number >= 0'),
    (['--prompt', 'abcd', '--temperature', 'nan'], 'temperature must be'),
    (['--prompt', 'abcd', '--temperature', '1', '--top-p', '0'], 'top_p must be in (0, 1]'),
    (['--prompt', 'abcd', '--temperature', '1', '--top-k', '0'], 'top_k must be an integer >= 1'),
    (['--prompt', 'abcd', '--max-bytes', '-5'], 'must be an integer >= 0'),
    (['--prompt', 'abcd', '--prompt-file', 'x'], 'not both'),
    ([], 'fewer than one patch'),                                       # empty standard input
])
def test_bad_arguments_are_one_line_errors(tiny, args, msg):
    _, d = tiny
    r = run('--checkpoint', d / 'tiny.safetensors', *args, check=False)
    err = r.stderr.decode()
    assert r.returncode == 2 and msg in err and 'Traceback' not in err, err


def test_checkpoint_errors(tmp_path):
    offline = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp_path / 'hf')}   # a hub id, nothing cached
    r = run('--checkpoint', 'someone/agiformer-small', '--prompt', 'abcd', check=False, env=offline)
    assert r.returncode == 2 and "could not fetch 'someone/agiformer-small'" in r.stderr.decode(), r.stderr.decode()
    r = run('--checkpoint', tmp_path / 'nope.safetensors', '--prompt', 'abcd', check=False)
    assert r.returncode == 2 and 'does not exist' in r.stderr.decode()
    r = run('--prompt', 'abcd', check=False)
    assert r.returncode == 2 and '--checkpoint is required' in r.stderr.decode()


def _error_line(args, tmp_path) -> str:
    "Run the console command agiformer_generate; check it failed as a user error should; its one stderr line."
    env = {k: v for k, v in os.environ.items() if k not in ('HF_TOKEN', 'HF_ENDPOINT', 'AGIFORMER_DEBUG')}
    env.update(HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf_home'), AGIFORMER_DATA=str(tmp_path / 'data'),
               PYTHONWARNINGS='ignore')
    r = subprocess.run([str(EXE), *map(str, args)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert 'Traceback' not in r.stderr and r.returncode == 2, (r.returncode, r.stderr[-3000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('agiformer_generate: error: '), r.stderr[-3000:]
    return lines[0]


def test_prompt_file_that_is_a_directory(tiny, tmp_path):
    _, d = tiny
    line = _error_line(['--checkpoint', d / 'tiny.safetensors', '--prompt_file', tmp_path, '--device', 'cpu'], tmp_path)
    assert f'--prompt-file {tmp_path} is a directory: give a file' in line and 'does not exist' not in line, line


@pytest.mark.parametrize('args,msg', [
    (['--halt_threshold', 'inf'], '--halt_threshold must be a finite number >= 0, got inf'),
    (['--halt_threshold', '-0.5'], '--halt_threshold must be a finite number >= 0, got -0.5'),
    (['--thinking_steps', '2', '--halt_threshold', 'nan'], '--halt_threshold must be a finite number >= 0, got nan'),
    (['--thinking_steps', '0', '--halt_threshold', '0.1'], 'the depth is 0 (--thinking_steps 0'),
    (['--thinking_steps', '-1'], '--thinking_steps must be an integer in [0, 10000], got -1'),
], ids=['inf', 'negative', 'nan', 'depth-0', 'negative-depth'])
def test_system2_options_are_checked_before_loading(args, msg, tmp_path):
    "The checkpoint does not exist: the System 2 options are refused first, before any model is loaded."
    line = _error_line(['--checkpoint', tmp_path / 'missing.safetensors', '--prompt', 'abcd', *args], tmp_path)
    assert msg in line and 'missing.safetensors' not in line, line


def test_depth_0_checkpoint_with_halting_is_refused_once_loaded(tmp_path):
    "thinking_steps not given: the checkpoint's depth is known only once it is loaded; then halting at depth 0 is refused."
    save_model(AGIFORMER.from_preset('tiny', thinking_steps=0).eval(), tmp_path / 't0.safetensors')
    line = _error_line(['--checkpoint', tmp_path / 't0.safetensors', '--prompt', 'abcd', '--halt_threshold', '0.1',
                        '--device', 'cpu'], tmp_path)
    assert 'the depth is 0' in line and 'drop --halt_threshold' in line, line
