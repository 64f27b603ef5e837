r"""Running a recipe: :func:`run` trains any model of
:data:`~pyg_recs.engine.RECIPES` with the one
:class:`~pyg_recs.engine.Trainer` into a locked, checked run folder and
returns a JSON-ready record; :func:`load_run` rebuilds a finished run. Also
the distributed setup and the environment report of the records.
"""
import contextlib
import os
import os.path as osp
import platform
import resource
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import Tensor

from pyg_recs.engine.checkpoint import RunFolderError, RunLock, seed_everything
from pyg_recs.engine.recipes import RECIPES, Experiment
from pyg_recs.engine.settings import (TRAINER_DEFAULTS, TRAINER_TYPES,
                                      Recipe, SettingError, check_value)
from pyg_recs.engine.trainer import Trainer
from pyg_recs.io import atomic_json_dump


# Run folders #################################################################

def load_run(out_dir: str, device: Any = 'cpu',
             checkpoint: str = 'best.pt') -> Experiment:
    r"""Rebuilds the experiment of a finished run from its folder and
    loads its selected model (a plain state dict, read with
    :obj:`weights_only=True`)."""
    import json

    from pyg_recs.engine.checkpoint import CheckpointError, load_model_state
    path = osp.join(out_dir, 'config.json')
    if not osp.isfile(path):
        raise CheckpointError(f"'{out_dir}' is not a run folder: "
                              f"'config.json' is missing")
    with open(path) as f:
        config = json.load(f)
    if config.get('model') not in RECIPES:
        raise CheckpointError(f"'{path}' names an unknown model "
                              f"'{config.get('model')}'")
    if not isinstance(config.get('settings'), dict):
        raise CheckpointError(f"'{path}' has no 'settings' object")
    try:
        exp = RECIPES[config['model']](device=device, **config['settings'])
    except (TypeError, SettingError) as e:  # A missing or unknown one.
        raise CheckpointError(f"'{path}' does not describe a "
                              f"'{config['model']}' run: {e}") from None
    state = load_model_state(osp.join(out_dir, checkpoint), device)
    mismatch = _shape_mismatch(exp.model.state_dict(), state)
    if mismatch:
        raise CheckpointError(
            f"The checkpoint '{osp.join(out_dir, checkpoint)}' does not fit "
            f"the model of '{path}' (another dataset or hidden size?): "
            f"{'; '.join(mismatch)}")
    try:
        exp.model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"The checkpoint in '{out_dir}' does not fit "
                              f"the model of its config: {e}") from e
    exp.model.to(device).eval()
    return exp


def _shape_mismatch(expected: Dict[str, Tensor],
                    found: Dict[str, Any]) -> List[str]:
    r"""One short line per parameter whose shape differs, or that is
    missing or surplus, instead of PyTorch's page of size mismatches."""
    out = []
    for key, value in expected.items():
        other = found.get(key)
        if other is None:
            out.append(f"'{key}' is missing")
        elif tuple(other.shape) != tuple(value.shape):
            out.append(f"'{key}' is {list(other.shape)} there, "
                       f"{list(value.shape)} in the model")
    out += [f"'{key}' is not in the model" for key in found
            if key not in expected]
    return out[:5] + ([f'... {len(out) - 5} more'] if len(out) > 5 else [])


# Running #####################################################################

