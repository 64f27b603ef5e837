r"""Checkpoints: plain state dicts plus JSON metadata, written atomically and
read with :obj:`weights_only=True`."""
import json
import os
import os.path as osp
import random
from typing import Any, Dict, Optional

import numpy as np
import torch

from pyg_recs.io import atomic_json_dump, atomic_torch_save, torch_load_reason

CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    r"""Raised for a missing, truncated or foreign checkpoint."""


class RunFolderError(CheckpointError):
    r"""Raised when a run folder (or a record path) cannot be used without
    damaging what it holds: another run's folder, an unwritable path, a
    :obj:`--resume` of a folder that does not exist."""


def rng_state() -> Dict[str, Any]:
    r"""The state of every random generator training draws from."""
    state = {
        'torch': torch.get_rng_state(),
        'numpy': _numpy_state_to_tensors(np.random.get_state()),
        'python': _python_state_to_tensors(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    r"""Restores the generators saved by :func:`rng_state`."""
    torch.set_rng_state(state['torch'])
    np.random.set_state(_numpy_state_from_tensors(state['numpy']))
    random.setstate(_python_state_from_tensors(state['python']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def seed_everything(seed: int) -> None:
    r"""Seeds Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path: str, state: Dict[str, Any],
                    meta: Optional[Dict[str, Any]] = None) -> None:
    r"""Writes a training state (tensors, numbers, strings, lists and dicts
    only) to :obj:`path` and its metadata to :obj:`path + '.json'`, each
    atomically."""
    state = dict(state, version=CHECKPOINT_VERSION)
    atomic_torch_save(state, path)
    if meta is not None:
        atomic_json_dump(meta, path + '.json')


def _unreadable(path: str, error: Exception) -> CheckpointError:
    return CheckpointError(f"Could not read the checkpoint '{path}' "
                           f"(truncated, corrupt or not a pyg_recs "
                           f"checkpoint): {torch_load_reason(error)}; "
                           f"nothing was run from it")


def load_checkpoint(path: str, map_location: Any = 'cpu') -> Dict[str, Any]:
    r"""Loads a checkpoint written by :func:`save_checkpoint` with
    :obj:`weights_only=True`, so that loading never runs code.

    Raises:
        CheckpointError: If the file is missing, truncated, not a
            checkpoint or from an unknown version.
    """
    if not osp.isfile(path):
        raise CheckpointError(f"No checkpoint at '{path}'")
    try:
        state = torch.load(path, map_location=map_location,
                           weights_only=True)
    except Exception as e:  # Truncated, corrupt or not a torch file.
        raise _unreadable(path, e) from None
    if not isinstance(state, dict) or 'version' not in state:
        raise CheckpointError(f"'{path}' is not a pyg_recs checkpoint")
    if state['version'] != CHECKPOINT_VERSION:
        raise CheckpointError(f"'{path}' has checkpoint version "
                              f"{state['version']}, expected "
                              f"{CHECKPOINT_VERSION}")
    return state


def load_model_state(path: str, map_location: Any = 'cpu'
                     ) -> Dict[str, torch.Tensor]:
    r"""Loads a model's state dict from a checkpoint or from a plain state
    dict file, with :obj:`weights_only=True`."""
    if not osp.isfile(path):
        raise CheckpointError(f"No checkpoint at '{path}'")
    try:
        state = torch.load(path, map_location=map_location,
                           weights_only=True)
    except Exception as e:
        raise _unreadable(path, e) from None
    if isinstance(state, dict) and 'model' in state and 'version' in state:
        state = state['model']
    if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"'{path}' holds no model state dict")
    return state


def read_meta(path: str) -> Dict[str, Any]:
    r"""Reads the JSON metadata written next to a checkpoint."""
    meta_path = path + '.json'
    if not osp.isfile(meta_path):
        raise CheckpointError(f"No metadata '{meta_path}' next to the "
                              f"checkpoint")
    try:
        with open(meta_path) as f:
            return json.load(f)
    except ValueError as e:
        raise CheckpointError(f"Could not parse '{meta_path}': {e}") from e


class RunLock:
    r"""An exclusive lock on an output folder, so that two runs never write
    to the same folder at once. A lock left by a dead process is taken
    over."""
    def __init__(self, folder: str) -> None:
        self.path = osp.join(folder, '.lock')
        self.acquired = False

    def acquire(self) -> None:
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid = _read_pid(self.path)
                if pid == os.getpid():  # Held by this process already
                    return  # (e.g. run() around Trainer.fit); theirs to free.
                if pid is not None and _alive(pid):
                    raise RuntimeError(
                        f"Another run (pid {pid}) is writing to "
                        f"'{osp.dirname(self.path)}'; choose another output "
                        f"folder") from None
                os.remove(self.path)  # Stale lock of a dead process.
                continue
            with os.fdopen(fd, 'w') as f:
                f.write(str(os.getpid()))
            self.acquired = True
            return
        raise RuntimeError(f"Could not lock '{self.path}'")

    def release(self) -> None:
        if self.acquired and osp.exists(self.path):
            os.remove(self.path)
        self.acquired = False

    def __enter__(self) -> 'RunLock':
        self.acquire()
        return self

    def __exit__(self, *args) -> None:
        self.release()


def _read_pid(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _numpy_state_to_tensors(state):
    name, keys, pos, has_gauss, cached = state
    return {
        'keys': torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        'pos': int(pos),
        'has_gauss': int(has_gauss),
        'cached': float(cached),
        'name': str(name),
    }


def _numpy_state_from_tensors(state):
    return (state['name'], state['keys'].numpy().astype(np.uint32),
            state['pos'], state['has_gauss'], state['cached'])


def _python_state_to_tensors(state):
    version, internal, gauss = state
    return {
        'version': int(version),
        'internal': torch.tensor(internal, dtype=torch.int64),
        'gauss': gauss,
    }


def _python_state_from_tensors(state):
    return (state['version'], tuple(int(v) for v in state['internal']),
            state['gauss'])
