r"""Opening a dataset folder never runs code from its files: crafted
pickles in :obj:`processed/` that would create a marker file when
unpickled with :obj:`weights_only=False` must be refused (or ignored)
without the marker appearing."""
import os.path as osp

import pytest
import torch

from pyg_recs.datasets.knowledge_graph import AtomicKGDataset
from pyg_recs.datasets.session_dataset import SessionDataset
from tests.datasets.test_knowledge_graph import INTER, KG, LINK, write_raw


class Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        # Unpickling calls open(marker, 'w'), which creates the file.
        return (open, (self.marker, 'w'))


def plant(path: str, marker: str) -> None:
    torch.save(Payload(marker), path)


def open_session(root):
    return SessionDataset(root, 'train')


def open_kg(root):
    return AtomicKGDataset(root, 'tiny', ratios=(1.0, 0.0, 0.0),
                           kg_ratios=(1.0, 0.0, 0.0))


@pytest.fixture(params=['session', 'kg'])
def opened(request, sample_root, tmp_path):
    if request.param == 'session':
        root, opener = sample_root, open_session
    else:
        root, opener = str(write_raw(tmp_path / 'kg', 'tiny', INTER, KG,
                                     LINK)), open_kg
    dataset = opener(root)  # Process once.
    return root, opener, dataset.processed_dir, tmp_path / 'marker'


@pytest.mark.parametrize('name', ['pre_transform.pt', 'pre_filter.pt'])
def test_pre_processing_files_are_never_unpickled(opened, name):
    root, opener, processed_dir, marker = opened
    plant(osp.join(processed_dir, name), str(marker))
    opener(root)
    assert not marker.exists()
    assert osp.exists(osp.join(processed_dir, 'pre_processing.json'))


def test_processed_data_file_is_loaded_weights_only(opened):
    root, opener, processed_dir, marker = opened
    name = 'train.pt' if opener is open_session else 'data.pt'
    plant(osp.join(processed_dir, name), str(marker))
    with pytest.raises(RuntimeError, match=f"{name}.*Nothing was run"):
        opener(root)
    assert not marker.exists()


def test_foreign_or_damaged_processed_file(opened):
    root, opener, processed_dir, _ = opened
    name = 'train.pt' if opener is open_session else 'data.pt'
    path = osp.join(processed_dir, name)
    torch.save({'not': 'a dataset'}, path)
    with pytest.raises(RuntimeError, match='does not hold a dataset'):
        opener(root)
    with open(path, 'wb') as f:
        f.write(b'\x00random bytes')
    with pytest.raises(RuntimeError, match='damaged'):
        opener(root)


def test_pre_transform_change_still_warns(sample_root):
    SessionDataset(sample_root)
    with pytest.warns(UserWarning, match='pre_transform'):
        SessionDataset(sample_root, pre_transform=lambda data: data)


def test_changed_raw_files_are_processed_again(tmp_path):
    root = str(write_raw(tmp_path / 'kg', 'tiny', INTER, KG, LINK))
    assert open_kg(root).num_users == 2
    inter = tmp_path / 'kg' / 'raw' / 'tiny.inter'
    lines = INTER.rstrip('\n').split('\n')
    user = lines[1].split('\t')[0]
    inter.write_text('\n'.join(lines + [lines[1].replace(user, 'u_new', 1)])
                     + '\n')
    with pytest.warns(UserWarning, match='raw files .* changed'):
        assert open_kg(root).num_users == 3


def test_raw_from_another_source_is_refused(tmp_path):
    from pyg_recs.cli import link_raw
    a, b = tmp_path / 'a.txt', tmp_path / 'b' / 'a.txt'
    b.parent.mkdir()
    a.write_text('1')
    b.write_text('2')
    raw = str(tmp_path / 'root' / 'raw')
    link_raw(str(a), raw)
    link_raw(str(a), raw)  # The same file again: fine.
    with pytest.raises(ValueError, match='is already there and is not'):
        link_raw(str(b), raw)


def test_unseen_test_items_warn(tmp_path):
    import json
    import pickle
    raw = tmp_path / 'sess' / 'raw'
    raw.mkdir(parents=True)
    train = ([[1, 2], [2, 3], [1, 3], [3, 1]], [3, 1, 2, 2])
    test = ([[1, 9], [2]], [3, 8])  # Items 9 and 8 are new.
    (raw / 'train.txt').write_bytes(pickle.dumps(train))
    (raw / 'test.txt').write_bytes(pickle.dumps(test))
    with pytest.warns(UserWarning, match='2 items of the test split never '
                      r'occur in training \(1 clicks, 1 targets\)'):
        dataset = SessionDataset(str(tmp_path / 'sess'), val_ratio=0.0)
    stats = json.loads(open(osp.join(dataset.processed_dir,
                                     'stats.json')).read())
    assert stats['unseen_test'] == {'num_items': 2, 'num_clicks': 1,
                                    'num_targets': 1}


def test_save_is_pyg_format_and_atomic(tmp_path, monkeypatch):
    # Datasets write through SafeInMemoryDataset.save: PyG's collated
    # format, loaded back with weights_only=True; a failed write leaves the
    # previous file as it was.
    from torch_geometric.data import Data

    from pyg_recs.datasets.base import SafeInMemoryDataset
    path = str(tmp_path / 'data.pt')
    graphs = [Data(x=torch.arange(3)), Data(x=torch.arange(2))]
    SafeInMemoryDataset.save(graphs, path)
    data, slices, cls = torch.load(path, weights_only=True)
    assert cls is Data and slices['x'].tolist() == [0, 3, 5]
    before = open(path, 'rb').read()

    def full_disk(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', full_disk)
    with pytest.raises(OSError):
        SafeInMemoryDataset.save(graphs[:1], path)
    assert open(path, 'rb').read() == before


@pytest.mark.parametrize('content', ['payload', 'random'])
@pytest.mark.parametrize('loader', ['load_checkpoint', 'load_model_state'])
def test_crafted_or_random_checkpoint_runs_nothing(tmp_path, content,
                                                   loader):
    from pyg_recs.engine import checkpoint
    path, marker = str(tmp_path / 'best.pt'), str(tmp_path / 'marker')
    if content == 'payload':
        plant(path, marker)
    else:
        with open(path, 'wb') as f:
            f.write(bytes(range(256)) * 8)
    with pytest.raises(checkpoint.CheckpointError,
                       match="best.pt.*nothing was run from it"):
        getattr(checkpoint, loader)(path)
    assert not osp.exists(marker)
