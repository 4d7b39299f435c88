"""A hostile but realistic user, case by case: each test is one reported way to lose data, mix two runs, get a
traceback or have nonsense accepted, run as the real console command. Every expected failure ends with exactly one
line on stderr (`COMMAND: error: ...`, or `COMMAND: interrupted` for Ctrl-C), exit status 2 (130 for Ctrl-C), and
nothing outside the run directory is touched. Numbers refer to the cases of the report these tests answer.

Nothing leaves this machine: HF_HUB_OFFLINE is set, and the network cases point at a closed port on 127.0.0.1."""
import json, os, re, shutil, signal, stat, subprocess, sys, time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
CLOSED = 'http://127.0.0.1:9'                        # the discard port: nothing listens there


def _corpus_bytes(n_lines: int) -> bytes:
    return b''.join(f"def f{i}(x):\n    return x * {i % 7} + {i % 5}  # {i * i}\n".encode() for i in range(n_lines))


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    "A corpus and a tiny trained run (4 steps, validated at 2 and 4), made once and never modified."
    d = tmp_path_factory.mktemp('base')
    (d / 'corpus.txt').write_bytes(_corpus_bytes(1500))
    r = subprocess.run(['agiformer_train', '--preset', 'tiny', '--data', str(d / 'corpus.txt'), '--steps', '4',
                        '--seq_len', '64', '--val_window', '64', '--val_windows', '2', '--val_every', '2', '--log_every', '1',
                        '--device', 'cpu', '--out', str(d / 'run'), '--quiet'], capture_output=True, text=True, timeout=300,
                       env=_env(d))
    assert r.returncode == 0, r.stderr[-2000:]
    return d


def _env(d: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ('HF_TOKEN', 'HF_ENDPOINT', 'AGIFORMER_DEBUG')}
    (d / 'tmp').mkdir(exist_ok=True)
    env.update(HF_HUB_OFFLINE='1', HF_HOME=str(d / 'hf_home'), AGIFORMER_DATA=str(d / 'data'), TMPDIR=str(d / 'tmp'),
               HF_HUB_DISABLE_TELEMETRY='1', PYTHONWARNINGS='ignore', AGIFORMER_ENWIK8_URL=CLOSED + '/enwik8.zip')
    env.update(extra)
    return env


@pytest.fixture
def w(base, tmp_path):
    "A fresh working directory with a copy of the base run as `run` and the corpus as `corpus.txt`."
    shutil.copy(base / 'corpus.txt', tmp_path / 'corpus.txt')
    shutil.copytree(base / 'run', tmp_path / 'run', ignore=shutil.ignore_patterns('.lock'))
    return tmp_path


def _files(d: Path, skip=()) -> dict:
    "path -> (size, mtime) of every file under `d`, except run locks and what is under the folders `skip` (relative names)."
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob('*')
            if p.is_file() and p.name != '.lock' and not any(p.relative_to(d).parts[:len(Path(s).parts)] == Path(s).parts for s in skip)}


def _run(w: Path, *argv, env=None, timeout=300, **extra_env):
    return subprocess.run([str(a) for a in argv], cwd=w, env=env or _env(w, **extra_env), capture_output=True, text=True,
                          timeout=timeout)


def _one_line(r, status=2) -> str:
    "The single stderr line of a refused command (and that it was refused in the agreed way)."
    cmd = r.args[0]
    assert 'Traceback' not in r.stderr, f"{r.args}: a traceback:\n{r.stderr[-3000:]}"
    lines = r.stderr.strip().splitlines()
    assert r.returncode == status and len(lines) == 1, f"{r.args}: status {r.returncode}, stderr:\n{r.stderr[-3000:]}"
    assert lines[0].startswith(f"{cmd}: error: " if status == 2 else f"{cmd}: interrupted"), lines[0]
    return lines[0]


def _refused(w: Path, *argv, says, touched=(), **extra_env) -> str:
    "Run a command that must be refused: one line holding each of `says`, and no file changed outside `touched`."
    before = _files(w, ('data', 'hf_home', *touched))
    line = _one_line(_run(w, *argv, **extra_env))
    for s in ([says] if isinstance(says, str) else says): assert s in line, line
    assert _files(w, ('data', 'hf_home', *touched)) == before, f"{argv}: files changed"
    assert not _ours(w / 'tmp'), f"{argv}: left {_ours(w / 'tmp')} in the temporary directory"
    return line


def _ours(tmp: Path) -> list:
    "What is left in a temporary directory, besides torch's own compiler cache."
    return [p.name for p in tmp.iterdir() if not p.name.startswith('torchinductor')]


TRAIN = ('agiformer_train', '--preset', 'tiny', '--data', 'corpus.txt', '--seq_len', '64', '--val_window', '64',
         '--val_windows', '2', '--device', 'cpu', '--quiet')


