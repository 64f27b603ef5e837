import json
import os
import shutil
import subprocess
import sys

import pytest

from pyg_recs.engine import Trainer
from pyg_recs.nn.models import SRGNN


def test_shards_cover_every_batch_once():
    trainer = Trainer(SRGNN(5, 4), progress=False)
    batches = list(range(11))
    seen = []
    for rank in range(3):
        trainer.world_size, trainer.rank = 3, rank
        seen += list(trainer._shard(batches))
    assert sorted(seen) == batches


def run_cli(args, env=None):
    out = subprocess.run(args, capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_two_process_gloo_training_matches_one_process(sample_root,
                                                       tmp_path):
    common = [
        'train', 'srgnn', '--dataset', 'srgnn-format', '--root',
        sample_root, '--epochs', '3', '--hidden', '16', '--lr', '0.01',
        '--no-progress', '--seed', '3'
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    # --batch-size is per process: 2 x 25 takes the steps of 1 x 50.
    run_cli([sys.executable, '-m', 'pyg_recs'] + common + [
        '--batch-size', '50', '--out', str(tmp_path / 'one'), '--json', str(tmp_path / 'one.json')
    ], env)
    run_cli([
        sys.executable, '-m', 'torch.distributed.run', '--standalone',
        '--nproc_per_node=2', '-m', 'pyg_recs'
    ] + common + [
        '--batch-size', '25', '--out', str(tmp_path / 'two'), '--json', str(tmp_path / 'two.json')
    ], env)
    with open(tmp_path / 'one.json') as f:
        one = json.load(f)
    with open(tmp_path / 'two.json') as f:
        two = json.load(f)
    assert one['hparams']['world_size'] == 1
    assert two['hparams']['world_size'] == 2
    # Every rank saw half the batches of an epoch; losses and metrics are
    # reduced over ranks and stay close to the single-process run.
    for a, b in zip(one['train_losses'], two['train_losses']):
        assert abs(a - b) < 0.15 * a
    assert abs(one['HR@20'] - two['HR@20']) < 0.1
    assert os.path.exists(tmp_path / 'two' / 'best.pt')
