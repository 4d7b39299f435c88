"""A new user's first run, as they run it: `agiformer_train` on a 300 KB file of real text trains (its val split is
smaller than the 64 windows asked for: it validates on all it has and says so once); its output redirected to a file
holds the log lines alone (no progress-bar frames); `agiformer_eval` scores a small split whole; compressed data
(.gz, .bz2, .xz, alone or in a directory with plain files) is read as the text it holds; archives are refused."""
import bz2, fcntl, gzip, hashlib, json, lzma, os, pty, re, struct, subprocess, sysconfig, termios, threading, zipfile
from pathlib import Path

import pytest

from agiformer.data import load_corpus
from agiformer.download import Expected

SIZE = 300_000


def _env(tmp):
    env = {k: v for k, v in os.environ.items() if k not in ('AGIFORMER_DEBUG', 'HF_TOKEN', 'HF_ENDPOINT')}
    env.update(AGIFORMER_DATA=str(tmp / 'data'), HF_HUB_OFFLINE='1', HF_HOME=str(tmp / 'hf_home'),
               PYTHONWARNINGS='ignore', COLUMNS='100')
    return env


def _real_text(n: int) -> bytes:
    "The first n bytes of the Python standard library's own source: real, varied text every machine has."
    root, out = Path(sysconfig.get_paths()['stdlib']), bytearray()
    for p in sorted(root.glob('*.py')):
        out += p.read_bytes()
        if len(out) >= n: return bytes(out[:n])
    raise RuntimeError(f"the stdlib at {root} holds fewer than {n:,} bytes of *.py")


def _run(argv, tmp, log_name):
    "Run a command as `argv > log 2>&1` would: its output goes to a file, not a terminal. (exit status, text)."
    log = tmp / log_name
    with open(log, 'wb') as f:
        rc = subprocess.run(argv, cwd=tmp, env=_env(tmp), stdout=f, stderr=subprocess.STDOUT, timeout=900).returncode
    return rc, log.read_bytes().decode('utf-8', 'replace')


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
    "`agiformer_train --preset tiny --data my.txt --steps 2 > log`: the run every other test here reads."
    tmp = tmp_path_factory.mktemp('first')
    (tmp / 'my.txt').write_bytes(_real_text(SIZE))
    rc, out = _run(['agiformer_train', '--preset', 'tiny', '--data', 'my.txt', '--steps', '2', '--log_every', '1',
                    '--device', 'cpu', '--out', 'run'], tmp, 'log')
    return tmp, rc, out


def test_a_300kb_file_trains(first_run):
    tmp, rc, out = first_run
    assert rc == 0, out[-3000:]
    recs = [json.loads(l) for l in (tmp / 'run' / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in recs if r['kind'] == 'train'] == [1, 2]
    val = [r for r in recs if r['kind'] == 'val']
    assert len(val) == 1 and val[0]['n_bytes'] == 14 * 1020              # all 14 windows of the 15,000-byte val split
    assert (tmp / 'run' / 'best' / 'model.safetensors').exists() and (tmp / 'run' / 'last' / 'trainer_state.pt').exists()


def test_small_val_split_is_said_once(first_run):
    tmp, rc, out = first_run
    note = 'val: the val split holds 14 windows of 1,024 bytes, fewer than val_windows=64: validating on all 14'
    assert [l for l in out.splitlines() if 'fewer than' in l] == [f'[*] {note}'], out[-3000:]
    assert f'[*] {note}' in (tmp / 'run' / 'log.txt').read_text().splitlines()


def test_redirected_output_is_the_log_lines(first_run):
    "No carriage return, no bar: every line of log.txt is in the redirected output, in order, and `grep '^Step'` works."
    tmp, rc, out = first_run
    assert '\r' not in out and 'it/s' not in out and 'step/s' not in out, repr(out[-2000:])
    steps = [l for l in out.splitlines() if re.match(r'^Step \d+: Loss = \d+\.\d{4} \| BPC = \d+\.\d{4} \| LR = ', l)]
    assert len(steps) == 2, out[-3000:]
    log = (tmp / 'run' / 'log.txt').read_text().splitlines()
    lines = out.splitlines()
    assert lines[:len(log)] == log, (lines[:len(log)], log)              # then the closing "Run directory: ..." line
    assert lines[len(log):] and lines[len(log)].startswith('Run directory: run;'), lines[len(log):]


def test_progress_flag_draws_the_bar_anyway(first_run):
    tmp, _, _ = first_run
    rc, out = _run(['agiformer_train', '--preset', 'tiny', '--data', 'my.txt', '--steps', '2', '--seq_len', '64',
                    '--val_windows', '2', '--device', 'cpu', '--out', 'run_bar', '--progress'], tmp, 'log_bar')
    assert rc == 0, out[-3000:]
    assert '\r' in out and '2/2' in out, repr(out[-2000:])


def test_a_terminal_still_gets_the_bar(first_run):
    "Output to a terminal (a pseudo-terminal of 100 columns here) draws the progress bar, as before."
    tmp, _, _ = first_run
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 100, 0, 0))
    chunks = []
    def read():                                     # drain the terminal while the command writes to it
        while True:
            try: b = os.read(master, 4096)
            except OSError: return                  # EIO: the command has ended and the terminal is closed
            if not b: return
            chunks.append(b)
    reader = threading.Thread(target=read, daemon=True); reader.start()
    try:
        rc = subprocess.run(['agiformer_train', '--preset', 'tiny', '--data', 'my.txt', '--steps', '3', '--seq_len', '64',
                             '--val_windows', '2', '--device', 'cpu', '--out', 'run_tty'], cwd=tmp, env=_env(tmp),
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, timeout=600).returncode
    finally:
        os.close(slave); reader.join(timeout=60); os.close(master)
    out = b''.join(chunks).decode('utf-8', 'replace')
    assert rc == 0, out[-3000:]
    assert re.search(r'\r\s*100%\|.*\| 3/3 \[', out), repr(out[-2000:])
    assert 'Step 3: Loss = ' in out, repr(out[-2000:])                   # the log lines, above the bar


