"""A researcher tries two new ideas in a copy of the repository, editing the notebooks only: a System 2 option (one
AGIConfig field, its use in the reasoning chapter) and a token mixer (one cell in the attention chapter). Everything
else follows with no other edit: the command line flag, training, the saved run, checkpoints, cached generation, the
depth sweep, evaluation; and the unmodified package refuses the new run in one line."""
import json, os, shutil, subprocess, sys, textwrap
from pathlib import Path

import pytest

from _worktree import copy_worktree

ROOT = Path(__file__).resolve().parents[1]

# --- the researcher's edits, as exact text -------------------------------------------------------------------------
CORE_ANCHOR = "thinking_inject: bool = False"     # the field line the new one goes after (same indentation)
CORE_FIELD = ("thinking_step_embed: bool = False # a learned embedding of the thinking step index t, added to the "
              "normed latent of each System 2 step")
INIT_ANCHOR = "self.inject = nn.Linear(D, D) if config.thinking_inject else None"
INIT_LINE = "self.step_embed = nn.Embedding(max(config.thinking_steps, 1), D) if config.thinking_step_embed else None"
REFINE_ANCHOR = "if self.inject is not None: n = n + self.inject(z0)"
REFINE_LINE = "if self.step_embed is not None: n = n + self.step_embed.weight[min(t, self.step_embed.num_embeddings - 1)]"
MIXER_AFTER = "class LinearAttention("       # the new mixer's cell goes right after the cell defining this
CONV_CELL = '''\
#| export
import torch.nn.functional as F

@dataclass
class ConvCache:
    "The last K-1 inputs of every row, oldest first (zeros before the start); `ShortConv.step` updates it."
    buf: torch.Tensor  # (B, K-1, D)

    def clone(self) -> ConvCache: return ConvCache(self.buf.clone())

    @staticmethod
    def cat(caches: list[ConvCache]) -> ConvCache:
        "Stack the rows of several caches into one batch."
        return ConvCache(torch.cat([c.buf for c in caches]))

@register_mixer('conv')
class ShortConv(nn.Module):
    "A causal depthwise convolution over the last K patches (the current one included), then a Linear."
    K = 3
    def __init__(self, config):
        super().__init__()
        D = config.d_model
        self.weight = nn.Parameter(torch.randn(D, 1, self.K) / math.sqrt(self.K))   # (D, 1, K): one filter per channel
        self.bias = nn.Parameter(torch.zeros(D))
        self.proj = nn.Linear(D, D)

    def forward(self, x: torch.Tensor, return_cache: bool=False):
        B, N, D = x.shape
        h = F.conv1d(F.pad(x.transpose(1, 2), (self.K - 1, 0)), self.weight, self.bias, groups=D)   # (B, D, N)
        out = self.proj(h.transpose(1, 2))
        if not return_cache: return out
        return out, ConvCache(F.pad(x, (0, 0, self.K - 1, 0))[:, N:].clone())       # the last K-1 inputs

    def step(self, x: torch.Tensor, cache: ConvCache) -> torch.Tensor:
        win = torch.cat([cache.buf, x[:, None]], 1)                                  # (B, K, D), oldest first
        cache.buf = win[:, 1:].clone()
        h = (win * self.weight[:, 0].t()).sum(1) + self.bias
        return self.proj(h)
'''
EXPECTED_CHANGES = sorted(['nbs/00_core.ipynb', 'agiformer/core.py', 'nbs/03_reasoning.ipynb', 'agiformer/reasoning.py',
                           'nbs/02a_attention.ipynb', 'agiformer/attention.py', 'agiformer/_modidx.py'])


def _run(cmd, cwd, env=None, timeout=300):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

def _git(copy, *args):
    r = _run(['git', '-c', 'user.name=test', '-c', 'user.email=test@example.com', *args], copy)
    assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"
    return r.stdout

def _src(cell) -> str:
    return cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])

def _set_src(cell, s: str): cell['source'] = s.splitlines(keepends=True)

