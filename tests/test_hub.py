"""Hub sharing for real: loading by hub id from a local HTTP server playing the hub (HF_ENDPOINT), revisions,
safetensors only; agiformer_push as users run it (dry run, token handling, bad input)."""
import hashlib, http.server, json, os, shutil, signal, socket, subprocess, sys, threading
from pathlib import Path

import pytest
import torch

from agiformer.checkpoint import load_model, save_model   # attaches AGIFORMER.from_pretrained (safetensors only, checked)
from agiformer.model import AGIFORMER

SECRET = 'hf_thisIsNotARealTokenButMustNeverBePrinted'


class FakeHub(http.server.BaseHTTPRequestHandler):
    "Serves GET/HEAD /{user}/{name}/resolve/{revision}/{file} the way the hub's file endpoint does."
    files: dict = {}
    requests: list = []

    def log_message(self, *a): pass

    def _serve(self, body: bool):
        parts = self.path.split('?')[0].strip('/').split('/')
        self.requests.append((self.command, self.path))
        if len(parts) >= 5 and parts[2] == 'resolve':
            key = ('/'.join(parts[:2]), parts[3], '/'.join(parts[4:]))
            data = self.files.get(key)
            if data is not None:
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.send_header('ETag', f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header('X-Repo-Commit', hashlib.sha1(parts[3].encode()).hexdigest())
                self.end_headers()
                if body: self.wfile.write(data)
                return
            self.send_response(404)
            repo, rev = key[0], key[1]
            self.send_header('X-Error-Code', 'RepoNotFound' if not any(k[0] == repo for k in self.files) else
                             'RevisionNotFound' if not any(k[:2] == (repo, rev) for k in self.files) else 'EntryNotFound')
        else: self.send_response(404)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_GET = lambda self: self._serve(True)
    do_HEAD = lambda self: self._serve(False)


@pytest.fixture(scope='module')
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('hub')
    torch.manual_seed(0)
    a = AGIFORMER.from_preset('tiny').eval()
    b = AGIFORMER.from_preset('tiny', thinking_steps=4).eval()
    for rev, m in (('main', a), ('v2', b)):
        m.save_pretrained(tmp / rev)
        for f in ('config.json', 'model.safetensors'):
            FakeHub.files[('me/tiny', rev, f)] = (tmp / rev / f).read_bytes()
    save_model(a, tmp / 'edited' / 'model.safetensors')                 # a config in its header, and a config.json
    (tmp / 'edited' / 'config.json').write_text(a.config.replace(window_size=4).to_json())   # that says otherwise
    for f in ('config.json', 'model.safetensors'): FakeHub.files[('me/edited', 'main', f)] = (tmp / 'edited' / f).read_bytes()
    torch.save(a.state_dict(), tmp / 'pytorch_model.bin')
    FakeHub.files[('me/pickled', 'main', 'config.json')] = (tmp / 'main' / 'config.json').read_bytes()
    FakeHub.files[('me/pickled', 'main', 'pytorch_model.bin')] = (tmp / 'pytorch_model.bin').read_bytes()
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), FakeHub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = {**os.environ, 'HF_ENDPOINT': f'http://127.0.0.1:{srv.server_port}', 'HF_HOME': str(tmp / 'hf_home'),
           'HF_HUB_DISABLE_TELEMETRY': '1', 'HF_HUB_ETAG_TIMEOUT': '60'}
    env.pop('HF_TOKEN', None); env.pop('HF_HUB_OFFLINE', None)
    yield tmp, env
    srv.shutdown()


def _py(code, env):
    return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)


def test_from_pretrained_by_hub_id_and_revision(hub):
    tmp, env = hub
    code = f"""
import torch
from agiformer.checkpoint import load_model
from agiformer.model import AGIFORMER
x = torch.randint(0, 256, (2, 36), generator=torch.Generator().manual_seed(1))
def out(m):
    with torch.no_grad(): return m(x[:, :-4], x[:, 4:])
for rev, local in (('main', {str(tmp / 'main')!r}), ('v2', {str(tmp / 'v2')!r})):
    h = AGIFORMER.from_pretrained('me/tiny', revision=None if rev == 'main' else rev)
    l = AGIFORMER.from_pretrained(local)
    assert h.config == l.config, (h.config, l.config)
    assert torch.equal(out(h), out(l)), rev
    assert torch.equal(out(load_model('me/tiny', revision=None if rev == 'main' else rev)), out(l)), rev
    print(rev, h.config.thinking_steps)
"""
    r = _py(code, hub[1])
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ['main', '2', 'v2', '4']
    assert any('/me/tiny/resolve/v2/model.safetensors' in p for _, p in FakeHub.requests)