def test_eval_scores_a_small_split_whole(first_run):
    tmp, rc, _ = first_run
    assert rc == 0
    rc, out = _run(['agiformer_eval', '--checkpoint', 'run', '--data', 'my.txt', '--protocol', '--device', 'cpu'], tmp,
                   'log_eval')
    assert rc == 0, out[-3000:]
    assert '\r' not in out, repr(out[-2000:])
    lines = out.strip().splitlines()
    assert "val: the val split holds 14 windows of 1,024 bytes, fewer than the protocol's 64: scoring all 14" in lines
    res = json.loads(lines[-1])
    assert (res['n_windows'], res['n_bytes'], res['protocol']) == (14, 14 * 1020, False)   # not the protocol's figure
    rc, out = _run(['agiformer_eval', '--checkpoint', 'run', '--data', 'my.txt', '--n_windows', '100', '--quiet',
                    '--device', 'cpu'], tmp, 'log_eval2')
    assert rc == 0 and out.strip().count('\n') == 0 and json.loads(out)['n_windows'] == 14, out[-3000:]


def test_eval_window_refused_before_the_data(first_run):
    "A window that is not whole patches of the model is refused once the model is known, before any data is read."
    tmp, rc, _ = first_run
    assert rc == 0
    r = subprocess.run(['agiformer_eval', '--checkpoint', 'run', '--data', 'no-such-file.txt', '--window', '1022',
                        '--device', 'cpu'], cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "agiformer_eval: error: --window 1022 must be a multiple of the model's patch_size 4 and hold at least 2 patches "
        "(e.g. --window 1020)"], r.stderr[-2000:]


TEXTS = {f'doc{i:02d}/changelog.gz': f"version {i}.0: fixed bug #{i * 37} in the parser\n".encode() * (40 + i)
         for i in range(12)}
TEXTS.update({'README': b'A plain file beside the compressed ones.\n' * 30, 'notes.txt.bz2': b'bzip2 notes\n' * 200,
              'z/news.xz': b'xz news, line by line\n' * 150})
OPEN = {'.gz': gzip.open, '.bz2': bz2.open, '.xz': lzma.open}


def _write_tree(root: Path, texts: dict) -> Path:
    for rel, text in texts.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with OPEN.get(p.suffix, open)(p, 'wb') as f: f.write(text)
    return root