def run(
    model_name: str,
    settings: Dict[str, Any],
    epochs: Optional[int] = None,
    lr: Optional[float] = None,
    weight_decay: Optional[float] = None,
    lr_step: Optional[int] = None,
    lr_gamma: Optional[float] = None,
    patience: Optional[int] = None,
    seed: int = 2019,
    device: Any = 'cpu',
    out_dir: Optional[str] = None,
    resume: bool = False,
    json_path: Optional[str] = None,
    progress: bool = True,
    compile: bool = False,
    test_each_epoch: bool = False,
    precision: str = 'fp32',
) -> Dict[str, Any]:
    r"""Builds the experiment of :obj:`model_name` from :obj:`settings`,
    trains it (the trainer settings left :obj:`None` take the recipe's
    defaults, see :attr:`Recipe.trainer
    <pyg_recs.engine.settings.Recipe>`) with early stopping on the
    validation split, evaluates the
    selected model on the test split and returns (and optionally writes to
    :obj:`json_path`) a record of the whole run.

    The record's :obj:`'selection'` says how the tested model was chosen:
    :obj:`'valid'` (best validation :obj:`monitor`) or, without a
    validation split, :obj:`'train_loss'`. With :obj:`test_each_epoch`,
    every epoch's record also holds its test metrics (reported only, never
    used for selection). :obj:`precision` is the
    :class:`~pyg_recs.engine.Trainer`'s (:obj:`'fp32'` or :obj:`'bf16'`);
    :obj:`compile` on a CUDA device with a padding training loader
    (:obj:`pad=True`) records CUDA graphs
    (:obj:`compile_mode='reduce-overhead'`)."""
    if model_name not in RECIPES:
        raise ValueError(f"Unknown model '{model_name}'; choose from "
                         f"{sorted(RECIPES)}")
    recipe = RECIPES[model_name]
    if isinstance(recipe, Recipe):  # Before anything is written.
        recipe.check(settings)
    given = dict(epochs=epochs, lr=lr, weight_decay=weight_decay,
                 lr_step=lr_step, lr_gamma=lr_gamma, patience=patience)
    defaults = (recipe.trainer_defaults() if isinstance(recipe, Recipe)
                else dict(TRAINER_DEFAULTS))
    hp = {key: defaults[key] if value is None else value
          for key, value in given.items()}
    for key, value in hp.items():  # The command line's rules, from Python.
        check_value(key, value, TRAINER_TYPES[key])
    if out_dir is not None:
        out_dir = osp.abspath(out_dir)
        _prepare_out_dir(out_dir, resume)
    if json_path is not None:
        json_path = osp.abspath(json_path)
        _check_writable_file(json_path, '--json')
    world_size, rank, device = init_distributed(device)
    # Model noise (e.g. KTUP's Gumbel samples) differs between ranks; the
    # initial parameters are rank 0's, which DDP broadcasts.
    seed_everything(seed + rank)
    extra = {}
    if world_size > 1:
        # All ranks must walk the same batch sequence: a generator seeded
        # alike on every rank drives shuffling and negative sampling (the
        # trainer checkpoints its state, so resuming continues it).
        extra['generator'] = torch.Generator().manual_seed(seed)
    # rank 0 holds the run folder's lock from before anything is read or
    # written in it (another run's config.json and checkpoints stay as they
    # are) until training ends, on every way out.
    with contextlib.ExitStack() as held:
        old_config = None
        if out_dir is not None and rank == 0:
            held.enter_context(RunLock(out_dir))
            old_config = _check_run_folder(
                out_dir, model_name, _absolute_paths(settings), resume)
        if rank != 0:  # Let rank 0 process the dataset first.
            _barrier()
        exp = RECIPES[model_name](device=device, **settings, **extra)
        if rank == 0:
            _barrier()
        if rank != 0:
            json_path = None
        if out_dir is not None and rank == 0:
            # Another dataset under a new root or raw_from: refuse.
            _check_same_data(out_dir, old_config, exp.stats)
            atomic_json_dump({
                'model': model_name,
                'settings': _absolute_paths(settings),
                'stats': exp.stats,
            }, osp.join(out_dir, 'config.json'))

        trainer = Trainer(
            exp.model, **hp, monitor=exp.monitor, metrics=exp.metrics,
            ks=exp.ks, device=device,
            out_dir=out_dir, progress=progress, eval_fn=exp.eval_fn,
            compile=compile, generator=extra.get('generator'),
            precision=precision, compile_mode='reduce-overhead'
            if torch.device(device).type == 'cuda'
            and getattr(exp.train_loader, 'pad', False) else None)
        if str(device).startswith('cuda') and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        history = trainer.fit(
            exp.train_loader, exp.valid_loader, resume=resume,
            test_loader=exp.test_loader if test_each_epoch else None)
    train_seconds = time.perf_counter() - start

    test = trainer.evaluate(exp.test_loader)
    if exp.test_fn is not None:
        test.update(exp.test_fn(trainer.model))
    eval_seconds = test.pop('seconds')

    record = {
        'model': model_name,
        'dataset': settings.get('dataset'),
        'settings': settings,
        'hparams': dict(trainer.hparams, seed=seed, device=str(device)),
        'stats': exp.stats,
        'epochs': history,
        'epoch_seconds': [h['seconds'] for h in history],
        'train_losses': [h['loss'] for h in history],
        'best_epoch': trainer.best_epoch,
        'selection': 'valid' if exp.valid_loader is not None
        else 'train_loss',
        'train_seconds': train_seconds,
        'eval_seconds': eval_seconds,
        'test': test,
        'peak_memory': peak_memory(device),
        'versions': versions(),
    }
    record['hparams']['world_size'] = world_size
    record.update(test)  # Top-level 'HR@20', 'MRR@20', ... for scripts.
    if json_path is not None and rank == 0:
        atomic_json_dump(record, json_path)
    return record


