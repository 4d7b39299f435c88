"""A seeded fuzz of the five console commands, run as users run them: real subprocesses of the installed scripts.

Each case (command, seed) starts from a small working command line, adds a random subset of valid options and 0-3 invalid
ones (wrong type, out of range, a missing file, a directory where a file is expected and the reverse, contradictory
combinations, huge integers, negative numbers, nan/inf, empty strings) drawn with `random.Random('COMMAND/SEED')`, and
checks the contract of every command:

- the exit status is 0 (success) or 2 (a user error), never a traceback, never another status;
- a user error is exactly one stderr line, `COMMAND: error: ...`;
- nothing is written, changed or removed outside the run directory given with --out (agiformer_train, agiformer_inspect),
  the data cache ($AGIFORMER_DATA, or --data_dir when given) and the hub cache ($HF_HOME): not the corpus, not the shared
  trained run, not the working directory; and $TMPDIR holds nothing of ours afterwards (torch may leave its
  compiler cache folder there).

Everything lives in one temporary folder: HF_HUB_OFFLINE=1, no token, and enwik8 pointed at a closed local port, so nothing
leaves this machine. The model is the `tiny` preset on a 60 KB corpus, a few steps and windows of 64 bytes: a case takes
seconds. One seed in four draws valid options only. A run still going after TIMEOUT seconds gets SIGINT (as Ctrl-C),
then SIGKILL, and fails. A failure prints the exact command line (with its working directory and environment) and the
stderr tail; `-rA` shows every case's command line and exit status. CLI_FUZZ_SEEDS=N and CLI_FUZZ_FIRST_SEED=K run other
seeds (a longer hunt); the default is seeds 0-7 of each command, 40 cases, 2-3 minutes on two cores.
"""
import json, os, random, shlex, shutil, signal, subprocess, time
from pathlib import Path

import pytest

N_SEEDS = int(os.environ.get('CLI_FUZZ_SEEDS', 8))          # cases per command: 5 x 8 = 40 (more for a longer hunt)
FIRST_SEED = int(os.environ.get('CLI_FUZZ_FIRST_SEED', 0))
TIMEOUT = 20                      # seconds per run; a normal case takes 2-8 s on two cores
GRACE = 5                         # after the timeout: SIGINT (as Ctrl-C), this long to exit, then SIGKILL
HUGE = '100000000000000000000000'
HUB_ID = 'nobody-here/agiformer-nothing'          # offline and not cached: cannot be fetched
MISSING = 'missing/nothing.safetensors'            # relative to the case's working directory, where nothing exists
FLAG = True                                       # a store_true option: given without a value
DROP = object()                                   # remove the option from the command line
COMMANDS = ['agiformer_train', 'agiformer_eval', 'agiformer_generate', 'agiformer_inspect', 'agiformer_push']
TRAIN_SIZE = ['--preset', 'tiny', '--steps', '2', '--seq_len', '64', '--val_window', '64', '--val_windows', '2',
              '--val_every', '2', '--device', 'cpu', '--quiet']


# ------------------------------------------------------------------------------------------------------------- fixtures
def _env(home: Path) -> dict:
    "The environment of a run: caches and temporary files inside `home`, offline, no token, no debug tracebacks."
    drop = ('HF_', 'HUGGING', 'AGIFORMER_', 'TORCHINDUCTOR_', 'TRITON_')
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(HF_HUB_OFFLINE='1', HF_HUB_DISABLE_TELEMETRY='1', HF_HOME=str(home / 'hf_home'),
               AGIFORMER_DATA=str(home / 'data'), TMPDIR=str(home / 'tmp'), PYTHONWARNINGS='ignore',
               AGIFORMER_ENWIK8_URL='http://127.0.0.1:9/')        # --data enwik8 fails at once, locally
    (home / 'tmp').mkdir(parents=True, exist_ok=True)
    return env


def _corpus_bytes(n: int = 60_000) -> bytes:
    "About `n` bytes of varied lines: code, prose, numbers, some UTF-8 and tabs."
    r = random.Random(1234)
    words = ('the of and to in is was for on that with as by it from at System latent patch byte model thinking step '
             'window corpus loss gradient attention head layer').split()
    lines, size = [], 0
    while size < n:
        k = r.randrange(6)
        if k == 0: s = f"def f{r.randrange(999)}(x, y={r.randrange(9)}):\n    return x * {r.random():.3f} + y"
        elif k == 1: s = ' '.join(r.choice(words) for _ in range(r.randint(3, 16))).capitalize() + '.'
        elif k == 2: s = '\t'.join(str(r.randint(-10**6, 10**6)) for _ in range(r.randint(1, 8)))
        elif k == 3: s = f"{r.choice(['über', 'naïve', 'café', 'Δx', '東京', 'ñandú'])} = {r.random():.6e}  # {r.choice(words)}"
        elif k == 4: s = f"<item id=\"{r.randrange(10**5)}\">{' '.join(r.choices(words, k=4))}</item>"
        else: s = ''
        lines.append(s); size += len(s.encode()) + 1
    return '\n'.join(lines).encode() + b'\n'


