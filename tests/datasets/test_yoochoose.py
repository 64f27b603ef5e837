import importlib.util
import os.path as osp
import random
from datetime import datetime, timedelta

import pytest
import torch

from pyg_recs.data.clicks import read_yoochoose_clicks, srgnn_preprocess
from pyg_recs.datasets.yoochoose import Yoochoose

START = datetime(2014, 4, 1)


def make_clicks(path, num_sessions=120, seed=0):
    r"""A small yoochoose-clicks.dat over five days; returns the sessions as
    :obj:`(last_click_time, items)` with every item frequent."""
    rng = random.Random(seed)
    starts = sorted(rng.uniform(0, 5 * 86400) for _ in range(num_sessions))
    lines, sessions = [], []
    for sid, start in enumerate(starts, 1):
        items = [rng.randint(1, 8) * 1000 + 214000000
                 for _ in range(rng.randint(1, 5))]
        times = [START + timedelta(seconds=start + 30.5 * k)
                 for k in range(len(items))]
        for item, t in zip(items, times):
            stamp = t.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'
            lines.append(f'{sid},{stamp},{item},{rng.choice("0S7")}')
        sessions.append((times[-1].replace(microsecond=0), items))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return sessions


@pytest.fixture
def root(tmp_path):
    raw = tmp_path / 'raw'
    raw.mkdir()
    sessions = make_clicks(str(raw / 'yoochoose-clicks.dat'))
    return str(tmp_path), sessions


def raw_targets(ds, raw_item_ids):
    r"""The raw item ids of the targets of a split."""
    return raw_item_ids[ds.item_ids[ds._data.y].numpy() - 1].tolist()


def test_protocol(root):
    root, sessions = root
    assert 300 < sum(len(items) for _, items in sessions) < 500
    sessions = [s for s in sessions if len(s[1]) > 1]
    split = max(t for t, _ in sessions) - timedelta(days=1)
    train = [s for s in sessions if s[0] < split]
    test = sorted((s for s in sessions if s[0] > split), key=lambda s: s[0])
    # No item is rare or unseen in training, so nothing else is dropped:
    counts = {}
    for _, items in sessions:
        for i in items:
            counts[i] = counts.get(i, 0) + 1
    assert min(counts.values()) >= 5
    assert {i for _, items in test for i in items} <= {
        i for _, items in train for i in items}
    num_train = sum(len(items) - 1 for _, items in train)
    expected_test = [items[n] for _, items in test
                     for n in range(len(items) - 1, 0, -1)]

    raw = srgnn_preprocess(read_yoochoose_clicks(
        osp.join(root, 'raw', 'yoochoose-clicks.dat')), 'yoochoose')
    ys = {}
    for fraction, div in [('1/4', 4), ('1/64', 64)]:
        size = num_train // div
        assert size > 0
        ds = {
            split: Yoochoose(root, fraction=fraction, split=split)
            for split in ['train', 'valid', 'test']
        }
        num_valid = int(round(size * 0.1))
        assert len(ds['train']) == size - num_valid
        assert len(ds['valid']) == num_valid
        # The sessions of the last day are the test set, for any fraction:
        assert raw_targets(ds['test'], raw.item_ids) == expected_test
        ys[fraction] = (raw_targets(ds['train'], raw.item_ids) +
                        raw_targets(ds['valid'], raw.item_ids))
        assert ys[fraction] == [
            int(raw.item_ids[t - 1]) for t in raw.train[1][-size:]
        ]
        assert osp.basename(ds['train'].processed_dir) == (
            f"processed_{fraction.replace('/', '_')}_val0.1")
        assert str(ds['test']) == (f'Yoochoose({len(expected_test)}, '
                                   f'fraction={fraction}, split=test, '
                                   f'num_items=8)')
    # 1/64 holds the most recent examples of 1/4:
    assert ys['1/4'][-len(ys['1/64']):] == ys['1/64']
    # The last training example is the first click pair of the latest
    # training session:
    latest = max(train, key=lambda s: s[0])[1]
    assert ys['1/64'][-1] == latest[1]


def test_graphs(root):
    root, _ = root
    ds = Yoochoose(root, fraction='1/4', split='test')
    data = ds[0]
    assert data.x.dim() == 1 and data.y.numel() == 1
    assert int(data.x.max()) < ds.num_items
    assert torch.all(data.click_index < data.num_nodes)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="Invalid 'fraction'.*'1/8'"):
        Yoochoose(str(tmp_path), fraction='1/8')
    with pytest.raises(ValueError, match="Invalid 'fraction'"):
        Yoochoose(str(tmp_path), fraction=0.25)


@pytest.mark.skipif(importlib.util.find_spec('py7zr') is not None,
                    reason='py7zr is installed')
def test_archive_needs_py7zr(tmp_path):
    raw = tmp_path / 'raw'
    raw.mkdir()
    (raw / 'yoochoose-data.7z').write_bytes(b"7z\xbc\xaf'\x1c")
    with pytest.raises(RuntimeError, match="'py7zr' is needed.*7z e"):
        Yoochoose(str(tmp_path))


@pytest.mark.download
def test_download(tmp_path):  # pragma: no cover
    ds = Yoochoose(str(tmp_path), fraction='1/64', split='test')
    assert len(ds) == 55898
