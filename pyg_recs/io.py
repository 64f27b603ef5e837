r"""Crash-safe file writes.

Every file pyg_recs writes (processed datasets, checkpoints, result JSON)
goes through these helpers: the content is written to a temporary file in
the same folder, flushed to disk and renamed over the target, so a crash
never leaves a half-written file behind. Raw files are linked into a
dataset's :obj:`raw/` folder by :func:`link_files`, which never replaces a
file that is already there.
"""
import json
import os
import os.path as osp
import tempfile
from typing import Any, Callable, Iterable, List

import torch


class WriteError(OSError):
    r"""Raised when an atomic write fails (*e.g.* a full disk, a read-only
    folder): the message names the path, and the file that was there
    before is unchanged."""
    def __str__(self) -> str:
        return str(self.strerror)


def atomic_write(path: str, write_fn: Callable[[Any], None],
                 mode: str = 'wb') -> None:
    r"""Calls :obj:`write_fn(file)` on a temporary file, then renames it to
    :obj:`path` atomically.

    Args:
        path (str): The destination path.
        write_fn (callable): Writes the content to the open file object.
        mode (str, optional): The file mode. (default: :obj:`'wb'`)
    """
    folder = osp.dirname(osp.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder,
                                   prefix='.' + osp.basename(path),
                                   suffix='.tmp')
    except OSError as e:
        raise WriteError(e.errno, f"Could not write '{path}': "
                         f"{e.strerror or e}; choose a writable path") \
            from None
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(
                e.errno, f"Could not write '{path}': {e.strerror or e}; "
                f"the previous file, if any, is unchanged (free some space "
                f"or choose another path)") from None
        raise
    try:  # Make the rename itself durable.
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover (e.g. on Windows)
        pass


def atomic_torch_save(obj: Any, path: str) -> None:
    r"""Saves :obj:`obj` with :func:`torch.save` atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_json_dump(obj: Any, path: str) -> None:
    r"""Writes :obj:`obj` as indented JSON atomically."""
    atomic_write(path, lambda f: json.dump(obj, f, indent=2, sort_keys=False),
                 mode='w')


def link_files(paths: Iterable[str], folder: str) -> List[str]:
    r"""Symbolically links every file of :obj:`paths` into :obj:`folder`
    (created if needed) under its own name, and returns the links.

    A link or file already there is left untouched when it is the same
    file (the same real path); when it is another file, a
    :class:`ValueError` names both, and nothing is replaced: a dataset
    folder must never silently mix raw files of two sources.
    """
    os.makedirs(folder, exist_ok=True)
    targets = []
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(f"No such file '{path}' to link into "
                                    f"'{folder}'")
        target = osp.join(folder, osp.basename(path))
        try:
            os.symlink(osp.abspath(path), target)
        except FileExistsError:  # Already there (or linked by another rank).
            if osp.realpath(target) != osp.realpath(path):
                raise ValueError(
                    f"'{target}' is already there and is not '{path}' (it "
                    f"is '{osp.realpath(target)}'); its processed data "
                    f"would be reused. Remove '{target}' or link into "
                    f"another folder") from None
        targets.append(target)
    return targets


__all__ = ['atomic_write', 'atomic_torch_save', 'atomic_json_dump',
           'link_files']


def torch_load_reason(error: Exception) -> str:
    r"""One short line on why :func:`torch.load` with
    :obj:`weights_only=True` failed, instead of the unpickler's page on
    allow-listing globals."""
    import pickle
    if isinstance(error, pickle.UnpicklingError):
        return ('it is not a torch file, or it holds objects other than '
                'tensors and plain containers')
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= 200 else line[:197] + '...'