def _run(argv, cwd, env, timeout=TIMEOUT) -> tuple[int|str, str, float]:
    "(exit status or 'timeout', stderr, seconds); on a timeout: SIGINT, then SIGKILL after GRACE seconds."
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGINT)
        try: _, err = p.communicate(timeout=GRACE); after = f"exit status {p.returncode} after SIGINT"
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL); _, err = p.communicate(); after = 'killed: SIGINT did not stop it'
        rc = f"timeout ({timeout} s; {after})"
    return rc, err.decode('utf-8', 'replace'), time.perf_counter() - t0


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "The shared folder: a corpus, a corpus directory, a prompt file, an empty directory and a tiny trained run."
    root = Path(os.path.realpath(tmp_path_factory.mktemp('cli_fuzz')))
    shared = root / 'shared'; shared.mkdir()
    corpus = shared / 'corpus.txt'; corpus.write_bytes(_corpus_bytes())
    cdir = shared / 'corpus_dir'; cdir.mkdir()
    (cdir / 'a.txt').write_bytes(_corpus_bytes(30_000)); (cdir / 'b.py').write_bytes(corpus.read_bytes()[:30_000])
    (shared / 'prompt.txt').write_bytes('def main(args):\n    "Entry point ü"\n    '.encode())
    (shared / 'empty_dir').mkdir()
    run = shared / 'run'
    fx = root / 'fixture_env'
    argv = ['agiformer_train', *TRAIN_SIZE, '--data', str(corpus), '--out', str(run)]
    rc, err, _ = _run(argv, fx, _env(fx), timeout=300)
    assert rc == 0 and (run / 'best' / 'model.safetensors').exists() and (run / 'last' / 'trainer_state.pt').exists(), \
        f"the fixture run failed (exit {rc}): {shlex.join(argv)}\n{err[-3000:]}"
    return dict(root=root, corpus=str(corpus), corpus_dir=str(cdir), notes=str(shared / 'prompt.txt'),
                empty=str(shared / 'empty_dir'), run=str(run))


