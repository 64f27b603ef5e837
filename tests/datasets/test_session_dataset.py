import os.path as osp

import pytest
import torch

from pyg_recs.datasets import SessionDataset


def _key(data):
    return tuple((k, tuple(v.reshape(-1).tolist()))
                 for k, v in sorted(data.to_dict().items()))


def test_random_validation_split(sample_root):
    last = {s: SessionDataset(sample_root, s) for s in ('train', 'valid')}
    rand = {s: SessionDataset(sample_root, s, val_split='random')
            for s in ('train', 'valid', 'test')}
    assert rand['train'].processed_dir == osp.join(
        sample_root, 'processed_val0.1_random')
    assert rand['train'].processed_dir != last['train'].processed_dir
    # The same examples, split into parts of the same sizes:
    for split in ('train', 'valid'):
        assert len(rand[split]) == len(last[split])
    every = sorted(_key(d) for s in last for d in last[s])
    assert sorted(_key(d) for s in ('train', 'valid')
                  for d in rand[s]) == every
    # ... but validation is a random share, not the most recent one:
    recent = {_key(d) for d in last['valid']}
    shared = sum(_key(d) in recent for d in rand['valid'])
    assert shared < len(rand['valid']) // 2
    # The test split and the item vocabulary do not change:
    test = SessionDataset(sample_root, 'test')
    assert [_key(d) for d in rand['test']] == [_key(d) for d in test]
    assert torch.equal(rand['train'].item_ids, last['train'].item_ids)
    # The draw is fixed (seed 0):
    again = SessionDataset(sample_root, 'valid', val_split='random',
                           force_reload=True)
    assert [_key(d) for d in again] == [_key(d) for d in rand['valid']]


def test_invalid_validation_split(sample_root):
    with pytest.raises(ValueError, match="Invalid 'val_split'"):
        SessionDataset(sample_root, val_split='first')
