import json
import os.path as osp

import pytest
import torch

from pyg_recs.datasets import SessionDataset
from pyg_recs.engine import (
    CheckpointError,
    Trainer,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
    seed_everything,
)
from pyg_recs.loader import SessionLoader
from pyg_recs.metrics import RankingMetrics
from pyg_recs.nn.models import SRGNN


def loaders(root):
    train = SessionDataset(root, 'train')
    valid = SessionDataset(root, 'valid')
    test = SessionDataset(root, 'test')
    return (train, SessionLoader(train, 32, shuffle=True),
            SessionLoader(valid, 200), SessionLoader(test, 200))


def make_trainer(num_items, **kwargs):
    seed_everything(12345)
    model = SRGNN(num_items, hidden_channels=32)
    kwargs.setdefault('lr', 0.01)
    return Trainer(model, epochs=kwargs.pop('epochs', 4), lr_step=0,
                   progress=False, **kwargs)


def test_real_training_beats_most_popular(sample_root):
    train, train_loader, valid_loader, test_loader = loaders(sample_root)
    trainer = make_trainer(train.num_items, epochs=6)
    history = trainer.fit(train_loader, valid_loader)
    losses = [h['loss'] for h in history]
    assert losses[-1] < losses[0] * 0.8

    metrics = trainer.evaluate(test_loader)
    # Most-popular baseline: the most frequent training targets.
    counts = torch.bincount(train.y, minlength=train.num_items).float()
    baseline = RankingMetrics(['HR', 'MRR'], ks=[20])
    for batch in test_loader:
        baseline.update_from_scores(counts.expand(batch.num_graphs, -1),
                                    batch.y)
    pop = baseline.compute()
    assert metrics['HR@20'] > pop['HR@20']
    assert metrics['MRR@20'] > pop['MRR@20']


def test_checkpoints_and_resume_equal_uninterrupted(sample_root, tmp_path):
    train, train_loader, valid_loader, _ = loaders(sample_root)

    full = make_trainer(train.num_items, epochs=3,
                        out_dir=str(tmp_path / 'full'))
    full.fit(train_loader, valid_loader)

    part = make_trainer(train.num_items, epochs=2,
                        out_dir=str(tmp_path / 'part'))
    part.fit(train_loader, valid_loader)
    torch.manual_seed(999)  # Disturb the global RNG: resume must restore it.
    resumed = make_trainer(train.num_items, epochs=3,
                           out_dir=str(tmp_path / 'part'))
    resumed.fit(train_loader, valid_loader, resume=True)

    assert [h['loss'] for h in resumed.history] == \
        [h['loss'] for h in full.history]
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)

    state = load_checkpoint(str(tmp_path / 'part' / 'last.pt'))
    assert state['epoch'] == 3
    with open(tmp_path / 'part' / 'last.pt.json') as f:
        assert json.load(f)['epoch'] == 3
    best = load_model_state(str(tmp_path / 'part' / 'best.pt'))
    assert set(best) == set(resumed.model.state_dict())
    assert not osp.exists(tmp_path / 'part' / '.lock')


def test_ktup_resume_continues_the_kg_stream(tmp_path):
    # KTUP's KG batches run across epochs (JointLoader): the checkpoint
    # holds their position, so a resumed run ends where a straight one does.
    from pyg_recs.cli import main
    from tests.conftest import link_raw, shared_path
    src = shared_path('recbole-test-kg')
    root = link_raw([osp.join(src, f'test.{ext}')
                     for ext in ('inter', 'kg', 'link')], str(tmp_path / 'kg'))

    def train(out, epochs, *extra):
        args = ['train', 'ktup', '--dataset', 'test', '--root', root,
                '--lenient', '--epochs', str(epochs), '--hidden', '16',
                '--batch-size', '128', '--kg-batch-size', '128',
                '--use-st-gumbel', '--kg-eval-max', '0', '--no-progress',
                '--seed', '5', '--out', str(tmp_path / out), '--json',
                str(tmp_path / f'{out}.json'), *extra]
        assert main(args) == 0
        with open(tmp_path / f'{out}.json') as f:
            return json.load(f)

    with pytest.warns(UserWarning, match='line 6018'):
        straight = train('straight', 3)
    train('part', 2)
    torch.manual_seed(999)
    resumed = train('part', 3, '--resume')
    assert resumed['train_losses'] == straight['train_losses']
    assert resumed['test'] == straight['test']


def test_resume_from_another_number_of_processes_warns(tmp_path):
    # A checkpoint of a 2-process run resumed by one process: the epoch,
    # model and optimiser continue, rank 0's random states are used, and a
    # warning says that the run is not bit-exact.
    trainer = make_trainer(5, epochs=1)
    trainer.epoch = 1
    state = trainer.state_dict()
    rank0 = state['rng']  # What rank 0 writes.
    torch.manual_seed(1)
    state['rng_ranks'] = [rank0, dict(rank0, torch=torch.get_rng_state())]
    path = str(tmp_path / 'last.pt')
    save_checkpoint(path, state)

    other = make_trainer(5, epochs=1)
    with pytest.warns(UserWarning, match='written by 2 process'):
        other.load_state(path)
    assert other.epoch == 1
    assert torch.equal(torch.get_rng_state(), rank0['torch'])


def test_bad_checkpoints(tmp_path):
    path = tmp_path / 'cut.pt'
    torch.save({'model': {'w': torch.randn(100, 100)}, 'version': 1}, path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match='truncated'):
        load_checkpoint(str(path))
    foreign = tmp_path / 'foreign.pt'
    torch.save({'weights': [1, 2, 3]}, foreign)
    with pytest.raises(CheckpointError, match='not a pyg_recs checkpoint'):
        load_checkpoint(str(foreign))
    with pytest.raises(CheckpointError, match='No checkpoint'):
        load_checkpoint(str(tmp_path / 'missing.pt'))


def test_two_runs_do_not_share_a_folder(sample_root, tmp_path):
    train, train_loader, valid_loader, _ = loaders(sample_root)
    lock = tmp_path / 'run' / '.lock'
    lock.parent.mkdir()
    lock.write_text('1')  # pid 1 is alive: another run holds the folder.
    trainer = make_trainer(train.num_items, epochs=1,
                           out_dir=str(tmp_path / 'run'))
    with pytest.raises(RuntimeError, match='Another run'):
        trainer.fit(train_loader, valid_loader)
