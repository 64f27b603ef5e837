import math

import pytest
import torch

from pyg_recs.datasets import SessionDataset
from pyg_recs.engine import Trainer, run, seed_everything
from pyg_recs.loader import SessionLoader
from pyg_recs.nn.models import SRGNN


def test_invalid_precision_and_compile_mode():
    model = SRGNN(10, 8)
    with pytest.raises(ValueError, match="Invalid 'precision' \\(got 'fp16'"):
        Trainer(model, precision='fp16')
    with pytest.raises(ValueError, match="Invalid 'compile_mode'"):
        Trainer(model, compile=True, compile_mode='fast')
    trainer = Trainer(model, progress=False)
    assert trainer.hparams['precision'] == 'fp32'
    assert trainer.hparams['compile_mode'] is None
    # Without compile, a compile mode is not recorded:
    trainer = Trainer(model, compile_mode='reduce-overhead', progress=False)
    assert trainer.hparams['compile_mode'] is None


def test_bf16_autocast_keeps_loss_and_optimiser_in_fp32(sample_root):
    train = SessionDataset(sample_root, 'train')
    batch = next(iter(SessionLoader(train, 100, pad=True)))
    losses = {}
    for precision in ('fp32', 'bf16'):
        seed_everything(0)
        model = SRGNN(train.num_items, hidden_channels=32)
        trainer = Trainer(model, precision=precision, progress=False)
        assert trainer.hparams['precision'] == precision
        with trainer.autocast():
            scores = model.batch_scores(batch)
            loss = model.batch_loss(batch)
        expected = torch.bfloat16 if precision == 'bf16' else torch.float32
        assert scores.dtype == expected
        assert loss.dtype == torch.float32
        losses[precision] = float(loss)
        loss.backward()
        trainer.optimizer.step()
        for param in model.parameters():
            assert param.dtype == param.grad.dtype == torch.float32
        for state in trainer.optimizer.state.values():
            assert state['exp_avg'].dtype == torch.float32
            assert state['exp_avg_sq'].dtype == torch.float32
    # bf16 rounds the scores (8 bits of mantissa): close, not equal.
    assert losses['bf16'] != losses['fp32']
    assert losses['bf16'] == pytest.approx(losses['fp32'], rel=1e-2)


def test_bf16_training_and_evaluation(sample_root):
    train = SessionDataset(sample_root, 'train')
    test = SessionDataset(sample_root, 'test')
    seed_everything(0)
    model = SRGNN(train.num_items, hidden_channels=32)
    trainer = Trainer(model, precision='bf16', epochs=2, lr=0.01, lr_step=0,
                      progress=False)
    history = trainer.fit(SessionLoader(train, 50, shuffle=True, pad=True),
                          SessionLoader(test, 40, pad=True))
    assert len(history) == 2
    assert history[1]['loss'] < history[0]['loss']
    assert all(math.isfinite(h['loss']) for h in history)
    valid = history[1]['valid']
    assert 0 < valid['HR@20'] <= 1
    # Evaluation with padding equals evaluation without it, in bf16 too:
    plain = trainer.evaluate(SessionLoader(test, 40))
    for key in ('HR@20', 'MRR@20', 'NDCG@10'):
        assert plain[key] == pytest.approx(
            trainer.evaluate(SessionLoader(test, 40, pad=True))[key],
            abs=1e-6)


def test_run_records_precision_and_pad(sample_root):
    record = run('srgnn', dict(dataset='srgnn-format', root=sample_root,
                               hidden=16, pad=True, max_train=200),
                 epochs=1, progress=False, precision='bf16')
    assert record['hparams']['precision'] == 'bf16'
    assert record['settings']['pad'] is True
    assert record['hparams']['compile_mode'] is None  # Not compiled.
    assert 0 <= record['HR@20'] <= 1


@pytest.mark.slow
def test_reduce_overhead_compile_with_padded_batches(sample_root):
    # On a CPU, torch.compile skips the CUDA graphs of 'reduce-overhead'
    # but compiles the same static-shape graphs.
    train = SessionDataset(sample_root, 'train')
    torch._dynamo.reset()
    seed_everything(0)
    model = SRGNN(train.num_items, hidden_channels=16)
    trainer = Trainer(model, compile=True, compile_mode='reduce-overhead',
                      precision='bf16', epochs=1, progress=False)
    assert trainer.hparams['compile_mode'] == 'reduce-overhead'
    loader = SessionLoader(train, 100, indices=torch.arange(400), pad=True)
    out = trainer.train_epoch(loader)
    assert math.isfinite(out['loss'])