def test_hub_errors_are_clear_and_no_pickle_is_loaded(hub):
    tmp, env = hub
    r = _py("from agiformer.checkpoint import load_model; load_model('me/pickled')", env)
    assert r.returncode != 0 and 'loads safetensors weights only' in r.stderr, r.stderr[-2000:]
    assert not any('pytorch_model.bin' in p for _, p in FakeHub.requests)
    r = _py("import agiformer.checkpoint; from agiformer.model import AGIFORMER; AGIFORMER.from_pretrained('me/nothing')", env)
    assert r.returncode != 0 and "'me/nothing' not found" in r.stderr, r.stderr[-2000:]
    r = _py("from agiformer.checkpoint import load_model; load_model('me/tiny', revision='v9')", env)
    assert r.returncode != 0 and "has no revision 'v9'" in r.stderr, r.stderr[-2000:]


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('push')
    corpus = tmp / 'corpus.txt'
    corpus.write_bytes(b''.join(f"def g{i}(y):\n    return y - {i % 11}\n".encode() for i in range(3000)))
    subprocess.run([sys.executable, '-m', 'agiformer.train', '--preset', 'tiny', '--data', str(corpus), '--steps', '4',
                    '--seq_len', '64', '--batch_size', '2', '--val_every', '2', '--val_windows', '2', '--val_window', '256',
                    '--device', 'cpu', '--out', str(tmp / 'run'), '--quiet'], check=True, timeout=300)
    return tmp / 'run'


