"""Every console command reports a user error the same way: exactly one line on stderr, `COMMAND: error: ...`, naming
the problem and the fix; exit status 2; no traceback. One bad argument per command: a checkpoint that does not exist,
and a hub id that cannot be reached (HF_HUB_OFFLINE=1 and an empty cache: nothing leaves this machine)."""
import os, subprocess

import pytest

MISSING = 'missing/model.safetensors'           # relative to the test's working directory, where nothing exists
HUB_ID = 'nobody-here/agiformer-nothing'        # a hub id: offline and not cached, so it cannot be fetched

CASES = {
    'train-bad-steps':     ['agiformer_train', '--data', 'corpus.txt', '--steps', '0', '--out', 'run', '--device', 'cpu'],
    'train-missing-init':  ['agiformer_train', '--data', 'corpus.txt', '--init_from', MISSING, '--out', 'run', '--device', 'cpu'],
    'train-bad-positions': ['agiformer_train', '--data', 'corpus.txt', '--positions', 'rope', '--out', 'run', '--device', 'cpu'],
    'train-hub-init':      ['agiformer_train', '--data', 'corpus.txt', '--init_from', HUB_ID, '--out', 'run', '--device', 'cpu'],
    'eval-missing':        ['agiformer_eval', '--checkpoint', MISSING, '--data', 'corpus.txt', '--device', 'cpu'],
    'eval-hub':            ['agiformer_eval', '--checkpoint', HUB_ID, '--data', 'corpus.txt', '--device', 'cpu'],
    'generate-missing':    ['agiformer_generate', '--checkpoint', MISSING, '--prompt', 'hello', '--device', 'cpu'],
    'generate-hub':        ['agiformer_generate', '--checkpoint', HUB_ID, '--prompt', 'hello', '--device', 'cpu'],
    'inspect-missing':     ['agiformer_inspect', '--checkpoint', MISSING, '--text', 'hello world!', '--device', 'cpu'],
    'inspect-hub':         ['agiformer_inspect', '--checkpoint', HUB_ID, '--text', 'hello world!', '--device', 'cpu'],
    'push-missing':        ['agiformer_push', MISSING, 'me/agiformer-x', '--dry_run'],
    'push-hub':            ['agiformer_push', HUB_ID, 'me/agiformer-x', '--dry_run'],
    'push-bad-repo-id':    ['agiformer_push', MISSING, 'not a repo id', '--dry_run'],
}


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / 'corpus.txt').write_bytes(b''.join(f"line {i}: {i * i}\n".encode() for i in range(4000)))
    env = {k: v for k, v in os.environ.items() if k not in ('HF_TOKEN', 'HF_ENDPOINT', 'AGIFORMER_DEBUG')}
    env.update(HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf_home'), AGIFORMER_DATA=str(tmp_path / 'data'),
               HF_HUB_DISABLE_TELEMETRY='1', PYTHONWARNINGS='ignore')
    return tmp_path, env


@pytest.mark.parametrize('case', list(CASES))
def test_one_line_exit_2_no_traceback(case, workdir):
    tmp, env = workdir
    argv = CASES[case]
    r = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert 'Traceback' not in r.stderr, f"{case}: a traceback instead of one line:\n{r.stderr[-3000:]}"
    assert r.returncode == 2, f"{case}: exit status {r.returncode}, expected 2; stderr:\n{r.stderr[-3000:]}"
    assert len(lines) == 1, f"{case}: {len(lines)} lines on stderr, expected one:\n{r.stderr[-3000:]}"
    assert lines[0].startswith(f"{argv[0]}: error: "), lines[0]
    assert len(lines[0]) > len(f"{argv[0]}: error: ") + 20, lines[0]     # a message that says something


@pytest.mark.parametrize('case', ['eval-hub', 'push-hub'])
def test_unreachable_hub_names_the_way_out(case, workdir):
    "An unreachable hub id says so, and how to get the files another way."
    tmp, env = workdir
    r = subprocess.run(CASES[case], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert HUB_ID in r.stderr and 'huggingface-cli download' in r.stderr, r.stderr[-2000:]
