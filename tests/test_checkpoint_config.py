"""A saved model's config, as users meet it on the command line: the safetensors header is the one source of truth,
a `config.json` beside it that says otherwise (or is not JSON, or holds an unknown key) is refused naming the file,
architecture overrides are for original .pth files only, and a pickle is refused without torch's advice to unpickle it.
Each refusal is one line on stderr, `COMMAND: error: ...`, exit status 2, no traceback."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from agiformer.checkpoint import load_model, read_safetensors
from agiformer.core import AGIConfig

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / 'nbs' / 'models' / 'pystdlib-mini'          # a small trained checkpoint: header config + config.json
BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if k not in ('HF_TOKEN', 'HF_ENDPOINT', 'AGIFORMER_DEBUG')}
    e.update(HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf_home'), AGIFORMER_DATA=str(tmp_path / 'data'),
             HF_HUB_DISABLE_TELEMETRY='1', PYTHONWARNINGS='ignore', TMPDIR=str(tmp_path))
    return e


@pytest.fixture
def mini(tmp_path):
    "A copy of the book's model, free to edit."
    shutil.copytree(BOOK, tmp_path / 'mini')
    return tmp_path / 'mini'


def error_line(argv, env, cwd) -> str:
    "Run a console command; check it failed as a user error should and return its one stderr line."
    r = subprocess.run([str(BIN / argv[0]), *map(str, argv[1:])], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    assert 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 2, f"exit status {r.returncode}; stderr:\n{r.stderr[-3000:]}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith(f"{argv[0]}: error: "), lines[0]
    return lines[0]


def generate(ckpt, *more): return ['agiformer_generate', '--checkpoint', ckpt, '--prompt', 'def f(', '--max_bytes', 4,
                                   '--temperature', 0, '--device', 'cpu', *more]


def rewrite_header(path: Path, config: str):
    "Re-save a safetensors file with other config text in its header (what an edit by another tool would do)."
    sd, meta = load_file(str(path)), read_safetensors(path)[1]
    save_file(sd, str(path), metadata={**meta, 'config': config})


def test_saved_models_in_the_repo_still_load():
    m = load_model(BOOK)
    assert m.config == AGIConfig.from_json((BOOK / 'config.json').read_text())
    assert load_model(BOOK, thinking_steps=1, positions='cap', dropout=0.0, attn_impl='reference').config == \
        m.config.replace(thinking_steps=1, positions='cap', attn_impl='reference')
    assert load_model(BOOK, window_size=64, num_heads=4).config == m.config      # the stored values: no change
    g = load_model(ROOT / 'tests' / 'data' / 'seed_tiny.safetensors', prefix='model.')   # a partial header config
    assert (g.config.d_model, g.config.window_size, g.config.num_heads) == (64, 8, 4)


# 1. an architecture override of a checkpoint that stores its config
@pytest.mark.parametrize('cmd', ['agiformer_generate', 'agiformer_push'])
def test_architecture_override_of_a_stored_config_is_refused(cmd, mini, env, tmp_path):
    argv = generate(mini, '--window_size', 1) if cmd == 'agiformer_generate' else \
        ['agiformer_push', mini, 'me/x', '--window_size', 1, '--dry_run', '--no_test']
    line = error_line(argv, env, tmp_path)
    assert 'window_size=1 (stored: 64)' in line and str(mini / 'model.safetensors') in line, line
    assert 'for original .pth files' in line, line


def test_architecture_override_of_a_pth_is_still_taken(tmp_path, env):
    torch.save(load_model(BOOK).state_dict(), tmp_path / 'book.pth')
    r = subprocess.run([str(BIN / 'agiformer_generate'), *map(str, generate(tmp_path / 'book.pth', '--num_heads', 4,
                        '--window_size', 64)[1:])], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


# 2. one source of truth: the header; config.json beside it must agree; bad JSON and unknown keys name the file
def _edit_json(mini, **change):
    d = json.loads((mini / 'config.json').read_text()); d.update(change)
    (mini / 'config.json').write_text(json.dumps(d))


@pytest.mark.parametrize('edit,says', [
    (lambda m: _edit_json(m, window_size=1), ['config.json disagrees with the config stored in', 'model.safetensors',
                                              'window_size: 1 in config.json, 64 in the header', 'delete']),
    (lambda m: _edit_json(m, d_model=-3), ['d_model: -3 in config.json, 128 in the header']),     # invalid, not ignored
    (lambda m: (m / 'config.json').write_text('{"d_model": 128,'), ['config.json is not valid JSON', 'line 1']),
    (lambda m: _edit_json(m, colour='red'), ["config.json has unknown config keys ['colour']"]),
    (lambda m: rewrite_header(m / 'model.safetensors', '{"d_model": 128'),
     ['the config in the header of', 'model.safetensors is not valid JSON']),
    (lambda m: rewrite_header(m / 'model.safetensors', json.dumps({'d_model': 128, 'windw_size': 64})),
     ['the config in the header of', "model.safetensors has unknown config keys ['windw_size']"]),
], ids=['differs', 'invalid-value', 'json-bad-json', 'json-unknown-key', 'header-bad-json', 'header-unknown-key'])
def test_config_json_and_header_are_checked(edit, says, mini, env, tmp_path):
    edit(mini)
    line = error_line(generate(mini), env, tmp_path)
    assert str(mini) in line, line
    for s in says: assert s in line, (s, line)


def test_config_json_deleted_or_restored_loads_again(mini):
    _edit_json(mini, window_size=1)
    (mini / 'config.json').unlink()
    assert load_model(mini).config.window_size == 64
    shutil.copy(BOOK / 'config.json', mini / 'config.json')
    assert load_model(mini).config == load_model(BOOK).config


# 3. a pickle: say what was found and the safe way out, never "re-run torch.load with weights_only=False"
class Evil:
    def __init__(self, path): self.path = path
    def __reduce__(self): return (os.system, (f'touch {self.path}',))


def test_pickle_refusal_gives_no_unsafe_advice(tmp_path, env):
    torch.save({'encoder.byte_embedding.weight': torch.zeros(2), 'payload': Evil(tmp_path / 'pwned')}, tmp_path / 'evil.pth')
    line = error_line(generate(tmp_path / 'evil.pth'), env, tmp_path)
    assert not (tmp_path / 'pwned').exists()
    assert 'evil.pth holds a pickled object of posix.system' in line and 'will not run pickled code' in line, line
    assert '.safetensors' in line and 'torch.save(model.state_dict(), PATH)' in line, line
    for unsafe in ('weights_only', 'Re-running', 'trust', 'add_safe_globals'): assert unsafe not in line, (unsafe, line)
