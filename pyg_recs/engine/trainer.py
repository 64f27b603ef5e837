import math
import os
import os.path as osp
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pyg_recs.engine.checkpoint import (
    RunLock,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pyg_recs.io import atomic_torch_save
from pyg_recs.metrics import RankingMetrics

LAST = 'last.pt'
BEST = 'best.pt'
#: The values of :class:`Trainer`'s :obj:`precision`.
PRECISIONS = ('fp32', 'bf16')
#: The values of :class:`Trainer`'s :obj:`compile_mode`.
COMPILE_MODES = (None, 'default', 'reduce-overhead', 'max-autotune',
                 'max-autotune-no-cudagraphs')


class Trainer:
    r"""One training engine for every model of pyg_recs.

    A model only has to provide :obj:`batch_loss(batch) -> Tensor` for
    training and :obj:`batch_scores(batch) -> Tensor [batch_size,
    num_items]` for full-ranking evaluation. An evaluation batch names its
    relevant items either as :obj:`batch.y` (one target per example) or as
    :obj:`batch.edge_label_index` (:obj:`[2, num_labels]` pairs of example
    and item), and may carry :obj:`batch.exclude_index` (pairs never to
    recommend, such as training items). Model-specific schedules (KTUP's
    interleaved knowledge-graph steps) live in the loader and in
    :obj:`batch_loss`, never here.

    The optimiser is Adam with :math:`L_2` regularisation
    (:obj:`weight_decay`) and the step decay of SR-GNN (the learning rate
    is multiplied by :obj:`lr_gamma` every :obj:`lr_step` epochs). After
    each epoch the model is evaluated on the validation loader; the best
    state by :obj:`monitor` is kept (and saved as a plain state dict
    :obj:`best.pt` in :obj:`out_dir`), and training stops after
    :obj:`patience` epochs without improvement. Every epoch a complete
    training state (model, optimiser, scheduler, random generators, history)
    is written atomically to :obj:`last.pt`, from which :meth:`fit` resumes
    with :obj:`resume=True`.

    Args:
        model (torch.nn.Module): The model.
        lr (float, optional): Learning rate. (default: :obj:`1e-3`)
        weight_decay (float, optional): :math:`L_2` penalty.
            (default: :obj:`1e-5`)
        lr_step (int, optional): Decay the learning rate every
            :obj:`lr_step` epochs; :obj:`0` disables the decay.
            (default: :obj:`3`)
        lr_gamma (float, optional): The decay factor. (default: :obj:`0.1`)
        epochs (int, optional): The maximum number of epochs.
            (default: :obj:`30`)
        patience (int, optional): Stop after this many epochs without a
            better validation :obj:`monitor`. (default: :obj:`10`)
        monitor (str, optional): The validation metric used for model
            selection. (default: :obj:`'HR@20'`)
        metrics (list of str, optional): Metric names for evaluation.
            (default: :obj:`('HR', 'MRR', 'NDCG')`)
        ks (list of int, optional): Cut-offs. (default: :obj:`(10, 20)`)
        device (str or torch.device, optional): Where to train.
            (default: :obj:`'cpu'`)
        out_dir (str, optional): Folder for checkpoints; :obj:`None` keeps
            everything in memory. (default: :obj:`None`)
        progress (bool, optional): Show progress bars. (default: :obj:`True`)
        eval_fn (callable, optional): Extra evaluation
            :obj:`eval_fn(model) -> dict` whose values are merged into the
            validation metrics, *e.g.* knowledge-graph completion.
            (default: :obj:`None`)
        compile (bool, optional): Compile the training step with
            :func:`torch.compile`: with :obj:`dynamic=True`, or on a CUDA
            device with :obj:`compile_mode='reduce-overhead'` (CUDA
            graphs, for loaders that pad their batches to static shapes,
            *e.g.* :class:`~pyg_recs.loader.SessionLoader` with
            :obj:`pad=True`). (default: :obj:`False`)
        compile_mode (str, optional): The :obj:`mode` of
            :func:`torch.compile`, given with its default :obj:`dynamic`
            (dynamic shapes only once a shape changes).
            :obj:`'reduce-overhead'` records CUDA graphs, one per concrete
            batch shape, for loaders with few static shapes. :obj:`None`
            means the default mode with :obj:`dynamic=True`.
            (default: :obj:`None`)
        precision (str, optional): :obj:`'fp32'`, or :obj:`'bf16'` for the
            forward passes of training and evaluation under
            :func:`torch.autocast` with :obj:`torch.bfloat16` (matrix
            products and linear layers in :obj:`bfloat16`). The
            parameters, their gradients and the optimiser state stay in
            :obj:`float32`, and so does the loss where the model computes
            it in :obj:`float32` (:meth:`~pyg_recs.nn.models.SRGNN.loss`
            casts the scores first). (default: :obj:`'fp32'`)
        generator (torch.Generator, optional): The generator the training
            loaders draw from when it is not the global one (under DDP all
            ranks share one seed for it); its state is checkpointed, so
            that resuming continues the same batch sequence.
            (default: :obj:`None`)
        time_phases (bool, optional): Split every epoch's time into data
            loading, forward (with the loss), backward and optimiser step
            (:obj:`'load_seconds'`, :obj:`'forward_seconds'`,
            :obj:`'backward_seconds'`, :obj:`'optimizer_seconds'` of the
            epoch record). On a GPU each phase ends with a device
            synchronisation, which costs time, so it is off unless asked
            for; on a CPU the work is synchronous and the split is free.
            :obj:`None` means on for CPUs only. (default: :obj:`None`)

    Under :class:`~torch.nn.parallel.DistributedDataParallel` (a process
    group is initialised, *e.g.* by :obj:`torchrun`), every rank keeps every
    :obj:`world_size`-th batch, gradients and metrics are reduced across
    ranks, only rank 0 writes, and :obj:`last.pt` holds the random
    generator states of every rank, so that a resumed run continues bit for
    bit when it has the same number of processes.
    """
    def __init__(
        self,
        model: torch.nn.Module,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        lr_step: int = 3,
        lr_gamma: float = 0.1,
        epochs: int = 30,
        patience: int = 10,
        monitor: str = 'HR@20',
        metrics: Sequence[str] = ('HR', 'MRR', 'NDCG'),
        ks: Sequence[int] = (10, 20),
        device: Any = 'cpu',
        out_dir: Optional[str] = None,
        progress: bool = True,
        eval_fn: Optional[Callable[[torch.nn.Module], Dict[str, float]]] = None,
        compile: bool = False,
        generator: Optional[torch.Generator] = None,
        time_phases: Optional[bool] = None,
        compile_mode: Optional[str] = None,
        precision: str = 'fp32',
    ) -> None:
        if lr <= 0:
            raise ValueError(f"Invalid 'lr' (got {lr})")
        if precision not in PRECISIONS:
            raise ValueError(f"Invalid 'precision' (got '{precision}'); "
                             f"choose from {list(PRECISIONS)}")
        if compile_mode not in COMPILE_MODES:
            raise ValueError(f"Invalid 'compile_mode' (got "
                             f"'{compile_mode}'); choose from "
                             f"{list(COMPILE_MODES)}")
        if epochs < 0:
            raise ValueError(f"Invalid 'epochs' (got {epochs})")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        # Distributed data parallel training when a process group is up
        # (e.g. under torchrun): batches are sharded over the ranks, the
        # gradients and the metrics are reduced, and only rank 0 writes.
        self.world_size, self.rank = _dist_info()
        self.is_main = self.rank == 0
        self.step_module: torch.nn.Module = _LossModule(self.model)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel
            self.step_module = DistributedDataParallel(
                self.step_module,
                device_ids=[self.device] if self.device.type == 'cuda'
                else None, find_unused_parameters=getattr(
                    model, 'ddp_find_unused_parameters', True))
        self.precision = precision
        self.compile_mode = compile_mode if compile else None
        if compile and compile_mode is None:
            self.step_module = torch.compile(self.step_module, dynamic=True)
        elif compile:
            # Not dynamic=True: CUDA graphs are recorded for concrete
            # shapes (one per shape; padding keeps them few).
            self.step_module = torch.compile(self.step_module,
                                             mode=compile_mode)
        self.epochs = epochs
        self.patience = patience
        self.monitor = monitor
        self.metric_names = list(metrics)
        self.ks = list(ks)
        self.out_dir = out_dir
        self.progress = progress
        self.eval_fn = eval_fn
        self.generator = generator
        self.time_phases = self.device.type == 'cpu' \
            if time_phases is None else time_phases
        self.hparams = dict(lr=lr, weight_decay=weight_decay,
                            lr_step=lr_step, lr_gamma=lr_gamma,
                            epochs=epochs, patience=patience, monitor=monitor,
                            compile=compile,
                            compile_mode=self.compile_mode,
                            precision=precision,
                            world_size=self.world_size)

        # The fused Adam kernel updates all parameters in one pass: on a CPU
        # it makes a reference SR-GNN step on Diginetica ~30% faster.
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr,
                                          weight_decay=weight_decay,
                                          fused=_fused_ok(self.device))
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=max(lr_step, 1),
            gamma=lr_gamma if lr_step > 0 else 1.0)

        self.epoch = 0
        self.history: List[Dict[str, Any]] = []
        self.best_value = -math.inf
        self.best_epoch = 0
        self.best_state: Optional[Dict[str, Tensor]] = None
        # The training loader of fit(), checkpointed when it has a state
        # that runs across epochs (e.g. JointLoader's KG stream):
        self.train_loader: Optional[Iterable] = None

    # Training ################################################################

    def train_epoch(self, loader: Iterable) -> Dict[str, float]:
        r"""Runs one epoch over :obj:`loader`; returns the mean loss, the
        wall time and its split into waiting for batches (data loading) and
        the model's own work (compute), which :obj:`time_phases` splits
        further into forward, backward and optimiser step."""
        self.model.train()
        num_batches = 0
        load_time = 0.0
        # Seconds of forward (with the loss), backward and optimiser step:
        phase_time = [0.0, 0.0, 0.0]
        phases = self.time_phases
        self._sync()
        start = tick = time.perf_counter()
        bar = tqdm(self._shard(loader, pad=True),
                   desc=f'Epoch {self.epoch + 1:02d}',
                   disable=not self.progress or not self.is_main,
                   leave=False, total=_len(loader, self.world_size))
        # A running sum, not a list of losses: a detached loss may share the
        # storage of a large buffer of its step, and keeping them all leaked
        # about 4 MB per batch (16 GB in a Diginetica epoch on a CPU).
        loss_sum = torch.zeros((), device=self.device)
        for batch in bar:
            batch = to_device(batch, self.device)
            now = time.perf_counter()
            load_time += now - tick
            tick = now
            self.optimizer.zero_grad(set_to_none=True)
            if self.compile_mode == 'reduce-overhead':
                # A new iteration: the CUDA graph outputs of the last one
                # (its loss, already summed) may be overwritten.
                torch.compiler.cudagraph_mark_step_begin()
            with self.autocast():
                loss = self.step_module(batch)
            if phases:
                tick = self._lap(phase_time, 0, tick)
            loss.backward()
            if phases:
                tick = self._lap(phase_time, 1, tick)
            self.optimizer.step()
            if phases:
                self._lap(phase_time, 2, tick)
            loss_sum += loss.detach().float()
            num_batches += 1
            if num_batches % 100 == 0:
                bar.set_postfix(loss=f'{float(loss_sum) / num_batches:.4f}')
            tick = time.perf_counter()
        self._sync()
        seconds = time.perf_counter() - start
        stats = self._all_reduce(torch.stack([
            loss_sum,
            torch.tensor(float(num_batches), device=loss_sum.device)
        ]))
        if float(stats[1]) == 0:
            raise ValueError('The training loader yielded no batch')
        mean_loss = float(stats[0] / stats[1])
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f'The training loss diverged '
                                     f'({mean_loss}) in epoch '
                                     f'{self.epoch + 1}')
        out = {
            'loss': mean_loss,
            'seconds': seconds,
            'load_seconds': load_time,
            'compute_seconds': seconds - load_time,
            'lr': self.optimizer.param_groups[0]['lr'],
        }
        if phases:
            out['forward_seconds'] = phase_time[0]
            out['backward_seconds'] = phase_time[1]
            out['optimizer_seconds'] = phase_time[2]
        return out

    def autocast(self):
        r'''The :func:`torch.autocast` context of :obj:`precision`
        (disabled for :obj:`'fp32'`).'''
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.precision == 'bf16')

    def _lap(self, acc: List[float], i: int, tick: float) -> float:
        r'''Adds the time since :obj:`tick` (once the device is done) to
        :obj:`acc[i]`; returns the new tick.'''
        self._sync()
        now = time.perf_counter()
        acc[i] += now - tick
        return now

    @torch.no_grad()
    def evaluate(self, loader: Iterable,
                 metrics: Optional[Sequence[str]] = None,
                 ks: Optional[Sequence[int]] = None) -> Dict[str, float]:
        r"""Full-ranking evaluation over all items; returns the metrics and
        the wall time under :obj:`'seconds'`."""
        self.model.eval()
        ranking = RankingMetrics(metrics or self.metric_names,
                                 ks or self.ks).to(self.device)
        self._sync()
        start = time.perf_counter()
        num_batches = 0
        for batch in tqdm(self._shard(loader), desc='Evaluate',
                          disable=not self.progress or not self.is_main,
                          leave=False, total=_len(loader, self.world_size)):
            num_batches += 1
            batch = to_device(batch, self.device)
            with self.autocast():
                scores = self.model.batch_scores(batch)
            target = getattr(batch, 'edge_label_index', None)
            if target is None:
                target = batch.y
                mask = getattr(batch, 'session_mask', None)
                if mask is not None:  # Padding sessions are not ranked.
                    scores, target = scores[mask], target[mask]
            ranking.update_from_scores(scores, target,
                                       getattr(batch, 'exclude_index', None))
        if self.world_size > 1:
            for metric in ranking.collection.values():
                self._all_reduce(metric.accum)
                self._all_reduce(metric.total)
        num_batches = int(self._all_reduce(
            torch.tensor(num_batches, device=self.device)))
        out = ranking.compute() if num_batches > 0 else {}
        self._sync()
        out['seconds'] = time.perf_counter() - start
        return out

    def fit(self, train_loader: Iterable,
            valid_loader: Optional[Iterable] = None,
            resume: bool = False,
            test_loader: Optional[Iterable] = None) -> List[Dict[str, Any]]:
        r"""Trains until :obj:`epochs` or early stopping; returns the
        history (one dict per epoch) and leaves the best model loaded.

        The model is selected on :obj:`valid_loader` (on the training loss
        without one). With :obj:`test_loader`, the test metrics of every
        epoch are recorded too, under :obj:`'test'` of each epoch's record:
        they never take part in selection or early stopping, and are there
        to compare with code that reports its best test epoch."""
        lock = RunLock(self.out_dir) \
            if self.out_dir is not None and self.is_main else None
        if lock is not None:
            lock.acquire()
        self.train_loader = train_loader
        try:
            if resume:
                path = osp.join(self._require_out_dir(), LAST)
                if osp.exists(path):
                    self.load_state(path)
                else:  # Stopped before its first epoch ended.
                    warnings.warn(f"No complete epoch in '{self.out_dir}' "
                                  f"to resume from; starting afresh")
                _remove_stale_temporaries(self.out_dir)
            self._fit(train_loader, valid_loader, test_loader)
        finally:
            if lock is not None:
                lock.release()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.history

    def _fit(self, train_loader, valid_loader, test_loader=None) -> None:
        while self.epoch < self.epochs:
            if self.epoch - self.best_epoch >= self.patience > 0 \
                    and self.best_epoch > 0:
                break
            record = {'epoch': self.epoch + 1}
            record.update(self.train_epoch(train_loader))
            self.scheduler.step()
            if valid_loader is not None:
                valid = self.evaluate(valid_loader)
                if self.eval_fn is not None:
                    valid.update(self.eval_fn(self.model))
                record['valid'] = valid
                value = valid.get(self.monitor)
                if value is None:
                    raise ValueError(f"Invalid 'monitor' (got "
                                     f"'{self.monitor}'); validation gives "
                                     f"{sorted(valid)}")
            else:
                value = -record['loss']
            if test_loader is not None:  # Reported only, never selects.
                record['test'] = self.evaluate(test_loader)
            self.epoch += 1
            if value > self.best_value:
                self.best_value, self.best_epoch = value, self.epoch
                self.best_state = {
                    k: v.detach().cpu().clone()
                    for k, v in self.model.state_dict().items()
                }
                if self.out_dir is not None and self.is_main:
                    atomic_torch_save(self.best_state,
                                      osp.join(self.out_dir, BEST))
            record['best_epoch'] = self.best_epoch
            self.history.append(record)
            if self.progress and self.is_main:
                tqdm.write(_format_record(record, self.monitor))
            if self.out_dir is not None:  # Collective under DDP.
                self.save_state(osp.join(self.out_dir, LAST))

    # Checkpoints #############################################################

    def state_dict(self) -> Dict[str, Any]:
        r"""The complete training state. Under DDP it holds the random
        generator states of every rank (:obj:`rng_ranks`), gathered with a
        collective call that every rank must make."""
        state = {
            'model': self.model.state_dict(),
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'rng': rng_state(),
            'epoch': self.epoch,
            'best_value': self.best_value,
            'best_epoch': self.best_epoch,
            'best_state': self.best_state,
            'history': self.history,
        }
        if self.generator is not None:
            state['generator'] = self.generator.get_state()
        if hasattr(self.train_loader, 'state_dict'):
            state['loader'] = self.train_loader.state_dict()
        if self.world_size > 1:
            import torch.distributed as dist
            states: List[Any] = [None] * self.world_size
            dist.all_gather_object(states, _to_cpu(state['rng']))
            state['rng_ranks'] = states
        return state

    def save_state(self, path: str) -> None:
        r"""Writes the complete training state atomically (under DDP: every
        rank calls it, rank 0 writes)."""
        state = self.state_dict()
        if not self.is_main:
            return
        save_checkpoint(path, state, meta={
            'epoch': self.epoch,
            'best_epoch': self.best_epoch,
            'best_value': self.best_value,
            'monitor': self.monitor,
            'model': self.model.__class__.__name__,
            'hparams': self.hparams,
        })

    def load_state(self, path: str) -> None:
        r"""Restores a training state saved by :meth:`save_state`."""
        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        rng = state['rng']
        ranks = state.get('rng_ranks')
        if ranks is not None and len(ranks) == self.world_size:
            rng = ranks[self.rank]  # Each rank continues its own streams.
        elif self.world_size > 1 or ranks is not None:
            warnings.warn(f"'{path}' was written by "
                          f"{len(ranks) if ranks else 1} process(es) and is "
                          f"resumed by {self.world_size}: training goes on "
                          f"from the saved epoch but not bit for bit")
        set_rng_state(_to_cpu(rng))
        if 'generator' in state and self.generator is not None:
            self.generator.set_state(state['generator'].cpu())
        if 'loader' in state and hasattr(self.train_loader,
                                         'load_state_dict'):
            self.train_loader.load_state_dict(state['loader'])
        self.epoch = state['epoch']
        self.best_value = state['best_value']
        self.best_epoch = state['best_epoch']
        self.best_state = state['best_state']
        self.history = state['history']

    def _shard(self, loader: Iterable, pad: bool = False) -> Iterable:
        r"""Every rank walks the same batch sequence (loaders draw from a
        generator seeded alike on all ranks) and keeps every
        :obj:`world_size`-th batch, so each batch is used exactly once.

        With :obj:`pad=True` (training), a rank left with one batch fewer
        than rank 0 repeats its first batch at the end, as
        :class:`~torch.utils.data.DistributedSampler` pads: every rank then
        takes the same number of optimiser steps, which keeps the
        optimiser states of all ranks identical (DDP's :obj:`join` for
        uneven inputs resynchronises the parameters, but not Adam's
        moments and step counts)."""
        if self.world_size == 1:
            yield from loader
            return
        first, count, total = None, 0, 0
        for i, batch in enumerate(loader):
            total += 1
            if pad and i == 0:
                first = batch  # Replaced by this rank's own first batch.
            if i % self.world_size == self.rank:
                if pad and count == 0:
                    first = batch
                count += 1
                yield batch
        if pad and first is not None and \
                count < -(-total // self.world_size):
            yield first

    def _all_reduce(self, tensor: Tensor) -> Tensor:
        if self.world_size > 1:
            import torch.distributed as dist
            dist.all_reduce(tensor)
        return tensor

    def _require_out_dir(self) -> str:
        if self.out_dir is None:
            raise ValueError("Resuming needs an 'out_dir' with checkpoints")
        return self.out_dir

    def _sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)