#: Settings that are paths: stored absolute, and not compared on resume.
PATH_SETTINGS = ('root', 'raw_from')


def _absolute_paths(settings: Dict[str, Any]) -> Dict[str, Any]:
    return {key: (osp.abspath(value) if key in PATH_SETTINGS
                  and isinstance(value, str) else value)
            for key, value in settings.items()}


def _prepare_out_dir(out_dir: str, resume: bool) -> None:
    r"""Refuses a :obj:`resume` into a folder that does not exist (a typo
    would silently start afresh) and creates the output folder, with one
    clear error if it cannot be created."""
    if resume and not osp.isdir(out_dir):
        raise RunFolderError(
            f"Cannot resume: the run folder '{out_dir}' does not exist. "
            f"Check the path, or drop --resume to start a new run")
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = osp.join(out_dir, f'.write-test-{os.getpid()}')
        with open(probe, 'w'):
            pass
        os.remove(probe)
    except OSError as e:
        raise RunFolderError(
            f"Cannot write to the run folder '{out_dir}': "
            f"{e.strerror or e}. Choose a writable --out") from None


def _check_writable_file(path: str, flag: str) -> None:
    r"""Checks before training that :obj:`path` can be written, so that a
    long run does not end without its record."""
    if osp.isdir(path):
        raise RunFolderError(f"{flag} '{path}' is a directory; give a file "
                             f"path such as '{osp.join(path, 'run.json')}'")
    folder = osp.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        probe = osp.join(folder, f'.write-test-{os.getpid()}')
        with open(probe, 'w'):
            pass
        os.remove(probe)
    except OSError as e:
        raise RunFolderError(f"{flag} '{path}' cannot be written: "
                             f"{e.strerror or e}. Choose a writable path") \
            from None


def _check_run_folder(out_dir: str, model_name: str,
                      settings: Dict[str, Any],
                      resume: bool) -> Optional[Dict[str, Any]]:
    r"""Refuses to touch a run folder that holds another run: a different
    model or settings (whatever :obj:`resume` says), or any finished epoch
    when not resuming. Its :obj:`config.json` and checkpoints stay as
    they are. Returns the folder's config (:obj:`None` if it has none)."""
    import json
    path = osp.join(out_dir, 'config.json')
    old = None
    if osp.isfile(path):
        try:
            with open(path, encoding='utf-8') as f:
                old = json.load(f)
        except (OSError, ValueError) as e:
            raise RunFolderError(f"Could not read '{path}' ({e}); choose "
                                 f"another --out") from None
        diff = _config_diff(old, model_name, settings)
        if diff:
            raise RunFolderError(
                f"'{out_dir}' holds another run ({'; '.join(diff)}). "
                f"Choose another --out, or the run's own settings to "
                f"resume it")
    has_epochs = any(osp.exists(osp.join(out_dir, name))
                     for name in ('last.pt', 'best.pt'))
    if has_epochs and not resume:
        raise RunFolderError(
            f"'{out_dir}' already holds a run; pass --resume to continue "
            f"it, or choose another --out")
    return old