def test_compressed_files_are_read_as_their_text(tmp_path):
    docs = _write_tree(tmp_path / 'docs', TEXTS)
    want = b''.join(TEXTS[r] for r in sorted(TEXTS))                     # sorted by relative path, decompressed
    assert sum(p.stat().st_size for p in docs.rglob('*') if p.is_file()) < len(want) / 3   # they really are compressed
    c = load_corpus(docs, data_dir=tmp_path / 'data')
    assert bytes(c.train) + bytes(c.val) + bytes(c.test) == want
    assert 'decompressed 12 .gz files + 1 .bz2 file + 1 .xz file into' in c.describe(), c.describe()
    assert Path(c.meta['status'].split(' into ')[1]).parent == tmp_path / 'data' / 'corpora'
    again = load_corpus(docs, data_dir=tmp_path / 'data')
    assert again.meta['cached'] and bytes(again.val) == bytes(c.val)
    with gzip.open(docs / 'doc00' / 'changelog.gz', 'wb') as f: f.write(b'changed\n')   # a file changed: rebuilt
    assert not load_corpus(docs, data_dir=tmp_path / 'data').meta['cached']
    one = load_corpus(docs / 'notes.txt.bz2', data_dir=tmp_path / 'data')  # a single compressed file
    assert bytes(one.train) + bytes(one.val) + bytes(one.test) == TEXTS['notes.txt.bz2']
    assert 'decompressed 1 .bz2 file into' in one.describe()


def test_train_on_a_compressed_directory_says_so(tmp_path):
    _write_tree(tmp_path / 'docs', {k: v * 4 for k, v in TEXTS.items()})
    rc, out = _run(['agiformer_train', '--preset', 'tiny', '--data', 'docs', '--steps', '1', '--seq_len', '64',
                    '--val_windows', '2', '--val_window', '256', '--device', 'cpu', '--out', 'run'], tmp_path, 'log')
    assert rc == 0, out[-3000:]
    data_line = next(l for l in out.splitlines() if l.startswith('[*] Data: '))
    assert '(15 files), decompressed 12 .gz files + 1 .bz2 file + 1 .xz file into' in data_line, data_line


def test_archives_and_damaged_files_are_refused(tmp_path):
    docs = _write_tree(tmp_path / 'docs', TEXTS)
    with zipfile.ZipFile(docs / 'more.zip', 'w') as z: z.writestr('a.txt', 'zipped')
    with pytest.raises(ValueError, match=r'more\.zip is a \.zip archive.*Extract it \(unzip more\.zip -d DIR\)'):
        load_corpus(docs, data_dir=tmp_path / 'data')
    for name, how in [('x.tar', 'tar -xf x.tar'), ('x.tar.gz', 'tar -xf x.tar.gz'), ('x.tgz', 'tar -xf x.tgz')]:
        (tmp_path / name).write_bytes(b'archive')
        with pytest.raises(ValueError, match=re.escape(how)): load_corpus(tmp_path / name, data_dir=tmp_path / 'data')
    (tmp_path / 'cut.gz').write_bytes(gzip.compress(b'text ' * 1000)[:-20])          # truncated
    with pytest.raises(ValueError, match=r'cut\.gz cannot be decompressed as \.gz \(EOFError'):
        load_corpus(tmp_path / 'cut.gz', data_dir=tmp_path / 'data')
    assert not list((tmp_path / 'data' / 'corpora').glob('cut*.bin'))               # nothing half-written is left
    (tmp_path / 'fake.xz').write_bytes(b'plain text, not xz')
    with pytest.raises(ValueError, match=r'fake\.xz cannot be decompressed as \.xz'):
        load_corpus(tmp_path / 'fake.xz', data_dir=tmp_path / 'data')


def test_enwik8_zip_by_path_is_the_enwik8_download(tmp_path):
    "The one zip that is read: enwik8.zip (member verified, extracted into the data directory, nothing written beside the zip)."
    mini = b'<page><title>A</title><text>stub</text></page>\n' * 2000
    (tmp_path / 'dl').mkdir()
    with zipfile.ZipFile(tmp_path / 'dl' / 'enwik8.zip', 'w') as z: z.writestr('enwik8', mini)
    c = load_corpus(tmp_path / 'dl' / 'enwik8.zip', url='http://127.0.0.1:9/enwik8.zip', archive=Expected(),
                    member=Expected(len(mini), sha256=hashlib.sha256(mini).hexdigest()), progress=False,
                    data_dir=tmp_path / 'data')
    assert c.name == 'enwik8' and bytes(c.train) + bytes(c.val) + bytes(c.test) == mini
    assert (tmp_path / 'data' / 'enwik8').read_bytes() == mini and [p.name for p in (tmp_path / 'dl').iterdir()] == ['enwik8.zip']
