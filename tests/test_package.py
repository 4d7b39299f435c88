"""Package-level checks that a notebook cannot express: the installed package, its metadata and its public API."""
import configparser, importlib, inspect, pkgutil
from pathlib import Path

import agiformer

ROOT = Path(__file__).resolve().parent.parent


def test_version_matches_settings():
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    assert agiformer.__version__ == cfg['DEFAULT']['version']


def test_every_module_imports():
    names = [m.name for m in pkgutil.iter_modules(agiformer.__path__) if not m.name.startswith('_')]
    assert {'core', 'encoder', 'attention', 'reasoning', 'head', 'model', 'checkpoint'} <= set(names)
    for n in names: importlib.import_module(f'agiformer.{n}')


def test_original_constructor_signature():
    from agiformer.model import AGIFORMER
    params = inspect.signature(AGIFORMER.__init__).parameters
    want = dict(d_model=512, n_layers=6, num_heads=8, patch_size=4, window_size=128, vocab_size=256, dropout=0.1,
                thinking_steps=3)
    assert {k: params[k].default for k in want} == want
    assert list(params)[1:9] == list(want)           # positional order of the original


def test_every_notebook_module_has_a_notebook():
    mods = {p.stem for p in (ROOT / 'agiformer').glob('*.py') if not p.stem.startswith('_')}
    nbs = {p.stem.split('_', 1)[1] for p in (ROOT / 'nbs').glob('[0-9]*_*.ipynb')}
    assert mods <= nbs, f"modules without a notebook: {mods - nbs}"
