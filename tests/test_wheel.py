"""The package as a user gets it: `pip wheel . --no-deps` built from a copy of the source (so no stale build/ folder and
nothing written into the working tree), its contents and metadata, then the wheel installed into a fresh venv and
imported from there. Offline: no build isolation, no index; the venv reuses this environment's installed dependencies
through a .pth file added after the install (pip never sees them, so it never touches the editable install). ~20 s.
"""
import configparser, json, shutil, subprocess, sys, sysconfig, zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CFG = configparser.ConfigParser(delimiters=['=']); CFG.read(ROOT / 'settings.ini')
CFG = CFG['DEFAULT']
SCRIPTS = ['agiformer_train', 'agiformer_eval', 'agiformer_generate', 'agiformer_inspect', 'agiformer_push']
SOURCES = ['setup.py', 'settings.ini', 'README.md', 'LICENSE', 'MANIFEST.in', 'pyproject.toml', 'setup.cfg']


def _run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    "The wheel `pip wheel . --no-deps` builds from the files a checkout has."
    d = tmp_path_factory.mktemp('wheel')
    src = d / 'src'; src.mkdir()
    for f in SOURCES:
        if (ROOT / f).exists(): shutil.copy(ROOT / f, src)
    shutil.copytree(ROOT / 'agiformer', src / 'agiformer', ignore=shutil.ignore_patterns('__pycache__'))
    _run([sys.executable, '-m', 'pip', 'wheel', '.', '--no-deps', '--no-build-isolation', '--no-index', '-q',
          '-w', str(d / 'dist')], cwd=src)
    whls = list((d / 'dist').glob('agiformer-*.whl'))
    assert len(whls) == 1, whls
    return whls[0]


def _dist_info(z: zipfile.ZipFile, name: str) -> str:
    return z.read(next(n for n in z.namelist() if n.endswith(f'.dist-info/{name}'))).decode()


def test_wheel_holds_every_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    mods = {f'agiformer/{p.name}' for p in (ROOT / 'agiformer').glob('*.py')}
    assert {'agiformer/__init__.py', 'agiformer/_modidx.py'} <= mods
    assert not mods - names, f"modules missing from the wheel: {sorted(mods - names)}"


def test_wheel_declares_console_scripts(wheel):
    ep = configparser.ConfigParser(delimiters=['=']); ep.optionxform = str
    ep.read_string(_dist_info(zipfile.ZipFile(wheel), 'entry_points.txt'))
    scripts = {k: v.strip() for k, v in ep['console_scripts'].items()}
    assert not set(SCRIPTS) - set(scripts), f"console scripts missing from the wheel: {sorted(set(SCRIPTS) - set(scripts))}"
    assert scripts == dict(s.split('=', 1) for s in CFG['console_scripts'].split())     # exactly settings.ini's
    assert ep['nbdev']['agiformer'].strip() == 'agiformer._modidx:d'                     # nbdev's doc-link index


def test_wheel_metadata_and_license(wheel):
    z = zipfile.ZipFile(wheel)
    meta = _dist_info(z, 'METADATA')
    assert f"Version: {CFG['version']}\n" in meta and 'Name: agiformer\n' in meta
    assert CFG['license'] == 'apache2'
    assert 'License: Apache Software License 2.0' in meta and 'License :: OSI Approved :: Apache Software License' in meta
    lic = (ROOT / 'LICENSE').read_text()
    assert 'Apache License' in lic and 'Version 2.0, January 2004' in lic and 'TERMS AND CONDITIONS' in lic
    assert any(n.endswith('LICENSE') and '.dist-info/' in n for n in z.namelist()), "LICENSE is not in the wheel"


CHECK = """
import json, sys
from importlib.metadata import entry_points, version
import agiformer
eps = {e.name: e for e in entry_points(group='console_scripts') if e.name.startswith('agiformer')}
print(json.dumps({'file': agiformer.__file__, 'version': agiformer.__version__, 'dist_version': version('agiformer'),
                  'scripts': {n: callable(e.load()) for n, e in eps.items()}}))
"""


def test_installed_wheel_imports(wheel, tmp_path):
    "Install into a fresh venv, then import it there: the wheel's own files, version and console scripts."
    venv = tmp_path / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', str(venv)])
    py = venv / 'bin' / 'python'
    _run([sys.executable, '-m', 'pip', '--python', str(py), 'install', '--no-deps', '--no-index', '-q', str(wheel)])
    site = Path(_run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).strip())
    (site / '_agiformer_deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')   # torch & co., read-only
    got = json.loads(_run([str(py), '-c', CHECK], cwd=tmp_path).strip().splitlines()[-1])
    assert Path(got['file']).is_relative_to(venv), f"imported {got['file']}, not the installed wheel"
    assert got['version'] == got['dist_version'] == CFG['version']
    assert all(got['scripts'].get(s) for s in SCRIPTS), got['scripts']
    for s in SCRIPTS: assert (venv / 'bin' / s).exists(), f"no {s} launcher in the venv"
    out = _run([str(venv / 'bin' / 'agiformer_eval'), '--help'], cwd=tmp_path)           # one launcher, end to end
    assert 'usage' in out.lower()
