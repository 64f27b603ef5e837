import os
import os.path as osp

import pytest

from pyg_recs.io import link_files


def test_link_files(tmp_path):
    a, b = tmp_path / 'src' / 'a.txt', tmp_path / 'other' / 'a.txt'
    for path, text in ((a, '1'), (b, '2')):
        path.parent.mkdir()
        path.write_text(text)
    folder = str(tmp_path / 'root' / 'raw')
    assert link_files([str(a)], folder) == [osp.join(folder, 'a.txt')]
    assert osp.islink(osp.join(folder, 'a.txt'))
    assert open(osp.join(folder, 'a.txt')).read() == '1'
    link_files([str(a)], folder)  # The same file again: left as it is.

    with pytest.raises(ValueError, match="already there and is not"):
        link_files([str(b)], folder)
    assert os.readlink(osp.join(folder, 'a.txt')) == str(a)  # Untouched.

    with pytest.raises(FileNotFoundError, match='missing.txt'):
        link_files([str(tmp_path / 'missing.txt')], folder)
