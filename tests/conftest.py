import os
import os.path as osp
import shutil

import pytest

SHARED_DATA = osp.abspath(
    osp.join(osp.dirname(__file__), '..', '..', 'shared', 'data'))


def shared_path(*parts: str) -> str:
    r"""A path inside the real data folder, or skip the test without it."""
    path = osp.join(SHARED_DATA, *parts)
    if not osp.exists(path):
        pytest.skip(f"real data not found at '{path}'")
    return path


def link_raw(files, root: str) -> str:
    r"""Links (or copies) real raw files into :obj:`root/raw`."""
    raw = osp.join(root, 'raw')
    os.makedirs(raw, exist_ok=True)
    for path in files:
        target = osp.join(raw, osp.basename(path))
        try:
            os.symlink(path, target)
        except OSError:
            shutil.copy(path, target)
    return root


@pytest.fixture
def sample_root(tmp_path):
    r"""The SR-GNN sample in SR-GNN pickle format, as a dataset root."""
    src = shared_path('srgnn-sample', 'srgnn-format')
    return link_raw([osp.join(src, 'train.txt'), osp.join(src, 'test.txt')],
                    str(tmp_path / 'sample'))
