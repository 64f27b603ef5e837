import os
import os.path as osp

import numpy as np
import pytest
import torch

from pyg_recs.data import safe_load
from pyg_recs.datasets.diginetica import Diginetica
from tests.conftest import link_raw, shared_path

SAMPLE = 'sample_train-item-views.csv'


@pytest.fixture
def sample_root(tmp_path):
    src = shared_path('srgnn-sample', SAMPLE)
    return link_raw([src], str(tmp_path / 'diginetica'))


def test_sample(sample_root):
    train = Diginetica(sample_root, raw_file_name=SAMPLE)
    valid = Diginetica(sample_root, split='valid', raw_file_name=SAMPLE)
    test = Diginetica(sample_root, split='test', raw_file_name=SAMPLE)
    assert (len(train), len(valid), len(test)) == (1085, 120, 99)
    assert train.num_items == valid.num_items == test.num_items == 309
    assert str(test) == 'Diginetica(99, split=test, num_items=309)'
    assert osp.basename(train.processed_dir) == (
        'processed_sample_train-item-views_val0.1')

    # The graphs hold the reference examples, item i stored as i - 1:
    ref = osp.join(osp.dirname(shared_path('srgnn-sample', SAMPLE)),
                   'srgnn-format')
    ref_train = safe_load(osp.join(ref, 'train.txt'))
    ref_test = safe_load(osp.join(ref, 'test.txt'))
    assert train.item_ids.tolist() == list(range(1, 310))
    y = torch.cat([train._data.y, valid._data.y])
    assert y.tolist() == [t - 1 for t in ref_train[1]]
    assert test._data.y.tolist() == [t - 1 for t in ref_test[1]]
    for i in [0, 1, 50, 98]:
        data, session = test[i], ref_test[0][i]
        assert data.x[data.click_index].tolist() == [v - 1 for v in session]


def test_other_val_ratio_and_reload(sample_root):
    ds = Diginetica(sample_root, val_ratio=0.2, raw_file_name=SAMPLE)
    assert len(ds) == 1205 - 241
    stats = osp.join(ds.processed_dir, 'stats.json')
    assert osp.exists(stats)
    mtime = os.stat(ds.processed_paths[0]).st_mtime_ns
    again = Diginetica(sample_root, val_ratio=0.2, raw_file_name=SAMPLE)
    assert os.stat(again.processed_paths[0]).st_mtime_ns == mtime
    assert torch.equal(again._data.y, ds._data.y)


def test_download_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"'{SAMPLE}' is not in"):
        Diginetica(str(tmp_path), raw_file_name=SAMPLE)
    with pytest.raises(ValueError, match="Invalid 'raw_file_name'"):
        Diginetica(str(tmp_path), raw_file_name='raw/x.csv')
    with pytest.raises(ValueError, match="Invalid 'split'"):
        Diginetica(str(tmp_path), split='dev')
    # A broken download (an HTML page instead of the zip) is explained:
    raw = tmp_path / 'raw'
    raw.mkdir(exist_ok=True)
    (raw / Diginetica.zip_name).write_text('<html>sign in</html>')
    with pytest.raises(RuntimeError, match='not a zip.*CIKM Cup'):
        Diginetica(str(tmp_path))
    assert not (raw / Diginetica.zip_name).exists()


def test_extract_from_zip(tmp_path):
    import zipfile
    src = shared_path('srgnn-sample', SAMPLE)
    raw = tmp_path / 'raw'
    raw.mkdir()
    with zipfile.ZipFile(raw / Diginetica.zip_name, 'w') as z:
        z.write(src, 'train-item-views.csv')
        z.writestr('products.csv', 'itemId;pricelog2;name\n')
    ds = Diginetica(str(tmp_path), split='test')
    assert len(ds) == 99 and ds.num_items == 309
    assert sorted(os.listdir(raw)) == ['train-item-views.csv']
    assert np.array_equal(ds.item_ids.numpy(), np.arange(1, 310))


@pytest.mark.download
def test_download(tmp_path):  # pragma: no cover
    ds = Diginetica(str(tmp_path), split='test')
    assert len(ds) == 60858 and ds.num_items == 43097


def test_extract_refuses_an_unsafe_zip_and_writes_nothing(tmp_path):
    # The download is extracted with safe_extract: a member pointing
    # outside the raw folder stops everything before a file is written.
    import zipfile

    from pyg_recs.data.download import UnsafeArchiveError
    raw = tmp_path / 'raw'
    raw.mkdir()
    with zipfile.ZipFile(raw / Diginetica.zip_name, 'w') as z:
        z.writestr('../evil.csv', 'x')
        z.writestr('train-item-views.csv', 'sessionId;userId;itemId\n')
    with pytest.raises(UnsafeArchiveError, match=r"\.\."):
        Diginetica(str(tmp_path))
    assert not (tmp_path / 'evil.csv').exists()
    assert not (raw / 'train-item-views.csv').exists()
    assert not (raw / '.diginetica-extract').exists()