# 1. A folder that is not a run is refused untouched (with or without --overwrite).
def test_01_a_users_folder_is_never_cleared(w):
    (w / 'u' / 'best').mkdir(parents=True)
    (w / 'u' / 'best' / 'important.txt').write_text('x'); (w / 'u' / 'log.txt').write_text('n')
    for extra in ((), ('--overwrite',)):
        _refused(w, *TRAIN, '--steps', '1', '--out', 'u', *extra, says='holds files that are not a training run')
    assert sorted(str(p.relative_to(w / 'u')) for p in (w / 'u').rglob('*')) == ['best', 'best/important.txt', 'log.txt']


def _wait_for(pred, p, what, limit=300):
    t0 = time.time()
    while not pred():
        if p.poll() is not None or time.time() - t0 > limit:
            p.kill(); pytest.fail(f"{what} never happened (status {p.wait()}): {p.communicate()[1][-2000:]}")
        time.sleep(0.2)


def _records(run: Path) -> list:
    return [json.loads(l) for l in (run / 'metrics.jsonl').read_text().splitlines()] if (run / 'metrics.jsonl').exists() else []


# 2. A second run into the same --out is refused while the first one trains; nothing of it is mixed in.
def test_02_two_runs_never_write_into_one_directory(w):
    a = subprocess.Popen([*TRAIN, '--steps', '100000', '--log_every', '1', '--val_every', '1000000', '--out', 'two'],
                         cwd=w, env=_env(w), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: len(_records(w / 'two')) >= 2, a, 'two logged steps')
    _refused(w, *TRAIN, '--steps', '3', '--seed', '1', '--out', 'two', says='already holds a run', touched=('two',))
    _refused(w, *TRAIN, '--steps', '3', '--seed', '1', '--out', 'two', '--overwrite', touched=('two',),
             says=f'two is in use by another training run (process {a.pid})')
    a.send_signal(signal.SIGINT)
    assert a.wait(timeout=300) == 130, a.stderr.read()
    assert json.loads((w / 'two' / 'config.json').read_text())['train']['seed'] == 0
    steps = [r['step'] for r in _records(w / 'two') if r['kind'] == 'train']
    assert steps == list(range(1, len(steps) + 1))                     # one run's records, in order