# ---------------------------------------------------------------------------------------------------------- the tables
def _tables(W) -> dict:
    """For each command: `base` (the working command line), `valid` and `invalid` (name -> list of mutations; a mutation is
    a dict option -> value, FLAG or DROP, or a bare value for the option `name`)."""
    C, R, E, N, D = W['corpus'], W['run'], W['empty'], W['notes'], W['corpus_dir']
    best, sft = f"{R}/best", f"{R}/best/model.safetensors"
    bad_ckpt = [MISSING, E, C, HUB_ID, '', f"{R}/nothing", {'--checkpoint': DROP}]
    bad_device = ['cuda', 'cuda:99', 'gpu', '']
    bad_positions = ['rope', '', 'WRAP']
    unknown = {'--bogus_option': '1'}
    t = {}
    t['agiformer_train'] = dict(
        base={'--preset': 'tiny', '--data': C, '--steps': '2', '--seq_len': '64', '--val_window': '64', '--val_windows': '2',
              '--val_every': '2', '--device': 'cpu', '--quiet': FLAG},
        valid={'--steps': ['1', '3'], '--batch_size': ['1', '2', '4'], '--position_offsets': ['0', '1', '3'],
               '--positions': ['wrap', 'absolute', 'cap'], '--grad_accum': ['1', '2'], '--thinking_steps': ['0', '1', '2'],
               '--thinking_inject': [FLAG], '--thinking_sampler': ['fixed', 'uniform', 'poisson_lognormal'],
               '--thinking_backprop': ['1'], '--d_model': ['16', '48'], '--n_layers': ['1'], '--num_heads': ['2'],
               '--window_size': ['4', '16'], '--head_hidden': ['16'], '--dropout': ['0', '0.2'], '--lr': ['1e-3'],
               '--weight_decay': ['0', '0.1'], '--warmup_steps': ['0', '1', '5'], '--schedule': ['constant', 'cosine'],
               '--grad_clip': ['0', '1.0'], '--log_every': ['1', '2'], '--val_every': ['1', '3'], '--val_windows': ['1'],
               '--full_val': [FLAG, {'--full_val': FLAG, '--val_windows': DROP}], '--recipe': ['seed'],
               '--init_from': [R, best, sft], '--amp': ['fp32', 'auto'], '--seed': ['0', '7', '4294967295'],
               '--max_bad_steps': ['1'], '--progress': [FLAG], '--data': [C, D, 'pystdlib'],
               '--data_dir': ['cache2'], '--quiet': [DROP]},
        invalid={'--steps': ['0', '-1', '2.5', 'two', ''], '--batch_size': ['0', '-2', '100', HUGE],
                 '--seq_len': ['63', '0', '-64', HUGE, 'x'], '--val_window': ['62', '0', '-64', HUGE],
                 '--val_windows': ['0', '-1'], '--val_every': ['0', '-1'], '--position_offsets': ['-3', HUGE],
                 '--positions': bad_positions, '--grad_accum': ['0', '-1'], '--thinking_steps': ['-1', HUGE, '1.5'],
                 '--thinking_sampler': ['gaussian', ''], '--thinking_backprop': ['0', '-1', '99'],
                 '--d_model': ['30', '0', '-8'], '--n_layers': ['0', '-1'], '--num_heads': ['3', '0'],
                 '--window_size': ['0', '-1'], '--head_hidden': ['0', '-16'], '--dropout': ['1.5', '-0.1', 'nan'],
                 '--lr': ['nan', 'inf', '-1', '0'], '--weight_decay': ['-1', 'nan'], '--warmup_steps': ['-1'],
                 '--schedule': ['linear', ''], '--grad_clip': ['-1', 'inf', 'nan'], '--log_every': ['0'],
                 '--max_bad_steps': ['0', '-1'], '--recipe': ['foo', 't4', ''], '--preset': ['huge', '', 'TINY'],
                 '--amp': ['fp16', 'int8', ''], '--device': bad_device, '--seed': ['-1', HUGE, '4294967296', '1.5'],
                 '--init_from': [MISSING, E, C, HUB_ID, ''], '--data': [MISSING, E, '', 'enwik8', N],
                 '--data_dir': [{'--data': 'pystdlib', '--data_dir': C}, {'--data': D, '--data_dir': C}],
                 'resume+init_from': [{'--resume': FLAG, '--init_from': R}],
                 'resume+recipe': [{'--resume': FLAG, '--recipe': 'seed'}],
                 'unknown': [unknown]})
    t['agiformer_eval'] = dict(
        base={'--checkpoint': R, '--data': C, '--n_windows': '2', '--window': '64', '--device': 'cpu'},
        valid={'--split': ['val', 'test', 'train'], '--batch_size': ['1', '2', '8'], '--thinking_steps': ['0', '1', '3'],
               '--halt_threshold': ['0', '0.01', '0.5'], '--positions': ['wrap', 'absolute', 'cap'], '--quiet': [FLAG],
               '--progress': [FLAG], '--data': [C, D, 'pystdlib'], '--checkpoint': [R, best, f"{R}/last", sft],
               '--n_windows': ['1'], '--data_dir': ['cache2'],
               'protocol': [{'--protocol': FLAG, '--window': DROP, '--n_windows': DROP}]},
        invalid={'--checkpoint': bad_ckpt, '--data': [MISSING, E, '', 'enwik8', N],
                 '--split': ['dev', '', 'VAL'], '--window': ['63', '4', '0', '-64', HUGE, 'abc'],
                 '--n_windows': ['0', '-1', HUGE], '--batch_size': ['0', '-1', HUGE],
                 '--thinking_steps': ['-1', HUGE, 'x'], '--halt_threshold': ['-0.1', 'nan', 'inf', 'x'],
                 '--positions': bad_positions, '--device': bad_device,
                 '--data_dir': [{'--data': 'pystdlib', '--data_dir': C}, {'--data': D, '--data_dir': C}],
                 'protocol+window': [{'--protocol': FLAG}, {'--protocol': FLAG, '--n_windows': DROP},
                                     {'--protocol': FLAG, '--window': '1024'}],
                 'halt+T0': [{'--halt_threshold': '0.1', '--thinking_steps': '0'}],
                 'unknown': [unknown]})
    t['agiformer_generate'] = dict(
        base={'--checkpoint': R, '--prompt': 'def main(', '--max_bytes': '8', '--device': 'cpu'},
        valid={'--max_bytes': ['0', '1', '16'], '--temperature': ['0', '0.7', '2'], '--top_k': ['1', '5', '256'],
               '--top_p': ['0.5', '1'], '--seed': ['0', '42'], '--stop': ['\n', 'e'], '--thinking_steps': ['0', '1', '4'],
               '--halt_threshold': ['0.05'], '--positions': ['wrap', 'absolute', 'cap'], '--raw': [FLAG],
               '--echo': [FLAG], '--no_stream': [FLAG], '--prompt': ['hello world', 'naïve café: ', '    \n'],
               '--prompt_file': [{'--prompt': DROP, '--prompt_file': N}, {'--prompt': DROP, '--prompt_file': C}],
               '--checkpoint': [R, best, sft], '--num_heads': ['4'], '--window_size': ['8']},
        invalid={'--checkpoint': bad_ckpt, '--prompt': ['', 'hi', {'--prompt': DROP}],
                 '--prompt_file': [{'--prompt': DROP, '--prompt_file': MISSING}, {'--prompt': DROP, '--prompt_file': E},
                                   {'--prompt_file': N}, {'--prompt': DROP, '--prompt_file': ''}],
                 '--max_bytes': ['-1', 'x', '1.5'], '--temperature': ['-1', 'nan', 'inf'], '--top_k': ['0', '-3'],
                 '--top_p': ['0', '1.5', 'nan', '-0.1'], '--seed': [HUGE, '-1', 'x'], '--stop': [''],
                 '--thinking_steps': ['-1', HUGE], '--halt_threshold': ['-1', 'nan'],
                 'halt+T0': [{'--halt_threshold': '0.1', '--thinking_steps': '0'}],
                 '--positions': bad_positions, '--device': bad_device, '--num_heads': ['3', '0', '-1'],
                 '--window_size': ['0', '-1', HUGE], 'unknown': [unknown]})
    t['agiformer_inspect'] = dict(
        base={'--checkpoint': R, '--data': C, '--n_windows': '1', '--window': '64', '--device': 'cpu'},
        valid={'--split': ['val', 'test', 'train'], '--max_thinking_steps': ['2', '3', '4'],
               '--positions': ['wrap', 'absolute', 'cap'], '--position': ['10', '63'], '--checkpoint': [R, best, sft],
               '--data': [C, D], '--data_dir': ['cache2'],
               '--text': [{'--data': DROP, '--n_windows': DROP, '--window': DROP, '--text': 'hello world, hello thinking'},
                          {'--data': DROP, '--n_windows': DROP, '--window': DROP, '--text': '@' + N}]},
        invalid={'--checkpoint': bad_ckpt,
                 '--text': [{'--text': 'hello world'}, {'--data': DROP},
                            {'--data': DROP, '--n_windows': DROP, '--window': DROP, '--text': ''},
                            {'--data': DROP, '--n_windows': DROP, '--window': DROP, '--text': '@' + MISSING},
                            {'--data': DROP, '--n_windows': DROP, '--window': DROP, '--text': '@' + E},
                            {'--data': DROP, '--n_windows': DROP, '--window': DROP, '--text': 'abc'}],
                 '--data': [MISSING, E, '', 'enwik8', N], '--split': ['dev', ''], '--n_windows': ['0', '-1', HUGE],
                 '--window': ['63', '0', '-64', HUGE, 'abc'], '--max_thinking_steps': ['-1', '1', HUGE],
                 '--position': ['-1', '3', HUGE, 'x'], '--positions': bad_positions, '--device': bad_device,
                 '--data_dir': [{'--data': D, '--data_dir': C}], 'unknown': [unknown]})
    t['agiformer_push'] = dict(
        base={'<source>': R, '<repo_id>': 'me/agiformer-fuzz', '--dry_run': FLAG},
        valid={'--which': ['best', 'last'], '--private': [FLAG], '--revision': ['dev'], '--no_test': [FLAG],
               '--commit_message': ['fuzz commit'], '<source>': [R, best, sft, f"{R}/last"],
               '<repo_id>': ['someone/agiformer-tiny']},
        invalid={'<source>': [MISSING, E, C, HUB_ID, ''], '<repo_id>': ['', 'not a repo id', 'a/b/c', '/x', DROP],
                 '--which': ['foo', ''], '--num_heads': ['0', '-1', '3'], '--window_size': ['-1', HUGE],
                 'no dry run (no token)': [{'--dry_run': DROP}], 'unknown': [unknown]})
    return t