def _check_same_data(out_dir: str, config: Optional[Dict[str, Any]],
                     stats: Dict[str, Any]) -> None:
    r"""Refuses a run folder whose run (its :obj:`config`) saw other data
    than the dataset just opened (its sizes differ): a resume with another
    :obj:`root` or :obj:`raw_from` must not continue on another dataset,
    nor overwrite the run's :obj:`config.json`. Paths themselves may change
    (a run folder moved to another machine)."""
    old = (config or {}).get('stats') or {}
    diff = [f"{key}={old[key]!r} there, {stats.get(key)!r} here"
            for key in sorted(old) if old[key] != stats.get(key)]
    if diff:
        raise RunFolderError(
            f"'{out_dir}' was trained on other data than the dataset "
            f"opened now ({'; '.join(diff)}). Pass the run's own --root "
            f"and --raw-from to resume it, or choose another --out")


def _config_diff(old: Dict[str, Any], model_name: str,
                 settings: Dict[str, Any]) -> List[str]:
    out = []
    if old.get('model') != model_name:
        out.append(f"model '{old.get('model')}' there, '{model_name}' here")
        return out
    old_s, new_s = old.get('settings') or {}, settings
    for key in sorted(set(old_s) | set(new_s)):
        if key in PATH_SETTINGS:
            continue
        if old_s.get(key) != new_s.get(key):
            out.append(f"{key}={old_s.get(key)!r} there, "
                       f"{new_s.get(key)!r} here")
    return out


def init_distributed(device: Any = 'cpu'):
    r"""Joins the process group that :obj:`torchrun` describes in the
    environment (NCCL on GPUs, gloo on CPUs); returns the world size, the
    rank and this rank's device. Without :obj:`torchrun` it returns
    :obj:`(1, 0, device)`."""
    import torch.distributed as dist
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1 or not dist.is_available():
        return 1, 0, device
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    cuda = str(device).startswith('cuda')
    if not dist.is_initialized():
        dist.init_process_group('nccl' if cuda else 'gloo')
    if cuda:
        device = f'cuda:{local_rank}'
        torch.cuda.set_device(device)
    return dist.get_world_size(), dist.get_rank(), device


def _barrier() -> None:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def peak_memory(device: Any = 'cpu') -> Dict[str, float]:
    r"""Peak resident memory of this process (and of the GPU) in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / 1024 if sys.platform != 'darwin' else rss / 2**20
    out = {'rss_mb': rss_mb}
    if str(device).startswith('cuda') and torch.cuda.is_available():
        out['cuda_mb'] = torch.cuda.max_memory_allocated() / 2**20
    return out


def versions() -> Dict[str, str]:
    r"""Versions of everything that shapes a result."""
    import pandas
    import torch_geometric

    import pyg_recs
    out = {
        'pyg_recs': pyg_recs.__version__,
        'torch': torch.__version__,
        'torch_geometric': torch_geometric.__version__,
        'numpy': np.__version__,
        'pandas': pandas.__version__,
        'python': platform.python_version(),
        'torch_scatter': str(pyg_recs.WITH_TORCH_SCATTER),
        'torch_sparse': str(pyg_recs.WITH_TORCH_SPARSE),
    }
    if torch.cuda.is_available():
        out['cuda_device'] = torch.cuda.get_device_name()
    return out
