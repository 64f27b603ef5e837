r"""A restricted unpickler for downloaded data.

:func:`pickle.load` runs arbitrary code from the file it reads. Datasets in
the SR-GNN format are pickles of plain lists, tuples, integers and strings,
so :func:`safe_load` admits exactly those types and nothing that can call a
function.
"""
import io
import os.path as osp
import pickle
from typing import Any, Union


class UnsafePickleError(pickle.UnpicklingError):
    r"""Raised when a pickle asks for anything but plain data."""


class RestrictedUnpickler(pickle.Unpickler):
    r"""An unpickler that refuses every global (class or function) lookup.

    Lists, tuples, dicts, sets, integers, floats, strings and bytes are
    built by pickle opcodes without any global lookup, so refusing
    :meth:`find_class` leaves only plain data.
    """
    def __init__(self, file, path: str = '<bytes>'):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(
            f"Refusing to load '{self.path}': it references "
            f"'{module}.{name}', but only lists, tuples, ints and strs are "
            f"allowed in a data pickle")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"Refusing to load '{self.path}': persistent ids are not "
            f"allowed in a data pickle")


def safe_load(src: Union[str, bytes]) -> Any:
    r"""Loads a pickle of plain data (lists, tuples, ints, strs).

    Args:
        src (str or bytes): A file path or the pickled bytes.

    Raises:
        UnsafePickleError: If the pickle references any class or function.
        ValueError: If the file is empty, truncated or not a pickle.
    """
    if isinstance(src, (bytes, bytearray)):
        path, fh = '<bytes>', io.BytesIO(src)
    else:
        path = str(src)
        if not osp.isfile(path):
            raise FileNotFoundError(f"No such file: '{path}'")
        fh = open(path, 'rb')
    try:
        with fh:
            return RestrictedUnpickler(fh, path).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # Any malformed opcode stream.
        raise ValueError(f"Could not read the pickle '{path}': {e} "
                         f"(empty, truncated or not a pickle)") from e


__all__ = ['UnsafePickleError', 'RestrictedUnpickler', 'safe_load']
