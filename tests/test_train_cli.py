"""The agiformer_train command as users run it: --help, Ctrl-C and resume, bad input (exit 2), a diverging run (exit 1)."""
import json, re, signal, subprocess, sys, time

import pytest


def _corpus(tmp_path):
    p = tmp_path / 'corpus.txt'
    p.write_bytes(b''.join(f"def f{i}(x): return x + {i % 9}\n".encode() for i in range(5000)))
    return p


def _cmd(*args):
    return [sys.executable, '-m', 'agiformer.train', *args]


def test_help_documents_every_option():
    out = subprocess.run(['agiformer_train', '--help'], capture_output=True, text=True, check=True).stdout
    for opt in ['--preset', '--data', '--steps', '--batch_size', '--seq_len', '--thinking_steps', '--lr', '--out',
                '--resume', '--init_from', '--device', '--compile', '--amp', '--seed']:
        assert opt in out, opt
    assert 'System 2 steps' in out


def test_ctrl_c_saves_last_and_resume_continues(tmp_path):
    corpus, out = _corpus(tmp_path), tmp_path / 'run'
    args = ['--preset', 'tiny', '--data', str(corpus), '--steps', '100000', '--seq_len', '64', '--log_every', '1',
            '--val_every', '1000000', '--val_windows', '2', '--device', 'cpu', '--out', str(out)]
    p = subprocess.Popen(_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600             # wait until a few steps are logged: the SIGINT handler is installed by then
    while not (out / 'metrics.jsonl').exists() or len((out / 'metrics.jsonl').read_text().splitlines()) < 5:
        if p.poll() is not None or time.time() > deadline:     # never signal a process that may still be starting
            p.kill(); pytest.fail(f"no 5 logged steps (exit status {p.wait()}):\n{p.communicate()[0][-2000:]}")
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    stdout, _ = p.communicate(timeout=300)
    assert p.returncode == 130, stdout[-2000:]                    # 128 + SIGINT, as a shell reports a stopped command
    assert 'Interrupted' in stdout and 'Training interrupted at step' in stdout
    assert re.search(r'^agiformer_train: interrupted: stopped at step \d+; continue with: agiformer_train --resume', stdout, re.M)
    summary = stdout.splitlines()[-2]
    assert summary.startswith('Run directory:') and 'nan' not in summary and 'None' not in summary, stdout[-500:]
    state_files = sorted(x.name for x in (out / 'last').iterdir())
    assert state_files == ['config.json', 'model.safetensors', 'trainer_state.pt']
    n = len([l for l in (out / 'metrics.jsonl').read_text().splitlines()])
    r = subprocess.run(_cmd('--resume', '--out', str(out), '--steps', str(n + 3), '--quiet'), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    steps = [json.loads(l)['step'] for l in (out / 'metrics.jsonl').read_text().splitlines() if '"train"' in l]
    assert steps == list(range(1, n + 4))


def _one_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('agiformer_train: error: '), stderr[-2000:]
    return lines[0]


def test_bad_input_is_a_clear_error(tmp_path):
    r = subprocess.run(_cmd('--preset', 'huge', '--out', str(tmp_path / 'x')), capture_output=True, text=True)
    assert r.returncode == 2 and 'unknown preset' in _one_line(r.stderr)
    tiny = tmp_path / 'tiny.txt'; tiny.write_bytes(b'abc' * 10)
    r = subprocess.run(_cmd('--preset', 'tiny', '--data', str(tiny), '--out', str(tmp_path / 'y')), capture_output=True,
                       text=True)
    assert r.returncode == 2 and 'too small' in _one_line(r.stderr).lower()
    r = subprocess.run(_cmd('--resume', '--out', str(tmp_path / 'nothing')), capture_output=True, text=True)
    assert r.returncode == 2 and 'holds no run' in _one_line(r.stderr)
    r = subprocess.run(_cmd('--preset', 'tiny', '--steps', '0', '--out', str(tmp_path / 'z')), capture_output=True, text=True)
    assert r.returncode == 2 and 'TrainConfig.steps must be an integer >= 1' in _one_line(r.stderr)


def test_a_diverging_run_stops_with_one_line_and_status_2(tmp_path):
    # a learning rate of 1e30 blows the weights up after the first step; every later step is non-finite
    out = tmp_path / 'div'
    r = subprocess.run(_cmd('--preset', 'tiny', '--data', str(_corpus(tmp_path)), '--steps', '20', '--seq_len', '64',
                            '--lr', '1e30', '--warmup_steps', '0', '--max_bad_steps', '2', '--val_windows', '2',
                            '--device', 'cpu', '--quiet', '--out', str(out)), capture_output=True, text=True, timeout=300)
    line = _one_line(r.stderr)
    assert r.returncode == 2 and '2 consecutive steps had a non-finite loss' in line
    assert 'no checkpoint with finite weights was saved' in line, line
    assert not (out / 'last').exists()                           # the wrecked weights are not saved as a checkpoint


def test_model_and_system2_options_from_the_command_line(tmp_path):
    "A researcher sizes the model and its System 2 from the command line; the run records what was trained."
    corpus, out = _corpus(tmp_path), tmp_path / 'sized'
    r = subprocess.run(_cmd('--preset', 'tiny', '--data', str(corpus), '--steps', '3', '--seq_len', '64', '--val_windows', '2',
                            '--device', 'cpu', '--out', str(out), '--quiet', '--n_layers', '3', '--d_model', '48',
                            '--num_heads', '6', '--window_size', '4', '--head_hidden', '24', '--thinking_inject',
                            '--thinking_sampler', 'uniform', '--thinking_backprop', '1', '--position_offsets', '8'),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((out / 'config.json').read_text())
    m, t = cfg['model'], cfg['train']
    assert (m['n_layers'], m['d_model'], m['num_heads'], m['window_size'], m['head_hidden'], m['thinking_inject']) == (3, 48, 6, 4, 24, True)
    assert (t['thinking_sampler'], t['thinking_backprop'], t['position_offsets']) == ('uniform', 1, 8)
    assert m['context_bytes'] == 64 + 8 * 4                      # the positions the recipe trained on