def _cell_with(nb, anchor: str, where: str) -> int:
    "The index of the one code cell whose source contains `anchor` exactly once."
    hits = [i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code' and anchor in _src(c)]
    if len(hits) != 1 or _src(nb['cells'][hits[0]]).count(anchor) != 1:
        pytest.fail(f"the anchor {anchor!r} is in {len(hits)} code cells of {where} (expected once in one cell): "
                    "update the anchors of tests/test_extending.py to the chapter's text")
    return hits[0]

def _add_line_after(nb, anchor: str, line: str, where: str):
    "Insert `line` after the line holding `anchor`, with that line's indentation."
    cell = nb['cells'][_cell_with(nb, anchor, where)]
    lines = _src(cell).split('\n')
    i = next(i for i, l in enumerate(lines) if anchor in l)
    indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i + 1, indent + line)
    _set_src(cell, '\n'.join(lines))

def _edit_nb(path: Path, edit):
    nb = json.loads(path.read_text(encoding='utf-8'))
    edit(nb)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')

def _add_conv_cell(nb):
    i = _cell_with(nb, MIXER_AFTER, 'nbs/02a_attention.ipynb')
    cell = dict(cell_type='code', execution_count=None, metadata={}, outputs=[], source=[])
    if any('id' in c for c in nb['cells']): cell['id'] = 'shortconv'
    _set_src(cell, CONV_CELL)
    nb['cells'].insert(i + 1, cell)


@pytest.fixture(scope='module')
def copy(tmp_path_factory):
    "A copy of the working tree (tracked and new unignored files), exported and committed; then the two ideas, exported."
    base = tmp_path_factory.mktemp('extending')
    copy = base / 'repo'
    copy_worktree(copy)
    export = [str(Path(sys.executable).parent / 'nbdev_export')]   # the console script of this environment
    r = _run(export, copy)                                    # the baseline: the working tree's notebooks, exported
    assert r.returncode == 0, r.stderr[-3000:]
    _git(copy, 'init', '-q'); _git(copy, 'add', '-A'); _git(copy, 'commit', '-qm', 'baseline')

    _edit_nb(copy / 'nbs/00_core.ipynb', lambda nb: _add_line_after(nb, CORE_ANCHOR, CORE_FIELD, 'nbs/00_core.ipynb'))
    def reasoning(nb):
        _add_line_after(nb, INIT_ANCHOR, INIT_LINE, 'nbs/03_reasoning.ipynb')
        _add_line_after(nb, REFINE_ANCHOR, REFINE_LINE, 'nbs/03_reasoning.ipynb')
    _edit_nb(copy / 'nbs/03_reasoning.ipynb', reasoning)
    _edit_nb(copy / 'nbs/02a_attention.ipynb', _add_conv_cell)
    r = _run(export, copy)
    assert r.returncode == 0, r.stderr[-3000:]
    return copy


@pytest.fixture(scope='module')
def env(copy):
    "The environment of a process that imports the copy's package."
    return {**os.environ, 'PYTHONPATH': str(copy), 'PYTHONDONTWRITEBYTECODE': '1'}


@pytest.fixture(scope='module')
def corpus(copy):
    "A small byte file: the package's own source, about 300 KB (every split holds a few windows)."
    p = copy.parent / 'corpus.txt'
    p.write_bytes(b''.join(f.read_bytes() for f in sorted((ROOT / 'agiformer').glob('*.py'))))
    assert p.stat().st_size > 200_000
    return p


@pytest.fixture(scope='module')
def run(copy, env, corpus):
    "A tiny run of the new model, trained from the command line with the new options."
    out = copy.parent / 'run'
    r = _run([sys.executable, '-m', 'agiformer.train', '--preset', 'tiny', '--data', str(corpus), '--steps', '6',
              '--batch_size', '2', '--seq_len', '64', '--val_every', '3', '--val_windows', '2', '--device', 'cpu',
              '--out', str(out), '--quiet', '--thinking_step_embed', '--mixers', 'window,linear,conv'],
             copy.parent, env)
    assert r.returncode == 0, f"training with the new options failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return out


def test_the_change_is_the_chapters_only(copy):
    "Only the field's chapter, the component's chapter, the mixer's chapter and what nbdev exports from them change."
    changed = sorted(l[3:] for l in _git(copy, 'status', '--porcelain').splitlines())
    assert changed == EXPECTED_CHANGES, _git(copy, 'diff', '--stat')
    core = (copy / 'agiformer/core.py').read_text()
    assert 'thinking_step_embed: bool = False' in core
    assert 'self.step_embed' in (copy / 'agiformer/reasoning.py').read_text()
    attention = (copy / 'agiformer/attention.py').read_text()
    assert "@register_mixer('conv')" in attention and "'ShortConv'" in attention and "'ConvCache'" in attention