class _LossModule(torch.nn.Module):
    r"""Calls :obj:`model.batch_loss` through :meth:`forward`, so that
    :class:`~torch.nn.parallel.DistributedDataParallel` and
    :func:`torch.compile` see the whole training step."""
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> Tensor:
        return self.model.batch_loss(batch)


def _dist_info():
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def to_device(batch: Any, device: torch.device) -> Any:
    r"""Moves a batch (PyG data, tensor, or a tuple/list/dict of them) to
    :obj:`device`."""
    if hasattr(batch, 'to') and callable(batch.to):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def _remove_stale_temporaries(folder: str) -> None:
    # Temporary files of atomic writes interrupted by a kill.
    for name in os.listdir(folder):
        if name.startswith('.') and name.endswith('.tmp'):
            os.remove(osp.join(folder, name))


def _fused_ok(device: torch.device) -> bool:
    return device.type in ('cpu', 'cuda') and \
        torch.get_default_dtype() in (torch.float32, torch.float64)


def _to_cpu(state: Any) -> Any:
    if isinstance(state, Tensor):
        return state.cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_cpu(v) for v in state]
    return state


def _len(loader: Any, world_size: int = 1) -> Optional[int]:
    try:
        return (len(loader) + world_size - 1) // world_size
    except TypeError:
        return None


def _format_record(record: Dict[str, Any], monitor: str) -> str:
    text = (f"Epoch {record['epoch']:02d}  loss {record['loss']:.4f}  "
            f"{record['seconds']:.1f}s")
    valid = record.get('valid')
    if valid:
        shown = ', '.join(f'{k} {v:.4f}' for k, v in valid.items()
                          if k != 'seconds')
        text += f'  valid: {shown}'
    test = record.get('test')
    if test:
        shown = ', '.join(f'{k} {v:.4f}' for k, v in test.items()
                          if k != 'seconds')
        text += f'  test (reported only): {shown}'
    return text + f"  (best epoch {record['best_epoch']} by {monitor})"
