"""Every console command reports a user error the same way: exactly one line on stderr, `COMMAND: error: ...`, naming
the problem and the fix; exit status 2; no traceback. One bad argument per command: a checkpoint that does not exist,
and a hub id that cannot be reached (HF_HUB_OFFLINE=1 and an empty cache: nothing leaves this machine). Arguments that
cannot work are refused before any work: before the data is read or built and before a model is made."""
import os, subprocess

import pytest

MISSING = 'missing/model.safetensors'           # relative to the test's working directory, where nothing exists
HUB_ID = 'nobody-here/agiformer-nothing'        # a hub id: offline and not cached, so it cannot be fetched

CASES = {
    'train-bad-steps':     ['agiformer_train', '--data', 'corpus.txt', '--steps', '0', '--out', 'run', '--device', 'cpu'],
    'train-missing-init':  ['agiformer_train', '--data', 'corpus.txt', '--init_from', MISSING, '--out', 'run', '--device', 'cpu'],
    'train-bad-positions': ['agiformer_train', '--data', 'corpus.txt', '--positions', 'rope', '--out', 'run', '--device', 'cpu'],
    'train-hub-init':      ['agiformer_train', '--data', 'corpus.txt', '--init_from', HUB_ID, '--out', 'run', '--device', 'cpu'],
    'train-seq-len':       ['agiformer_train', '--preset', 'tiny', '--data', 'pystdlib', '--seq_len', '1023', '--out', 'run', '--device', 'cpu'],
    'train-val-window':    ['agiformer_train', '--preset', 'tiny', '--data', 'pystdlib', '--val_window', '1022', '--out', 'run', '--device', 'cpu'],
    'train-neg-thinking':  ['agiformer_train', '--preset', 'tiny', '--data', 'pystdlib', '--thinking_steps', '-1', '--out', 'run', '--device', 'cpu'],
    'train-out-is-file':   ['agiformer_train', '--preset', 'tiny', '--data', 'pystdlib', '--out', 'corpus.txt', '--device', 'cpu'],
    'train-big-batch':     ['agiformer_train', '--preset', 'tiny', '--data', 'corpus.txt', '--batch_size', '100', '--out', 'run', '--device', 'cpu'],
    'train-no-val-window': ['agiformer_train', '--preset', 'tiny', '--data', 'corpus.txt', '--val_window', '8192', '--out', 'run', '--device', 'cpu'],
    'train-archive':       ['agiformer_train', '--preset', 'tiny', '--data', 'corpus.tar.gz', '--out', 'run', '--device', 'cpu'],
    'train-data-device':   ['agiformer_train', '--preset', 'tiny', '--data', '/dev/zero', '--out', 'run', '--device', 'cpu'],
    'train-data-dir-file': ['agiformer_train', '--preset', 'tiny', '--data', 'corpus.txt', '--data_dir', 'corpus.txt', '--out', 'run', '--device', 'cpu'],
    'eval-bad-split':      ['agiformer_eval', '--checkpoint', MISSING, '--data', 'pystdlib', '--split', 'dev', '--device', 'cpu'],
    'eval-neg-thinking':   ['agiformer_eval', '--checkpoint', MISSING, '--data', 'pystdlib', '--thinking_steps', '-1', '--device', 'cpu'],
    'eval-zero-windows':   ['agiformer_eval', '--checkpoint', MISSING, '--data', 'pystdlib', '--n_windows', '0', '--device', 'cpu'],
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
    (tmp_path / 'corpus.txt').write_bytes(b''.join(f"line {i}: {i * i}\n".encode() for i in range(4000)))   # 74 KB
    (tmp_path / 'corpus.tar.gz').write_bytes(b'not read: refused by its name')
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


# What each refusal must say (the option and the way out), and that it came before any work: no data built, no run.
SAYS = {
    'train-seq-len':       'seq_len 1023 is not a multiple of patch_size 4: use --seq_len 1024',
    'train-val-window':    'val_window 1022 is not a multiple of patch_size 4',
    'train-neg-thinking':  '--thinking_steps must be an integer in [0, 10000], got -1',
    'train-out-is-file':   '--out corpus.txt is a file',
    'train-big-batch':     'a batch of 100 windows of 1,028 bytes (seq_len + patch_size) needs 102,800 bytes',
    'train-no-val-window': 'the val split (3,713 bytes) holds no whole window of 8,192 bytes',
    'train-archive':       'corpus.tar.gz is a .tar.gz archive',
    'train-data-device':   '/dev/zero is not a regular file or directory',
    'train-data-dir-file': 'the data directory corpus.txt is a file: give a directory',
    'eval-bad-split':      "unknown split 'dev'",
    'eval-neg-thinking':   '--thinking_steps must be an integer in [0, 10000], got -1',
    'eval-zero-windows':   '--n_windows must be an integer >= 1, got 0',
}


@pytest.mark.parametrize('case', list(SAYS))
def test_refused_before_any_work(case, workdir):
    tmp, env = workdir
    r = subprocess.run(CASES[case], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and SAYS[case] in r.stderr, f"{case}: {r.returncode}\n{r.stderr[-2000:]}"
    assert not (tmp / 'data' / 'pystdlib.bin').exists(), f"{case}: the pystdlib corpus was built before the refusal"
    assert not (tmp / 'run').exists(), f"{case}: a run directory was made before the refusal"
