"""enwik8 download against a real HTTP server on 127.0.0.1: verification, resume after a dropped connection, a server
that ignores Range, corrupt archives, no second download, offline errors, local zips that are only read. The console
commands' one-line errors for these (and for a data path or data directory of the wrong kind) run the real commands,
with the enwik8 URL on a closed port of 127.0.0.1. The real-internet test runs only with AGIFORMER_TEST_FLAGS
containing `download`."""
import hashlib, io, json, os, socket, subprocess, threading, zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from agiformer.data import load_corpus
from agiformer.download import ChecksumError, DownloadError, ENWIK8_MEMBER, Expected, download, fetch_enwik8, verify_file

MEMBER = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))  # incompressible: a ~300 KB zip


def _zip(member=MEMBER, name='enwik8'):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z: z.writestr(name, member)
    return buf.getvalue()


ARCHIVE = _zip()
SPEC = dict(archive=Expected(len(ARCHIVE), sha256=hashlib.sha256(ARCHIVE).hexdigest()),
            member=Expected(len(MEMBER), md5=hashlib.md5(MEMBER).hexdigest(), sha256=hashlib.sha256(MEMBER).hexdigest()),
            progress=False, backoff=0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args): pass

    def do_GET(self):
        st = self.server.state
        rng = self.headers.get('Range')
        st['requests'].append((self.path, rng))
        if st['errors'] > 0:                     # a server that answers, but with a passing error
            st['errors'] -= 1
            self.send_error(503); return
        body = st['files'].get(self.path)
        if body is None:
            self.send_error(404); return
        start = 0
        if rng and st['honour_range']:
            start = int(rng.split('=')[1].split('-')[0])
            if start >= len(body):
                self.send_response(416); self.send_header('Content-Range', f'bytes */{len(body)}')
                self.send_header('Content-Length', '0'); self.end_headers(); return
            self.send_response(206); self.send_header('Content-Range', f'bytes {start}-{len(body) - 1}/{len(body)}')
        else:
            self.send_response(200)
        self.send_header('Content-Length', str(len(body) - start))
        self.send_header('Accept-Ranges', 'bytes'); self.send_header('ETag', '"v1"')
        self.end_headers()
        payload = body[start:]
        if st['drops'] > 0:                      # promise the whole payload, send 40% of it, and hang up
            st['drops'] -= 1
            self.wfile.write(payload[:len(payload) * 2 // 5]); self.wfile.flush()
            st['sent'] += len(payload) * 2 // 5
            self.close_connection = True
            return
        self.wfile.write(payload)
        st['sent'] += len(payload)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    srv.daemon_threads = True
    srv.state = dict(files={'/enwik8.zip': ARCHIVE}, requests=[], drops=0, honour_range=True, sent=0, errors=0)
    threading.Thread(target=srv.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True).start()
    srv.url = f'http://127.0.0.1:{srv.server_port}/enwik8.zip'
    yield srv
    srv.shutdown(); srv.server_close()


@pytest.fixture
def closed_url():
    "A URL that refuses connections: its port stays bound (never listening) during the test, so nothing else can take it."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        yield f'http://127.0.0.1:{s.getsockname()[1]}/enwik8.zip'


def test_download_verify_extract_and_no_second_download(server, tmp_path, closed_url):
    path, downloaded = fetch_enwik8(tmp_path, url=server.url, **SPEC)
    assert downloaded and path == tmp_path / 'enwik8' and path.read_bytes() == MEMBER
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.enwik8.verified.json', 'enwik8']   # zip, .part removed
    assert len(server.state['requests']) == 1
    c = load_corpus('enwik8', data_dir=tmp_path, url=server.url, **SPEC)
    assert not c.downloaded and len(server.state['requests']) == 1                  # no second download
    assert bytes(c.train) + bytes(c.val) + bytes(c.test) == MEMBER
    assert isinstance(c.train, np.memmap) and c.train.dtype == np.uint8
    # present and valid: not even a connection attempt (the URL points nowhere)
    assert fetch_enwik8(tmp_path, url=closed_url, **SPEC) == (path, False)


def test_resume_after_the_server_drops_the_connection(server, tmp_path):
    server.state['drops'] = 2
    path, downloaded = fetch_enwik8(tmp_path, url=server.url, keep_archive=True, **SPEC)
    assert downloaded and path.read_bytes() == MEMBER and (tmp_path / 'enwik8.zip').read_bytes() == ARCHIVE
    reqs = server.state['requests']
    assert len(reqs) == 3 and reqs[0][1] is None
    # each retry asks only for the rest (from what reached the disk: at most what the server sent before hanging up)
    starts = [int(r[1].split('=')[1].rstrip('-')) for r in reqs[1:]]
    assert 0 < starts[0] <= len(ARCHIVE) * 2 // 5 and starts[0] < starts[1] < len(ARCHIVE)
    assert server.state['sent'] < 1.5 * len(ARCHIVE)                # restarting from 0 would send 1.8x


def test_resume_a_part_left_by_a_killed_process(server, tmp_path):
    part = tmp_path / 'enwik8.zip.part'
    part.write_bytes(ARCHIVE[:100_000])
    (tmp_path / 'enwik8.zip.part.json').write_text(json.dumps(dict(url=server.url, validator='"v1"')))
    assert fetch_enwik8(tmp_path, url=server.url, **SPEC)[0].read_bytes() == MEMBER
    assert server.state['requests'] == [('/enwik8.zip', 'bytes=100000-')]
    assert not part.exists()


def test_restart_when_the_server_ignores_range(server, tmp_path):
    server.state.update(drops=1, honour_range=False)
    path, _ = fetch_enwik8(tmp_path, url=server.url, **SPEC)
    assert path.read_bytes() == MEMBER
    assert [r[1] is not None for r in server.state['requests']] == [False, True]   # asked for a range, got 200: restarted


def test_a_part_from_another_url_is_not_resumed(server, tmp_path):
    (tmp_path / 'enwik8.zip.part').write_bytes(b'x' * 1000)
    (tmp_path / 'enwik8.zip.part.json').write_text(json.dumps(dict(url='http://elsewhere/enwik8.zip')))
    assert fetch_enwik8(tmp_path, url=server.url, **SPEC)[0].read_bytes() == MEMBER
    assert server.state['requests'] == [('/enwik8.zip', None)]


def test_corrupted_archive_is_rejected_and_not_kept(server, tmp_path):
    bad = bytearray(ARCHIVE); bad[len(bad) // 2] ^= 0xFF
    server.state['files']['/enwik8.zip'] = bytes(bad)
    with pytest.raises(ChecksumError, match='does not match: sha256'):
        fetch_enwik8(tmp_path, url=server.url, **SPEC)
    assert list(tmp_path.iterdir()) == []                           # nothing half-written, nothing corrupt kept
    # without an archive checksum the corruption is still caught, by zip's CRC or the member's checksums
    with pytest.raises(ChecksumError):
        fetch_enwik8(tmp_path, url=server.url, **{**SPEC, 'archive': Expected(len(ARCHIVE))})
    assert not (tmp_path / 'enwik8').exists() and not (tmp_path / 'enwik8.zip').exists()


def test_wrong_member_is_rejected(server, tmp_path):
    other = _zip(MEMBER[::-1])
    server.state['files']['/enwik8.zip'] = other
    with pytest.raises(ChecksumError, match="member 'enwik8'.*does not match"):
        fetch_enwik8(tmp_path, url=server.url, **{**SPEC, 'archive': Expected(len(other))})
    assert not (tmp_path / 'enwik8').exists()
    server.state['files']['/enwik8.zip'] = _zip(MEMBER, name='something_else')
    with pytest.raises(ValueError, match="no member 'enwik8'"):
        fetch_enwik8(tmp_path, url=server.url, **{**SPEC, 'archive': Expected()})


def test_a_resumed_download_that_fails_verification_is_fetched_once_more_from_scratch(server, tmp_path):
    # a stale .part from a different version of the file (same URL): the resumed result fails the checksum
    (tmp_path / 'enwik8.zip.part').write_bytes(b'\0' * 1000)
    (tmp_path / 'enwik8.zip.part.json').write_text(json.dumps(dict(url=server.url)))
    assert fetch_enwik8(tmp_path, url=server.url, **SPEC)[0].read_bytes() == MEMBER
    assert [r[1] for r in server.state['requests']] == ['bytes=1000-', None]


def test_truncated_or_corrupt_enwik8_is_fetched_again(server, tmp_path):
    path, _ = fetch_enwik8(tmp_path, url=server.url, **SPEC)
    with open(path, 'r+b') as f: f.truncate(1234)
    with pytest.warns(UserWarning, match='not a valid enwik8'):
        path, downloaded = fetch_enwik8(tmp_path, url=server.url, **SPEC)
    assert downloaded and path.read_bytes() == MEMBER and len(server.state['requests']) == 2


def test_a_local_enwik8_zip_is_used_without_network(tmp_path, closed_url):
    (tmp_path / 'enwik8.zip').write_bytes(ARCHIVE)
    path, downloaded = fetch_enwik8(tmp_path, url=closed_url, **SPEC)
    assert not downloaded and path.read_bytes() == MEMBER
    assert (tmp_path / 'enwik8.zip').exists()                       # a zip we did not download is not deleted


def test_network_failure_names_the_url_and_suggests_data_path(tmp_path, closed_url):
    url = closed_url
    with pytest.raises(DownloadError) as e:
        load_corpus('enwik8', data_dir=tmp_path, url=url, max_tries=2, **SPEC)
    msg = str(e.value)
    assert url in msg and '--data PATH' in msg and 'AGIFORMER_ENWIK8_URL' in msg and 'cannot connect' in msg
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_fails_at_once(tmp_path, closed_url, monkeypatch):
    "No connection at all on the first attempt: no retries, so no back-off sleeps between attempts."
    import agiformer.download as dl
    slept = []
    monkeypatch.setattr(dl.time, 'sleep', slept.append)
    with pytest.raises(ConnectionError) as e:                       # DownloadError is a ConnectionError, an OSError
        fetch_enwik8(tmp_path, url=closed_url, **{**SPEC, 'backoff': 2.5})
    assert slept == [] and isinstance(e.value, (DownloadError, OSError))
    assert 'cannot connect to the server' in str(e.value) and 'Connection refused' in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_answers_with_an_error_is_retried(server, tmp_path):
    server.state['errors'] = 2                                      # 503 twice, then the file
    assert fetch_enwik8(tmp_path, url=server.url, **SPEC)[0].read_bytes() == MEMBER
    assert len(server.state['requests']) == 3
    server.state['errors'] = 9
    with pytest.raises(DownloadError, match=r'\(3 attempts; last: HTTP 503'):
        download(server.url, tmp_path / 'again.zip', progress=False, max_tries=3, backoff=0)


def _listing(d): return sorted((p.name, p.stat().st_mtime_ns, p.read_bytes()) for p in d.iterdir())


def test_a_named_enwik8_zip_is_extracted_into_the_data_dir_and_only_read(tmp_path, closed_url):
    mine = tmp_path / 'mine'; mine.mkdir()
    (mine / 'enwik8.zip').write_bytes(ARCHIVE)
    before = _listing(mine)
    c = load_corpus(mine / 'enwik8.zip', data_dir=tmp_path / 'data', url=closed_url, **SPEC)
    assert not c.downloaded and bytes(c.train) + bytes(c.val) + bytes(c.test) == MEMBER
    assert (tmp_path / 'data' / 'enwik8').read_bytes() == MEMBER and str(mine / 'enwik8.zip') in c.describe()
    assert _listing(mine) == before                                 # only read: nothing written, changed or deleted there
    assert load_corpus(mine / 'enwik8.zip', data_dir=tmp_path / 'data', url=closed_url, **SPEC).sizes == c.sizes


@pytest.mark.parametrize('kind', ['truncated', 'corrupt', 'other member'])
def test_a_named_zip_that_is_not_the_one_is_left_untouched_and_nothing_is_downloaded(kind, server, tmp_path):
    mine = tmp_path / 'mine'; mine.mkdir()
    bad = bytearray(ARCHIVE); bad[len(bad) // 2] ^= 0xFF
    body = {'truncated': ARCHIVE[:1000], 'corrupt': bytes(bad), 'other member': _zip(MEMBER[::-1])}[kind]
    (mine / 'enwik8.zip').write_bytes(body)
    before = _listing(mine)
    spec = {**SPEC, 'archive': Expected(len(body))} if kind != 'truncated' else SPEC    # the member is what is wrong
    with pytest.raises(ValueError, match='it was left untouched: replace it with a complete copy of .*--data enwik8'):
        load_corpus(mine / 'enwik8.zip', data_dir=tmp_path / 'data', url=server.url, **spec)
    assert _listing(mine) == before and server.state['requests'] == []
    assert not (tmp_path / 'data' / 'enwik8').exists()


def test_an_invalid_zip_in_the_data_dir_is_not_downloaded_over(server, tmp_path):
    (tmp_path / 'enwik8.zip').write_bytes(b'PK, but not the archive')
    with pytest.raises(ChecksumError, match='left untouched: .*delete it to have one downloaded'):
        fetch_enwik8(tmp_path, url=server.url, **SPEC)
    assert (tmp_path / 'enwik8.zip').read_bytes() == b'PK, but not the archive' and server.state['requests'] == []


def test_http_errors_are_clear(server, tmp_path):
    with pytest.raises(DownloadError, match='HTTP 404'):
        download(server.url + '.nope', tmp_path / 'x.zip', progress=False)
    assert list(tmp_path.iterdir()) == []


def test_url_and_data_dir_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv('AGIFORMER_ENWIK8_URL', server.url)
    monkeypatch.setenv('AGIFORMER_DATA', str(tmp_path / 'cache'))
    c = load_corpus('enwik8', **SPEC)
    assert c.downloaded and (tmp_path / 'cache' / 'enwik8').exists() and server.url in c.describe()


# The console commands: one line on stderr, exit status 2, no traceback, nothing touched that the program did not write.

@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    import torch
    from agiformer.checkpoint import save_model
    from agiformer.model import AGIFORMER
    torch.manual_seed(0)
    return save_model(AGIFORMER.from_preset('tiny').eval(), tmp_path_factory.mktemp('ckpt') / 'tiny.safetensors')


def _one_line_error(argv, tmp, closed_url):
    "Run a console command offline (the enwik8 URL on a closed port of 127.0.0.1); its one stderr line."
    env = {k: v for k, v in os.environ.items() if k not in ('HF_TOKEN', 'HF_ENDPOINT', 'AGIFORMER_DEBUG')}
    env.update(HF_HUB_OFFLINE='1', HF_HOME=str(tmp / 'hf_home'), AGIFORMER_DATA=str(tmp / 'data'),
               AGIFORMER_ENWIK8_URL=closed_url.rsplit('/', 1)[0] + '/', HF_HUB_DISABLE_TELEMETRY='1', PYTHONWARNINGS='ignore')
    r = subprocess.run([str(a) for a in argv], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 2 and len(lines) == 1, f"exit status {r.returncode}; stderr:\n{r.stderr[-3000:]}"
    assert lines[0].startswith(f"{argv[0]}: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize('cmd', ['agiformer_train', 'agiformer_eval', 'agiformer_inspect'])
def test_cli_enwik8_offline(cmd, checkpoint, tmp_path, closed_url):
    args = (['--preset', 'tiny', '--steps', '2', '--out', 'run'] if cmd == 'agiformer_train' else
            ['--checkpoint', checkpoint] + (['--out', 'inspect'] if cmd == 'agiformer_inspect' else []))
    line = _one_line_error([cmd, *args, '--data', 'enwik8', '--device', 'cpu'], tmp_path, closed_url)
    for words in ['could not download http://127.0.0.1:', 'cannot connect to the server', 'Connection refused',
                  f"put enwik8.zip (or the extracted enwik8) in {tmp_path / 'data'}", 'AGIFORMER_ENWIK8_URL', '--data PATH']:
        assert words in line, line
    assert not (tmp_path / 'run').exists() and not any((tmp_path / 'data').rglob('*'))


def test_cli_named_enwik8_zip_that_is_not_the_published_one(tmp_path, closed_url):
    mine = tmp_path / 'mine'; mine.mkdir()
    (mine / 'enwik8.zip').write_bytes(ARCHIVE)                      # a zip holding an enwik8, but not the published one
    before = _listing(mine)
    line = _one_line_error(['agiformer_train', '--preset', 'tiny', '--data', 'mine/enwik8.zip', '--steps', '2',
                            '--out', 'run', '--device', 'cpu'], tmp_path, closed_url)
    for words in ['mine/enwik8.zip', f'is {len(ARCHIVE):,} bytes, expected 36,445,475', 'it was left untouched',
                  'replace it with a complete copy of', '--data enwik8']:
        assert words in line, line
    assert _listing(mine) == before                                 # byte for byte, mtime too; nothing else written there
    assert not (tmp_path / 'data' / 'enwik8').exists() and not (tmp_path / 'run').exists()


def test_cli_data_that_is_a_device(tmp_path, closed_url):
    line = _one_line_error(['agiformer_train', '--preset', 'tiny', '--data', '/dev/zero', '--steps', '2', '--out', 'run',
                            '--device', 'cpu'], tmp_path, closed_url)
    assert '/dev/zero is not a regular file or directory (a device, a pipe or a socket)' in line, line
    assert 'give a file of bytes or a directory of files' in line, line


def test_cli_data_dir_that_is_a_file(tmp_path, closed_url):
    (tmp_path / 'afile').write_bytes(b'mine')
    line = _one_line_error(['agiformer_train', '--preset', 'tiny', '--data', 'pystdlib', '--data_dir', 'afile', '--steps', '2',
                            '--out', 'run', '--device', 'cpu'], tmp_path, closed_url)
    assert 'the data directory afile is a file: give a directory with --data_dir DIR' in line, line
    assert (tmp_path / 'afile').read_bytes() == b'mine' and not (tmp_path / 'run').exists()


@pytest.mark.skipif('download' not in os.environ.get('AGIFORMER_TEST_FLAGS', ''),
                    reason='needs the internet: set AGIFORMER_TEST_FLAGS=download')
def test_real_enwik8_from_the_internet(tmp_path):
    c = load_corpus('enwik8', data_dir=tmp_path, progress=False)
    assert c.downloaded and c.sizes == dict(train=90_000_000, val=5_000_000, test=5_000_000)
    assert verify_file(tmp_path / 'enwik8', ENWIK8_MEMBER) is None
    assert bytes(c.train[:10]) == b'<mediawiki'
