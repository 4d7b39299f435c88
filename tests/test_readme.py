"""The README as a reader uses it: every command in its shell blocks runs, in order, and every link resolves.

Each command of the README's ```sh blocks has a rule below: run it as written, run it with a tiny step count (or a
local corpus instead of a 100 MB download), or skip it for a stated reason. A command without a rule fails the test,
so a new README command gets one. The commands run in a copy of this working tree, in the environment the README's
scripts set up (`.venv` through `scripts/env.sh`), so they never write into the checkout.
"""
import json, os, re, shlex, shutil, subprocess, sys
from pathlib import Path

import pytest

from _worktree import copy_worktree

ROOT = Path(__file__).resolve().parent.parent
TINY = '--steps 2 --seq_len 128 --batch_size 1 --val_every 2 --val_windows 1 --log_every 1 --device cpu'
# (pattern of the README command, what the test does: 'run', ('run', replacement) or ('skip', why))
RULES = [
    (r'bash scripts/quickstart', ('run', 'bash scripts/quickstart --steps 12 --val_every 6 --log_every 6 --val_windows 2')),
    (r'bash scripts/test', ('skip', 'the test command: this test runs inside it')),
    (r'source \.venv/bin/activate', ('skip', 'the commands here already run in that environment')),
    (r'agiformer_(generate|eval|inspect) --checkpoint runs/quickstart .*', 'run'),
    (r'pip install .*', ('skip', 'installs: the environment has them')),
    (r'agiformer_train --preset seed --data enwik8 --out runs/seed',
     ('run', f'agiformer_train --preset seed --data pystdlib --out runs/seed {TINY}')),     # enwik8: a 100 MB download
    (r'agiformer_eval --checkpoint runs/seed --data enwik8 --split test',
     ('run', 'agiformer_eval --checkpoint runs/seed --data pystdlib --split test --n_windows 2')),
    (r'agiformer_push runs/seed \S+ --dry_run', 'run'),
    (r'agiformer_push runs/seed \S+', ('skip', 'uploads to the Hugging Face Hub: needs a token and the network')),
]


def readme_commands(text: str) -> list:
    "The commands of the ```sh blocks of `text`, in order: comments dropped, continuation lines joined."
    cmds = []
    for block in re.findall(r'```sh\n(.*?)```', text, re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = re.sub(r'\s+#.*$', '', line).strip()
            if line and not line.startswith('#'): cmds.append(line)
    return cmds


def rule(cmd: str):
    for pat, what in RULES:
        if re.fullmatch(pat, cmd): return what
    raise AssertionError(f"README command without a rule in tests/test_readme.py: {cmd!r}: add one (run it, or say why not)")


def test_readme_links_resolve():
    "Relative links work from the repository root (README.md) and from nbs/ (the docs site's index)."
    link = re.compile(r'\]\((?![a-z]+:|#)([^)\s#]+)(?:#[^)]*)?\)')
    readme = (ROOT / 'README.md').read_text()
    bad = [t for t in link.findall(readme) if not (ROOT / t).exists()]
    index = '\n'.join(''.join(c['source']) for c in json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells'])
    bad += [f'nbs/{t}' for t in link.findall(index) if not (ROOT / 'nbs' / t).exists()]
    assert not bad, f"links that go nowhere: {bad}"
    assert link.findall(readme), 'the README links to its chapters'


def test_readme_commands_run(tmp_path):
    venv = Path(os.environ.get('AGIFORMER_VENV', ROOT / '.venv')).resolve()
    if not (venv / '.agiformer-installed').exists() or Path(sys.prefix).resolve() != venv:
        pytest.skip(f"run under the README's environment ({venv}, set up by scripts/env.sh): bash scripts/test does")
    cmds = readme_commands((ROOT / 'README.md').read_text())
    plan = [(c, rule(c)) for c in cmds]
    assert any(w == 'run' or w[0] == 'run' for _, w in plan)
    work = tmp_path / 'agiformer'                     # a copy of the working tree: nothing is written into the checkout
    copy_worktree(work)
    for f in ('settings.ini', 'setup.py'): os.utime(work / f, (0, 0))   # env.sh sees its install as current
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST',)}
    env.update(AGIFORMER_VENV=str(venv), AGIFORMER_DATA=str(ROOT / 'data'), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    ran = []
    for cmd, what in plan:
        if what != 'run' and what[0] == 'skip': continue
        line = cmd if what == 'run' else what[1]
        p = subprocess.run(['bash', '-c', line], cwd=work, env=env, capture_output=True, text=True, timeout=1200)
        assert p.returncode == 0, f"README command {cmd!r} (run as {line!r}) exited {p.returncode}:\n{(p.stdout + p.stderr)[-3000:]}"
        ran.append(cmd)
    assert (work / 'runs' / 'quickstart' / 'best').is_dir() and (work / 'runs' / 'seed' / 'last').is_dir()
    assert len(ran) >= 7, ran