def _as_mutation(name, m) -> dict: return m if isinstance(m, dict) else {name: m}

def _apply(args: dict, m: dict):
    for k, v in m.items():
        if v is DROP: args.pop(k, None)
        else: args[k] = v


# ------------------------------------------------------------------------------------------------------- one case
def _train_out(rng, W, cwd: Path, clean: bool) -> tuple[dict, str]:
    "The case's --out (and --resume / --overwrite), prepared in `cwd`: (mutation, a description of the set-up)."
    mode = rng.choice(['new', 'new', 'empty', 'fixture', 'fixture', 'fixture']
                      + ([] if clean else ['bad-config', 'file', 'under-file', '']))
    if mode == 'new': return {'--out': rng.choice(['runs/new', str(cwd / 'new-run')])}, 'a new --out'
    if mode == 'empty':
        (cwd / 'empty-out').mkdir(); return {'--out': 'empty-out'}, '--out an existing empty directory'
    if mode in ('file', 'under-file'):
        (cwd / 'out.txt').write_text('a file, not a directory\n')
        return {'--out': 'out.txt' if mode == 'file' else 'out.txt/run'}, f"--out {mode} (out.txt is a file)"
    if mode == '': return {'--out': ''}, '--out an empty string'
    shutil.copytree(W['run'], cwd / 'run-copy')
    m = {'--out': 'run-copy'}
    if mode == 'bad-config':
        cfg = cwd / 'run-copy' / 'config.json'
        kind = rng.choice(['{}', '{"model": {}}', '[]', 'not json', 'no train', 'no model', 'empty file'])
        if kind in ('no train', 'no model'):
            d = json.loads(cfg.read_text()); d.pop(kind.split()[1]); cfg.write_text(json.dumps(d))
        else: cfg.write_text('' if kind == 'empty file' else kind)
        m['--resume'] = FLAG
        return m, f"--out a copy of the fixture run whose config.json is {kind!r}, with --resume"
    extra = rng.choice([['--resume'], ['--overwrite']] if clean else [[], ['--resume'], ['--overwrite'], ['--resume', '--overwrite']])
    for f in extra: m[f] = FLAG
    return m, f"--out a copy of the fixture run{' with ' + ' '.join(extra) if extra else ''}"


