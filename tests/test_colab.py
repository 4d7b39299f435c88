"""Every chapter as a Colab reader runs it: its badge opens it, and its install cell alone makes it run.

The simulation: a fresh empty directory stands for Colab's /content, a module named `google.colab` is present (as
in Colab's kernel), and the book's remote is a local git repository holding this working tree on its `main` branch
(no network: `AGIFORMER_REPO` points the install cell at it). A virtual environment that sees this machine's
packages after its own (torch, nbdev, ...: Colab has its own) stands for the Colab runtime, a fresh one per chapter: the install cell installs the
package into it from the clone. The chapter then runs under nbdev's test runner, from the fresh directory, exactly
as `nbdev_test` runs it (IN_TEST set, slow, gpu and download cells skipped), and must import `agiformer` from what
its install cell installed, not from this checkout.
"""
import json, os, re, shutil, subprocess, sys, sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from _worktree import copy_worktree

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p.name for p in (ROOT / 'nbs').glob('[0-9]*.ipynb'))
BADGE = re.compile(r'\(https://colab\.research\.google\.com/github/agiformer/agiformer/blob/main/nbs/([^)]+)\)')


def cells(name: str) -> list:
    return json.loads((ROOT / 'nbs' / name).read_text())['cells']


def install_cell(name: str) -> str:
    "The chapter's first code cell that looks for Colab."
    return next(''.join(c['source']) for c in cells(name) if c['cell_type'] == 'code' and 'google.colab' in ''.join(c['source']))


def test_every_badge_opens_its_own_chapter():
    for name in CHAPTERS:
        targets = [t for c in cells(name) if c['cell_type'] == 'markdown' for t in BADGE.findall(''.join(c['source']))]
        assert targets == [name], f"{name}: its Colab badge opens {targets}, not {name}"
    assert install_cell(CHAPTERS[0]) and all(install_cell(n) == install_cell(CHAPTERS[0]) for n in CHAPTERS), \
        "every chapter has the same install cell: copy 00_core's"


def new_runtime(venv: Path) -> Path:
    "A stand-in Colab runtime at `venv`: its python, which sees this machine's packages after its own."
    # Without its own pip and setuptools: pip comes from the machine's packages. A venv's bundled setuptools (65 on
    # Python 3.11) would shadow the machine's and fail torch's setuptools>=77, and pip would then try to replace it.
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    site = subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, check=True).stdout.strip()
    # this environment's packages, after the runtime's own (a plain path: its editable agiformer stays out of sight)
    Path(site, 'machine-packages.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    return python


@pytest.fixture(scope='module')
def colab(tmp_path_factory):
    "A git remote holding this working tree on `main`."
    remote = tmp_path_factory.mktemp('colab') / 'remote'
    copy_worktree(remote)
    git = lambda *a: subprocess.run(['git', '-C', str(remote), *a], check=True, capture_output=True)
    git('init', '-q', '-b', 'main'); git('add', '-A')
    git('-c', 'user.name=test', '-c', 'user.email=test@localhost', 'commit', '-q', '-m', 'the working tree')
    return remote


RUNNER = """
import os, sys, types
from pathlib import Path
sys.modules['google.colab'] = types.ModuleType('google.colab')       # what Colab's kernel has imported
from nbdev.test import test_nb
ok, _ = test_nb(Path(sys.argv[1]), skip_flags=['slow', 'gpu', 'download'])
import agiformer
assert Path(agiformer.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), \\
    f"the chapter ran on {agiformer.__file__}, not on the package its install cell installed into {sys.prefix}"
sys.exit(0 if ok else 1)
"""


def run_on_colab(colab, name: str, tmp: Path) -> str|None:
    "Run chapter `name` as Colab would; None if it passed, else what went wrong."
    remote = colab
    content = tmp / name.removesuffix('.ipynb')
    content.mkdir()
    python = new_runtime(tmp / f"{name.removesuffix('.ipynb')}-runtime")   # every chapter its own runtime, as on Colab
    shutil.copy(ROOT / 'nbs' / name, content / name)              # the notebook Colab opens from the badge
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'VIRTUAL_ENV', 'PYTHONPATH')}
    env.update(AGIFORMER_REPO=f'file://{remote}', AGIFORMER_DATA=str(ROOT / 'data'), PIP_DISABLE_PIP_VERSION_CHECK='1')
    p = subprocess.run([str(python), '-c', RUNNER, str(content / name)], cwd=content, env=env, capture_output=True,
                       text=True, timeout=1800)
    if p.returncode: return f"{name} failed on the simulated Colab (exit {p.returncode}):\n{(p.stdout + p.stderr)[-4000:]}"
    if not (content / 'agiformer' / 'settings.ini').exists(): return f"{name}: its install cell did not fetch the repository"
    return None


def test_every_chapter_runs_on_colab(colab, tmp_path):
    with ThreadPoolExecutor(int(os.environ.get('AGIFORMER_TEST_WORKERS', 2))) as pool:
        errors = [e for e in pool.map(lambda n: run_on_colab(colab, n, tmp_path), CHAPTERS) if e]
    assert not errors, '\n\n'.join(errors)
