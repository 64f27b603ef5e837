import os
import pickle

import pytest

from pyg_recs.data import UnsafePickleError, safe_load


class Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null', ))


def test_plain_data_loads(tmp_path):
    obj = ([[1, 2], [3]], [4, 5], {'a': 'b'}, 1.5)
    path = tmp_path / 'ok.pkl'
    path.write_bytes(pickle.dumps(obj))
    assert safe_load(str(path)) == obj


def test_code_is_refused(tmp_path):
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps([1, Exploit()]))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        safe_load(str(path))
    with pytest.raises(UnsafePickleError, match='evil.pkl'):
        safe_load(str(path))
    # Even a harmless class is refused:
    with pytest.raises(UnsafePickleError, match='collections'):
        from collections import OrderedDict
        safe_load(pickle.dumps(OrderedDict(a=1)))


def test_truncated_and_empty(tmp_path):
    path = tmp_path / 'cut.pkl'
    path.write_bytes(pickle.dumps([[1, 2, 3]] * 100)[:50])
    with pytest.raises(ValueError, match='cut.pkl'):
        safe_load(str(path))
    empty = tmp_path / 'empty.pkl'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='empty'):
        safe_load(str(empty))
    with pytest.raises(FileNotFoundError):
        safe_load(str(tmp_path / 'missing.pkl'))