def test_the_command_line_has_the_new_flag(copy, env):
    "agiformer_train gets --thinking_step_embed from the field, its help from the field's comment."
    r = _run([sys.executable, '-m', 'agiformer.train', '--help'], copy.parent, env)
    assert r.returncode == 0, r.stderr[-3000:]
    text = ' '.join(r.stdout.split())
    assert '--thinking_step_embed [BOOL]' in text and 'a learned embedding of the thinking step index t' in text, text


def test_the_run_records_the_new_options(run):
    m = json.loads((run / 'config.json').read_text())['model']
    assert m['thinking_step_embed'] is True and m['mixers'] == 'window,linear,conv', m


CHECKS = r'''
import json, sys
from pathlib import Path
import torch
import agiformer
from agiformer.core import bytes_to_tensor
from agiformer.checkpoint import load_model, save_model
from agiformer.data import load_corpus
from agiformer.generate import generate, recompute_generate
from agiformer.inspect import depth_sweep
from agiformer.evaluate import evaluate_bpc

run, corpus, tmp = sys.argv[1:4]
res = dict(package=agiformer.__file__)
model = load_model(run).eval()
T = model.config.thinking_steps
res['T'] = T
res['step_embed'] = getattr(model.reasoning, 'step_embed', None) is not None
res['conv_in_every_block'] = all(any(type(m).__name__ == 'ShortConv' for m in blk.modules()) for blk in model.layers)

save_model(model, Path(tmp) / 'again.safetensors')
again = load_model(Path(tmp) / 'again.safetensors').eval()
val = load_corpus(corpus).split('val')
seq = torch.tensor(val[:2 * 68].astype('int64')).view(2, 68)
with torch.no_grad(): a, b = model(seq[:, :-4], seq[:, 4:]), again(seq[:, :-4], seq[:, 4:])
res['reload_bit_exact'] = bool(torch.equal(a, b))

p1, p2 = bytes(val[100:137]), bytes(val[500:508])
res['generate'] = [generate(model, p, 64) == recompute_generate(model, p, 64) for p in (p1, p2)]
res['generate_batch'] = generate(model, [p1, p2], 64) == [recompute_generate(model, p, 64) for p in (p1, p2)]

window, n = 256, 4
sweep = depth_sweep(model, val, max_thinking_steps=T + 1, window=window, n_windows=n)
res['sweep'] = [sweep.at(T), sweep.at(T + 1)]
res['eval'] = [evaluate_bpc(model, val, window, n).bpc, evaluate_bpc(model, val, window, n, thinking_steps=T + 1).bpc]
print(json.dumps(res))
'''

def test_the_new_model_works_everywhere(copy, env, run, corpus, tmp_path):
    "Checkpoints, cached generation (also a batch of prompts of different lengths) and the depth sweep follow."
    script = tmp_path / 'checks.py'; script.write_text(CHECKS)
    r = _run([sys.executable, str(script), str(run), str(corpus), str(tmp_path)], tmp_path, env)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(res['package']).resolve().is_relative_to(copy.resolve()), res['package']   # the copy, not /work/main
    assert res['T'] == 2 and res['step_embed'] and res['conv_in_every_block'], res
    assert res['reload_bit_exact'], res
    assert res['generate'] == [True, True] and res['generate_batch'], res
    (s_T, s_T1), (e_T, e_T1) = res['sweep'], res['eval']
    assert abs(s_T - e_T) < 1e-6 and abs(s_T1 - e_T1) < 1e-6, res
    assert s_T != s_T1, res                                  # one step deeper changes the result


def test_evaluate_the_new_run(copy, env, run, corpus):
    r = _run([sys.executable, '-m', 'agiformer.evaluate', '--checkpoint', str(run), '--data', str(corpus),
              '--window', '256', '--n_windows', '2', '--device', 'cpu', '--quiet'], copy.parent, env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out['thinking_steps'] == 2 and out['bpc'] > 0, out


def test_the_unmodified_package_refuses_the_run_in_one_line(copy, run, corpus):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    r = _run([sys.executable, '-m', 'agiformer.evaluate', '--checkpoint', str(run), '--data', str(corpus),
              '--window', '256', '--n_windows', '2', '--device', 'cpu', '--quiet'], copy.parent, env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith('agiformer_eval: error: ') and 'thinking_step_embed' in lines[0], lines[0]