# 3. Interrupted saves are cleaned up by the next start; checkpoint folders follow the umask; push leaves no copies.
def test_03_no_debris_and_the_users_umask(w):
    (w / 'run' / '.last.new.k2j3').mkdir(); (w / 'run' / '.last.new.k2j3' / 'model.safetensors').write_bytes(b'x' * 1000)
    (w / 'run' / '.best.new.a1b2').mkdir(); (w / 'run' / '.metrics.jsonl.q1.tmp').write_text('half')
    (w / 'run' / 'last' / '.trainer_state.pt.z9.tmp').write_bytes(b'half')
    r = _run(w, 'agiformer_train', '--resume', '--out', 'run', '--steps', '6', '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    left = sorted(str(p.relative_to(w / 'run')) for p in (w / 'run').rglob('*'))
    assert not [p for p in left if re.search(r'(^|/)\.(best|last)\.|\.tmp$', p)], left
    (w / 'plain').mkdir()
    for d in ('best', 'last'):
        assert stat.S_IMODE((w / 'run' / d).stat().st_mode) == stat.S_IMODE((w / 'plain').stat().st_mode), d
    r = _run(w, 'agiformer_push', 'run', 'me/agiformer-x', '--dry_run')
    assert r.returncode == 0 and not _ours(w / 'tmp'), (r.stderr[-2000:], _ours(w / 'tmp'))


# 4. enwik8 without a network: one line saying how to go on offline, nothing written.
@pytest.mark.parametrize('cmd', ['train', 'eval'])
def test_04_enwik8_offline(w, cmd):
    argv = ((*TRAIN, '--steps', '2', '--out', 'e8') if cmd == 'train' else
            ('agiformer_eval', '--checkpoint', 'run', '--data', 'corpus.txt', '--device', 'cpu'))
    argv = [a if a != 'corpus.txt' else 'enwik8' for a in argv]
    _refused(w, *argv, says=['could not download', 'AGIFORMER_ENWIK8_URL', '--data PATH'])
    assert not (w / 'e8').exists()


# 5. Uploading without a network: one line, and the staged copy is gone.
def test_05_push_offline(w):
    _refused(w, 'agiformer_push', 'run', 'me/agiformer-x', '--no_test', HF_TOKEN='x', HF_ENDPOINT=CLOSED,
             HF_HUB_OFFLINE='0', says='could not reach the Hugging Face hub')


# 6. A run config that lost a section, or is not an object: the file is named.
@pytest.mark.parametrize('cfg, says', [('drop-model', "config.json is not a run config (no 'model' section)"),
                                       ('[1, 2]', 'a JSON list, not an object'), ('{"model": ', 'not JSON')])
def test_06_malformed_run_config(w, cfg, says):
    p = w / 'run' / 'config.json'
    if cfg == 'drop-model':
        c = json.loads(p.read_text()); del c['model']; p.write_text(json.dumps(c))
    else: p.write_text(cfg)
    _refused(w, 'agiformer_train', '--resume', '--out', 'run', says=[says, 'run/config.json'])


# 7. Ctrl-C during start-up (while torch loads), and a second Ctrl-C: one line, status 130.
@pytest.mark.parametrize('after', [0.5, 1.5])
def test_07_ctrl_c_during_start_up(w, after):
    p = subprocess.Popen([*TRAIN, '--steps', '5', '--out', 'cc'], cwd=w, env=_env(w), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130 and 'Traceback' not in err, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and err.startswith('agiformer_train: interrupted'), err


def test_07_a_second_ctrl_c(w):
    p = subprocess.Popen([*TRAIN, '--steps', '100000', '--log_every', '1', '--val_every', '1000000', '--out', 'cc2'],
                         cwd=w, env=_env(w), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: len(_records(w / 'cc2')) >= 2, p, 'two logged steps')
    p.send_signal(signal.SIGINT); p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130 and 'Traceback' not in err, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and err.startswith('agiformer_train: interrupted'), err


# 8. A run killed before its first checkpoint cannot be resumed: say so, and point at what exists.
def test_08_resume_before_the_first_checkpoint(w):
    p = subprocess.Popen([*TRAIN, '--steps', '100000', '--log_every', '1', '--val_every', '1000000', '--out', 'k9'],
                         cwd=w, env=_env(w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: len(_records(w / 'k9')) >= 2, p, 'two logged steps')
    p.kill(); p.wait()
    line = _refused(w, 'agiformer_train', '--resume', '--out', 'k9', says=['stopped before its first checkpoint', '--overwrite'])
    assert '--init_from' not in line


# 9. A diverged run names a checkpoint whose weights are finite, or says there is none.
def test_09_divergence_points_at_finite_weights(w):
    line = _refused(w, *TRAIN, '--steps', '50', '--val_every', '2', '--out', 'div', '--lr', '1e10', '--warmup_steps', '0',
                    '--grad_clip', '0', '--max_bad_steps', '2', says='consecutive steps had a non-finite loss', touched=('div',))
    m = re.search(r'with finite weights is (\S+) \(step', line)
    if m is None: assert 'no checkpoint with finite weights was saved' in line, line
    else:
        r = _run(w, 'agiformer_eval', '--checkpoint', m.group(1), '--data', 'corpus.txt', '--window', '64', '--n_windows', '2',
                 '--device', 'cpu', '--quiet')
        assert r.returncode == 0 and json.loads(r.stdout)['bpc'] < 100, r.stdout + r.stderr


# 10. SIGINT: status 130, a summary without nan or None (the resumed records are checked in chapter 09b).
def test_10_sigint_before_any_validation(w):
    loud = [a for a in TRAIN if a != '--quiet']                           # the summary line is what is checked
    p = subprocess.Popen([*loud, '--steps', '100000', '--log_every', '1', '--val_every', '1000000', '--out', 'si'], cwd=w, env=_env(w), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: len(_records(w / 'si')) >= 2, p, 'two logged steps')
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 130 and re.fullmatch(r'agiformer_train: interrupted: stopped at step \d+; continue with: '
                                                r'agiformer_train --resume --out si\n', err), err
    summary = [l for l in out.splitlines() if l.startswith('Run directory:')]
    assert len(summary) == 1 and 'no validation yet' in summary[0] and not re.search(r'\bnan\b|None', summary[0]), out


# 11. Options that contradict a resume are refused, and the run's config is left as it was.
@pytest.mark.parametrize('extra, says', [(('--overwrite',), 'give one of them'), (('--steps', '2'), '--steps 2 is below step 4')])
def test_11_resume_contradictions(w, extra, says):
    _refused(w, 'agiformer_train', '--resume', '--out', 'run', *extra, says=says)


# 12. Architecture overrides are for original .pth files only.
def test_12_overrides_do_not_change_a_stored_architecture(w):
    _refused(w, 'agiformer_generate', '--checkpoint', 'run', '--prompt', 'def f(', '--window_size', '1', '--device', 'cpu',
             says=['window_size=1', 'would change the architecture', 'original .pth'])


# 13. config.json beside the weights is checked against the config they carry.
@pytest.mark.parametrize('edit, says', [('window', 'disagrees with the config stored'), ('unknown', "unknown config keys ['colour']"),
                                        ('json', 'is not valid JSON')])
def test_13_edited_model_config(w, edit, says):
    p = w / 'run' / 'best' / 'config.json'
    c = json.loads(p.read_text())
    if edit == 'window': c['window_size'] = 1
    if edit == 'unknown': c['colour'] = 'red'
    p.write_text(json.dumps(c) if edit != 'json' else '{"d_model": ')
    _refused(w, 'agiformer_eval', '--checkpoint', 'run', '--data', 'corpus.txt', '--window', '64', '--n_windows', '2',
             '--device', 'cpu', says=[says, 'config.json'])


# 14. Options that would do nothing, or that break positions, are refused by every command that takes them.
@pytest.mark.parametrize('argv, says', [
    ((*TRAIN, '--thinking_backprop', '5', '--out', 'x'), '--thinking_backprop 5 truncates nothing'),
    ((*TRAIN, '--thinking_steps', '0', '--thinking_sampler', 'uniform', '--out', 'x'), '--thinking_sampler shape'),
    ((*TRAIN, '--thinking_steps', '0', '--thinking_backprop', '1', '--out', 'x'), '--thinking_backprop shape'),
    ((*TRAIN, '--thinking_steps', '0', '--thinking_inject', '--out', 'x'), '--thinking_inject shape'),
    ((*TRAIN, '--position_offsets', '100000000', '--out', 'x'), 'above 2^24'),
    (('agiformer_generate', '--checkpoint', 'run', '--prompt', 'def f(', '--halt_threshold', 'inf'), '--halt_threshold must be a finite number'),
    (('agiformer_eval', '--checkpoint', 'run', '--data', 'corpus.txt', '--halt_threshold', 'inf'), '--halt_threshold must be a finite number'),
    (('agiformer_eval', '--checkpoint', 'run', '--data', 'corpus.txt', '--thinking_steps', '0', '--halt_threshold', '0.1'),
     'halting stops System 2 early, but the depth is 0')])
def test_14_options_that_do_nothing(w, argv, says):
    _refused(w, *argv, says=says)
    assert not (w / 'x').exists()


def _peak_rss_mb(w, *argv) -> float:
    "Peak resident memory of one command, in MB (measured by a parent process that runs only it)."
    code = ('import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); '
            'assert r.returncode == 0, r.stderr[-2000:]; print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)')
    r = subprocess.run([sys.executable, '-c', code, *argv], cwd=w, env=_env(w), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return int(r.stdout) / 1024


# 15. Evaluation memory does not grow with the depth: only the current latent is kept.
def test_15_eval_memory_independent_of_depth(w):
    (w / 'big.txt').write_bytes(_corpus_bytes(20000))                      # its val split holds 8 windows of 4 KB
    eval_at = lambda T: _peak_rss_mb(w, 'agiformer_eval', '--checkpoint', 'run', '--data', 'big.txt', '--window', '4096',
                                     '--n_windows', '8', '--batch_size', '8', '--thinking_steps', str(T), '--device', 'cpu', '--quiet')
    shallow, deep = eval_at(1), eval_at(400)
    kept = 400 * 8 * 1023 * 32 * 4 / 2**20                                 # what keeping every step's latent would add: 400 MB
    assert deep - shallow < kept / 4, (shallow, deep, kept)


# 16. Each of these gets words that say what was wrong.
def test_16_clear_words(w, tmp_path):
    _refused(w, *TRAIN, '--seed', '100000000000000000000000', '--out', 'x', says='seed must be an integer in [0, 4294967295]')
    _refused(w, *TRAIN, '--data', '/dev/zero', '--out', 'x', says='/dev/zero is not a regular file or directory')
    (w / 'afile').write_text('x')
    _refused(w, *TRAIN, '--data_dir', 'afile', '--out', 'x', says='the data directory afile is a file')
    (w / 'adir').mkdir()
    _refused(w, 'agiformer_generate', '--checkpoint', 'run', '--prompt_file', 'adir', says='is a directory')
    class Evil:
        def __reduce__(self): return (os.system, ('echo pwned > pwned.txt',))
    torch.save({'w': torch.zeros(2), 'x': Evil()}, w / 'evil.pth')
    line = _refused(w, 'agiformer_generate', '--checkpoint', 'evil.pth', '--prompt', 'abcd', says='will not run pickled code')
    assert 'weights_only' not in line and not (w / 'pwned.txt').exists()


# 17. The README's inspection command works as written (a run directory inspects its own corpus).
def test_17_readme_inspect_command(w):
    line = next(l for l in (ROOT / 'README.md').read_text().splitlines() if l.startswith('agiformer_inspect '))
    argv = line.split('#')[0].replace('runs/quickstart', 'run').split()
    r = _run(w, *argv, '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((w / 'run' / 'inspect' / 'inspect.json').read_text())['trained_steps'] == 2
