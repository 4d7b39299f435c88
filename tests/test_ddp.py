"""DDP for real: two torchrun processes (gloo, 127.0.0.1) against one process with the same global batch."""
import json, os, subprocess, sys

import torch

from agiformer.checkpoint import load_model


# two processes; the rendezvous store listens on a port the OS picks (127.0.0.1:0) and the workers share it (a fixed
# --master_port fails with EADDRINUSE whenever another test run or program holds that port)
TORCHRUN = ['--nproc_per_node', '2', '--rdzv_backend', 'c10d', '--rdzv_endpoint', '127.0.0.1:0',
            '--local_addr', '127.0.0.1']


def _corpus(tmp_path):
    p = tmp_path / 'corpus.txt'
    p.write_bytes(b''.join(f"line {i}: the quick brown fox {i % 13}\n".encode() for i in range(4000)))
    return p


def _train_args(corpus, out, batch):
    return ['--preset', 'tiny', '--data', str(corpus), '--steps', '6', '--batch_size', str(batch), '--seq_len', '64',
            '--log_every', '1', '--val_every', '3', '--val_windows', '4', '--dropout', '0', '--lr', '3e-3',
            '--warmup_steps', '2', '--device', 'cpu', '--out', str(out), '--quiet']


def _losses(out):
    recs = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines()]
    return [r['loss'] for r in recs if r['kind'] == 'train'], [r['bpc'] for r in recs if r['kind'] == 'val']


def test_two_processes_match_one(tmp_path):
    corpus = _corpus(tmp_path)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MASTER_ADDR': '127.0.0.1'}
    one = tmp_path / 'one'
    subprocess.run([sys.executable, '-m', 'agiformer.train', *_train_args(corpus, one, 4)], check=True, env=env,
                   timeout=600)
    two = tmp_path / 'two'
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', *TORCHRUN, '-m', 'agiformer.train',
                        *_train_args(corpus, two, 2)], env=env, timeout=600, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    l1, v1 = _losses(one)
    l2, v2 = _losses(two)
    assert len(l1) == len(l2) == 6 and len(v1) == len(v2) == 2
    assert max(abs(a - b) for a, b in zip(l1, l2)) < 1e-4, (l1, l2)
    assert max(abs(a - b) for a, b in zip(v1, v2)) < 1e-4, (v1, v2)
    m1, m2 = load_model(one / 'last'), load_model(two / 'last')
    # Adam divides by sqrt(v): parameters whose gradient is pure float noise (the key bias, to which softmax is
    # blind) move by noise-sized amounts of order lr * 1e-3; what the model computes must agree much more tightly
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4), k
    x = torch.randint(0, 256, (2, 132), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(m1(x[:, :-4], x[:, 4:]), m2(x[:, :-4], x[:, 4:]), atol=1e-5)
    # only rank 0 wrote: one log line per step, no stray temporary directories
    assert (two / 'log.txt').read_text().count('Step 6: Loss') == 1
    assert sorted(p.name for p in two.iterdir()) == ['.lock', 'best', 'bpc.png', 'config.json', 'last', 'log.txt', 'metrics.jsonl']
    # and the two-process run resumes (with two processes)
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', *TORCHRUN, '-m', 'agiformer.train', '--resume',
                        '--out', str(two), '--steps', '8', '--quiet'], env=env, timeout=600, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert len(_losses(two)[0]) == 8