def _draw(command: str, seed: int, W, cwd: Path) -> tuple[list[str], dict, str]:
    "The case's command line, its options as a dict, and a description of the set-up."
    rng = random.Random(f"{command}/{seed}")
    clean = seed % 4 == 0          # a quarter of the cases: valid options only (which may still contradict each other)
    tab = _tables(W)[command]
    args, setup = dict(tab['base']), 'fresh working directory'
    for name, ms in tab['valid'].items():
        if rng.random() < min(0.3, (2 if clean else 5) / len(tab['valid'])): _apply(args, _as_mutation(name, rng.choice(ms)))
    if command == 'agiformer_train':
        m, setup = _train_out(rng, W, cwd, clean); _apply(args, m)
    elif command == 'agiformer_inspect':
        out = rng.choice(['ins-out', 'ins-out', str(cwd / 'ins-abs'), 'empty-out', DROP]
                         + ([] if clean else ['out.txt', 'out.txt/sub', '']))
        if out == 'empty-out': (cwd / 'empty-out').mkdir()
        if out in ('out.txt', 'out.txt/sub'): (cwd / 'out.txt').write_text('a file, not a directory\n')
        _apply(args, {'--out': out})
        setup = f"--out {'(default: inspect)' if out is DROP else repr(out)}"
    n_bad = 0 if clean else rng.choices([0, 1, 2, 3], weights=[20, 45, 27, 8])[0]
    for name in rng.sample(sorted(tab['invalid']), n_bad):
        _apply(args, _as_mutation(name, rng.choice(tab['invalid'][name])))
    pos = [args[k] for k in ('<source>', '<repo_id>') if k in args]
    opts = [k for k in args if not k.startswith('<')]
    rng.shuffle(opts)
    argv = [command, *pos]
    for k in opts: argv += [k] if args[k] is FLAG else [k, args[k]]
    return argv, args, setup


def _snapshot(root: Path) -> dict:
    "path -> ('d',) for a directory, ('f', size, mtime_ns) for a file, ('l', target) for a link: everything under root."
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if os.path.islink(p): snap[p] = ('l', os.readlink(p))
            elif n in dirnames: snap[p] = ('d',)
            else: snap[p] = ('f', st.st_size, st.st_mtime_ns)
    return snap