def test_push_dry_run_shows_files_and_card_never_the_token(run_dir, tmp_path):
    env = {**os.environ, 'HF_TOKEN': SECRET, 'HF_HOME': str(tmp_path / 'hf')}
    r = subprocess.run(['agiformer_push', str(run_dir), 'me/agiformer-tiny', '--dry_run'], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for f in ('model.safetensors', 'config.json', 'README.md', 'metrics.jsonl', 'bpc.png'): assert f in r.stdout
    assert 'Would upload to https://huggingface.co/me/agiformer-tiny' in r.stdout
    assert 'library_name: agiformer' in r.stdout and 'val (best, step' in r.stdout
    assert SECRET not in r.stdout + r.stderr


def test_push_needs_a_token_from_the_environment(run_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'HF_TOKEN'}
    env.update(HF_HOME=str(tmp_path / 'empty_hf_home'), HF_HUB_OFFLINE='1')
    r = subprocess.run(['agiformer_push', str(run_dir), 'me/agiformer-tiny', '--no_test'], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and 'no Hugging Face token' in r.stderr, r.stderr[-2000:]
    help_ = subprocess.run(['agiformer_push', '--help'], capture_output=True, text=True, check=True).stdout
    assert '--token' not in help_ and '--dry_run' in help_ and '--private' in help_ and '--revision' in help_


def test_push_bad_input(run_dir, tmp_path):
    r = subprocess.run(['agiformer_push', str(tmp_path / 'missing'), 'me/x', '--dry_run'], capture_output=True, text=True)
    assert r.returncode == 2 and 'does not exist' in r.stderr
    r = subprocess.run(['agiformer_push', str(run_dir), 'not-a-repo-id', '--dry_run'], capture_output=True, text=True)
    assert r.returncode == 2 and "must look like 'user/name'" in r.stderr


@pytest.mark.parametrize('argv', [
    ['agiformer_eval', '--checkpoint', 'me/tiny', '--data', 'corpus.txt', '--window', '256', '--n_windows', '2', '--quiet'],
    ['agiformer_generate', '--checkpoint', 'me/tiny', '--prompt', 'def main(', '--max_bytes', '8', '--temperature', '0'],
    ['agiformer_inspect', '--checkpoint', 'me/tiny', '--text', 'def main(): return 42', '--out', 'inspect'],
    ['agiformer_push', 'me/tiny', 'you/tiny-copy', '--dry_run'],
    ['agiformer_train', '--init_from', 'me/tiny', '--preset', 'tiny', '--data', 'corpus.txt', '--steps', '1',
     '--seq_len', '64', '--batch_size', '1', '--val_every', '1', '--val_windows', '1', '--val_window', '256', '--out', 'run', '--quiet'],
], ids=lambda a: a[0])
def test_every_command_takes_a_hub_id(argv, hub, tmp_path):
    tmp, env = hub
    (tmp_path / 'corpus.txt').write_bytes(b''.join(f"def h{i}(z):\n    return z + {i % 13}\n".encode() for i in range(2000)))
    FakeHub.requests.clear()                                  # this command must fetch the files itself
    r = subprocess.run(argv + ['--device', 'cpu'] * (argv[0] != 'agiformer_push'), cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert any(p.startswith('/me/tiny/resolve/main/') for _, p in FakeHub.requests)


BOOK = Path(__file__).resolve().parents[1] / 'nbs' / 'models' / 'pystdlib-mini'
BIN = Path(sys.executable).parent


def _error_line(r, prog) -> str:
    "The one stderr line of a command that failed as a user error should (exit status 2, no traceback)."
    assert 'Traceback' not in r.stderr and r.returncode == 2, (r.returncode, r.stderr[-3000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), r.stderr[-3000:]
    return lines[0]


def test_hub_files_that_disagree_are_refused_like_local_ones(hub, tmp_path):
    "config.json and model.safetensors fetched from the hub go through the same check as a local model directory."
    tmp, env = hub
    r = subprocess.run([str(BIN / 'agiformer_generate'), '--checkpoint', 'me/edited', '--prompt', 'abcd', '--device', 'cpu'],
                       cwd=tmp_path, env={**env, 'AGIFORMER_DATA': str(tmp_path / 'data')}, capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    line = _error_line(r, 'agiformer_generate')
    assert 'config.json disagrees with the config stored in' in line and 'model.safetensors' in line, line
    assert 'window_size: 4 in config.json, 8 in the header' in line and 'models--me--edited' in line, line


@pytest.fixture
def push_env(tmp_path):
    "A copy of the book's model, an empty TMPDIR to stage in, and the usual offline environment."
    shutil.copytree(BOOK, tmp_path / 'mini')
    (tmp_path / 'scratch').mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('HF_TOKEN', 'HF_ENDPOINT', 'AGIFORMER_DEBUG')}
    env.update(HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf_home'), AGIFORMER_DATA=str(tmp_path / 'data'),
               HF_HUB_DISABLE_TELEMETRY='1', PYTHONWARNINGS='ignore', TMPDIR=str(tmp_path / 'scratch'))
    return tmp_path, env


def _closed_port() -> int:
    "A port on 127.0.0.1 that nothing listens on (bound, then released)."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _push(argv, env, cwd):
    return subprocess.run([str(BIN / 'agiformer_push'), *map(str, argv)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_push_dry_run_leaves_no_staged_copy(push_env):
    tmp, env = push_env
    r = _push([tmp / 'mini', 'me/x', '--dry_run', '--no_test'], env, tmp)
    assert r.returncode == 0 and 'model.safetensors' in r.stdout, r.stderr[-3000:]
    assert list((tmp / 'scratch').iterdir()) == []


def test_push_to_an_unreachable_hub_is_one_line_and_leaves_nothing(push_env):
    "HF_ENDPOINT at a closed port of this machine (nothing leaves it): a refused connection, said in one line."
    tmp, env = push_env
    env = {**env, 'HF_TOKEN': 'x', 'HF_ENDPOINT': f'http://127.0.0.1:{_closed_port()}'}
    env.pop('HF_HUB_OFFLINE')
    line = _error_line(_push([tmp / 'mini', 'me/x', '--no_test'], env, tmp), 'agiformer_push')
    assert 'could not reach the Hugging Face hub at http://127.0.0.1:' in line, line
    assert 'Connection refused' in line and 'check the network connection, HF_ENDPOINT' in line, line
    assert list((tmp / 'scratch').iterdir()) == []


def test_push_while_offline_is_one_line_and_leaves_nothing(push_env):
    tmp, env = push_env
    line = _error_line(_push([tmp / 'mini', 'me/x', '--no_test'], {**env, 'HF_TOKEN': 'x'}, tmp), 'agiformer_push')
    assert 'cannot be reached while HF_HUB_OFFLINE is set' in line, line
    assert list((tmp / 'scratch').iterdir()) == []


def test_push_refuses_an_architecture_override_and_leaves_nothing(push_env):
    tmp, env = push_env
    line = _error_line(_push([tmp / 'mini', 'me/x', '--num_heads', 2, '--dry_run', '--no_test'], env, tmp), 'agiformer_push')
    assert 'num_heads=2 (stored: 4)' in line and 'for original .pth files' in line, line
    assert list((tmp / 'scratch').iterdir()) == []


def test_push_interrupted_during_the_upload_leaves_nothing(push_env):
    "Ctrl-C while the hub (a socket on 127.0.0.1 that never answers) is waited on: status 130, the staging is gone."
    tmp, env = push_env
    with socket.socket() as silent:
        silent.bind(('127.0.0.1', 0)); silent.listen(16)
        env = {**env, 'HF_TOKEN': 'x', 'HF_ENDPOINT': f'http://127.0.0.1:{silent.getsockname()[1]}', 'PYTHONUNBUFFERED': '1'}
        env.pop('HF_HUB_OFFLINE')
        p = subprocess.Popen([str(BIN / 'agiformer_push'), str(tmp / 'mini'), 'me/x', '--no_test'], cwd=tmp, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        try:
            for line in p.stdout:                     # the file list is printed just before the upload starts
                if 'model.safetensors' in line: break
            assert list((tmp / 'scratch').iterdir()) != []       # staged, and now waiting on the silent hub
            threading.Event().wait(1.0)
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None: p.kill(); p.wait()
    assert p.returncode == 130 and err.strip() == 'agiformer_push: interrupted', (p.returncode, err[-3000:])
    assert list((tmp / 'scratch').iterdir()) == []