def _inside(p: str, top: str) -> bool: return p == top or p.startswith(top.rstrip(os.sep) + os.sep)


CASES = [(c, s) for c in COMMANDS for s in range(FIRST_SEED, FIRST_SEED + N_SEEDS)]


@pytest.mark.parametrize('command,seed', CASES, ids=[f"{c.split('_')[1]}-{s}" for c, s in CASES])
def test_cli_fuzz(command, seed, world):
    root = world['root']
    cwd = root / 'cases' / f"{command}-{seed}"
    cwd.mkdir(parents=True)
    env = _env(cwd)
    tmpdir = env['TMPDIR']
    argv, args, setup = _draw(command, seed, world, cwd)

    # where the command may write: its --out (train, inspect), the data cache (or --data_dir), the hub cache
    allowed = [env['HF_HOME'], env['AGIFORMER_DATA']]
    if command in ('agiformer_train', 'agiformer_inspect'):
        out = args.get('--out', 'inspect' if command == 'agiformer_inspect' else None)
        if out: allowed.append(os.path.normpath(os.path.join(cwd, out)))   # '' (the working directory) is no run directory
    if args.get('--data_dir'): allowed.append(os.path.normpath(os.path.join(cwd, args['--data_dir'])))

    before = _snapshot(root)
    rc, err, seconds = _run(argv, cwd, env)
    after = _snapshot(root)
    print(f"exit {rc} in {seconds:.1f} s: {shlex.join(argv)}\n{err[-500:]}")     # shown with -rA

    problems = []
    lines = err.splitlines()
    if rc not in (0, 2): problems.append(f"exit status {rc}, expected 0 (success) or 2 (a user error)")
    if 'Traceback' in err: problems.append("a traceback on stderr")
    if rc == 2:
        if len(lines) != 1: problems.append(f"{len(lines)} lines on stderr, expected exactly one")
        if not lines or not lines[0].startswith(f"{command}: error: ") or not lines[0][len(command) + 9:].strip():
            problems.append(f"stderr does not start with a non-empty '{command}: error: ...' line")
    if command == 'agiformer_push' and '--dry_run' not in args and rc == 0:
        problems.append("agiformer_push without --dry_run and without a token succeeded")

    def is_allowed(p, kind):
        if p == tmpdir or _inside(p, tmpdir): return True                     # checked on its own, below
        if any(_inside(p, a) for a in allowed): return True
        return kind == 'd' and any(_inside(a, p) for a in allowed)             # a parent made for --out (mkdir -p)
    changes = [f"added {p}" + (f" ({after[p][1]:,} bytes)" if after[p][0] == 'f' else '/')
               for p in sorted(set(after) - set(before)) if not is_allowed(p, after[p][0])]
    changes += [f"removed {p}" for p in sorted(set(before) - set(after)) if not is_allowed(p, before[p][0])]
    changes += [f"modified {p} ({before[p]} -> {after[p]})" for p in sorted(set(before) & set(after))
                if before[p] != after[p] and before[p][0] != 'd' and not is_allowed(p, before[p][0])]
    if changes:
        problems.append(f"{len(changes)} change(s) outside --out and the caches: " + '; '.join(changes[:8])
                        + (' ...' if len(changes) > 8 else ''))
    left = (sorted(n for n in os.listdir(tmpdir) if not n.startswith('torchinductor'))   # torch's own compiler cache
            if os.path.isdir(tmpdir) else ['(TMPDIR itself was removed)'])
    if left: problems.append(f"TMPDIR not empty afterwards: {left[:8]}")

    if problems:
        shown = {k: env[k] for k in ('HF_HUB_OFFLINE', 'HF_HOME', 'AGIFORMER_DATA', 'TMPDIR', 'PYTHONWARNINGS',
                                     'AGIFORMER_ENWIK8_URL')}
        repro = (f"cd {shlex.quote(str(cwd))} && env -u HF_TOKEN -u AGIFORMER_DEBUG "
                 + ' '.join(f"{k}={shlex.quote(v)}" for k, v in shown.items()) + ' ' + shlex.join(argv))
        pytest.fail(f"{command} seed {seed} ({setup}; {seconds:.1f} s):\n  - " + '\n  - '.join(problems)
                    + f"\nreproduce:\n  {repro}\nstderr (tail):\n{err[-2500:] if err.strip() else '(empty)'}", pytrace=False)
