r"""Mini-batch loaders for knowledge-aware recommendation, *e.g.*
`KTUP <https://arxiv.org/abs/1902.06236>`_: interactions with sampled
negatives, knowledge-graph triples, both interleaved for joint training, and
users for full ranking evaluation.

Every loader yields :class:`torch_geometric.data.Data` mini-batches with
fixed attribute names and builds each batch from tensors with a handful of
vectorised operations (no Python loop over users or interactions):

* :class:`InteractionLoader`: :obj:`user_index`, :obj:`pos_item_index`,
  :obj:`neg_item_index`, all :obj:`[B]`;
* :class:`TripleLoader`: :obj:`head_index`, :obj:`rel_type`,
  :obj:`tail_index`, all :obj:`[B]` (negatives are drawn by the model's
  loss, as in :class:`torch_geometric.nn.kge.KGEModel`);
* :class:`JointLoader`: the batches of the two loaders above, interleaved
  (a model tells them apart by their fields, as
  :meth:`pyg_recs.nn.models.KTUP.batch_loss` does);
* :class:`RankingEvalLoader`: :obj:`user_index` :obj:`[B]`,
  :obj:`edge_label_index` :obj:`[2, L]` and :obj:`exclude_index`
  :obj:`[2, M]`, whose rows are positions in :obj:`user_index`, the format
  of :class:`pyg_recs.metrics.RankingMetrics`.
"""
import math
from typing import Any, Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_recs.data.split import negative_index, sample_negatives


def _check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Invalid 'batch_size' (got {batch_size!r})")
    return batch_size


def _num_batches(num: int, batch_size: int, drop_last: bool) -> int:
    return num // batch_size if drop_last else math.ceil(num / batch_size)


def _order(num: int, shuffle: bool, generator: Optional[torch.Generator],
           device: torch.device) -> Tensor:
    if shuffle:
        gen_device = (generator.device
                      if generator is not None else torch.device('cpu'))
        return torch.randperm(num, generator=generator,
                              device=gen_device).to(device)
    return torch.arange(num, device=device)


class InteractionLoader:
    r"""Iterates over user-item interactions in mini-batches and draws one
    negative item per interaction, uniformly from the items the user has
    not interacted with (see :func:`pyg_recs.data.split.sample_negatives`),
    for pairwise losses such as BPR.

    Yields :class:`~torch_geometric.data.Data` objects with
    :obj:`user_index`, :obj:`pos_item_index` and :obj:`neg_item_index`, all
    of shape :obj:`[B]`.

    Args:
        user_index (torch.Tensor): The users of the (training) interactions.
        item_index (torch.Tensor): Their items.
        num_items (int): The number of items.
        batch_size (int, optional): Interactions per mini-batch.
            (default: :obj:`1`)
        shuffle (bool, optional): Reshuffle the interactions every epoch.
            (default: :obj:`True`)
        generator (torch.Generator, optional): The random generator for
            shuffling and sampling. (default: :obj:`None`)
        positive_index (torch.Tensor, optional): The (user, item) pairs
            :obj:`[2, P]` that negatives must avoid; by default the
            interactions themselves. (default: :obj:`None`)
        drop_last (bool, optional): Drop the last incomplete batch.
            (default: :obj:`False`)
    """
    def __init__(
        self,
        user_index: Tensor,
        item_index: Tensor,
        num_items: int,
        batch_size: int = 1,
        shuffle: bool = True,
        generator: Optional[torch.Generator] = None,
        positive_index: Optional[Tensor] = None,
        drop_last: bool = False,
    ) -> None:
        user_index, item_index = user_index.view(-1), item_index.view(-1)
        if user_index.numel() != item_index.numel():
            raise ValueError(f"'user_index' and 'item_index' must be of the "
                             f'same size (got {user_index.numel()} and '
                             f'{item_index.numel()})')
        self.user_index = user_index.long()
        self.item_index = item_index.long()
        self.num_items = int(num_items)
        self.batch_size = _check_batch_size(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        if positive_index is None:
            positive_index = torch.stack([self.user_index, self.item_index])
        self.negative_index = negative_index(positive_index[0],
                                             positive_index[1],
                                             self.num_items)

    def __len__(self) -> int:
        return _num_batches(self.user_index.numel(), self.batch_size,
                            self.drop_last)

    def __iter__(self) -> Iterator[Data]:
        order = _order(self.user_index.numel(), self.shuffle, self.generator,
                       self.user_index.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            user = self.user_index[idx]
            neg = sample_negatives(user, self.num_items, self.negative_index,
                                   generator=self.generator)
            yield Data(user_index=user, pos_item_index=self.item_index[idx],
                       neg_item_index=neg)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.user_index.numel()}, '
                f'num_items={self.num_items}, '
                f'batch_size={self.batch_size})')


class TripleLoader:
    r"""Iterates over knowledge-graph triples in mini-batches, like
    :meth:`torch_geometric.nn.kge.KGEModel.loader`.

    Yields :class:`~torch_geometric.data.Data` objects with
    :obj:`head_index`, :obj:`rel_type` and :obj:`tail_index`, all of shape
    :obj:`[B]`; negatives are drawn by the model's loss.

    Args:
        head_index (torch.Tensor): The head entities.
        rel_type (torch.Tensor): The relations.
        tail_index (torch.Tensor): The tail entities.
        batch_size (int, optional): Triples per mini-batch.
            (default: :obj:`1`)
        shuffle (bool, optional): Reshuffle the triples every epoch.
            (default: :obj:`True`)
        generator (torch.Generator, optional): The random generator for
            shuffling. (default: :obj:`None`)
        drop_last (bool, optional): Drop the last incomplete batch.
            (default: :obj:`False`)
    """
    def __init__(
        self,
        head_index: Tensor,
        rel_type: Tensor,
        tail_index: Tensor,
        batch_size: int = 1,
        shuffle: bool = True,
        generator: Optional[torch.Generator] = None,
        drop_last: bool = False,
    ) -> None:
        head_index = head_index.view(-1)
        rel_type, tail_index = rel_type.view(-1), tail_index.view(-1)
        if not head_index.numel() == rel_type.numel() == tail_index.numel():
            raise ValueError(f"'head_index', 'rel_type' and 'tail_index' "
                             f'must be of the same size (got '
                             f'{head_index.numel()}, {rel_type.numel()} and '
                             f'{tail_index.numel()})')
        self.head_index = head_index.long()
        self.rel_type = rel_type.long()
        self.tail_index = tail_index.long()
        self.batch_size = _check_batch_size(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last

    def __len__(self) -> int:
        return _num_batches(self.head_index.numel(), self.batch_size,
                            self.drop_last)

    def __iter__(self) -> Iterator[Data]:
        order = _order(self.head_index.numel(), self.shuffle, self.generator,
                       self.head_index.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield Data(head_index=self.head_index[idx],
                       rel_type=self.rel_type[idx],
                       tail_index=self.tail_index[idx])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.head_index.numel()}, '
                f'batch_size={self.batch_size})')


class JointLoader:
    r"""Interleaves a recommendation loader and a knowledge-graph loader for
    joint training, as `KTUP <https://arxiv.org/abs/1902.06236>`_ does
    (its :obj:`joint_ratio` of :obj:`0.7` means 7 recommendation steps, then
    3 KG steps).

    One epoch is one pass over :obj:`rec_loader`: :obj:`rec_steps`
    recommendation batches, then :obj:`kg_steps` KG batches, and so on,
    including :obj:`kg_steps` KG batches after the last (possibly shorter)
    group of recommendation batches. :obj:`kg_loader` is restarted (and so
    reshuffled) whenever it runs out. Yields the batches of both loaders
    as they are; they are told apart by their fields (:obj:`user_index`
    or :obj:`head_index`).

    Args:
        rec_loader (iterable): The recommendation loader, *e.g.*
            :class:`InteractionLoader`.
        kg_loader (iterable): The KG loader, *e.g.* :class:`TripleLoader`.
        rec_steps (int, optional): Recommendation batches per group.
            (default: :obj:`7`)
        kg_steps (int, optional): KG batches per group.
            (default: :obj:`3`)
    """
    def __init__(self, rec_loader, kg_loader, rec_steps: int = 7,
                 kg_steps: int = 3) -> None:
        if not isinstance(rec_steps, int) or rec_steps < 1:
            raise ValueError(f"Invalid 'rec_steps' (got {rec_steps!r})")
        if not isinstance(kg_steps, int) or kg_steps < 0:
            raise ValueError(f"Invalid 'kg_steps' (got {kg_steps!r})")
        self.rec_loader = rec_loader
        self.kg_loader = kg_loader
        self.rec_steps = rec_steps
        self.kg_steps = kg_steps
        self._kg_iter: Optional[Iterator] = None
        # Where the KG stream stands: the random state its current pass
        # started from and the batches taken from it (see state_dict()).
        self._kg_pass_rng: Optional[Tensor] = None
        self._kg_taken = 0

    def __len__(self) -> int:
        num_rec = len(self.rec_loader)
        return num_rec + math.ceil(num_rec / self.rec_steps) * self.kg_steps

    def _next_kg(self) -> Data:
        if self._kg_iter is not None:
            batch = next(self._kg_iter, None)
            if batch is not None:
                self._kg_taken += 1
                return batch
        self._kg_pass_rng = self._get_rng_state()
        self._kg_iter = iter(self.kg_loader)
        batch = next(self._kg_iter, None)
        if batch is None:
            raise ValueError("'kg_loader' yields no batch but 'kg_steps' is "
                             f'{self.kg_steps}')
        self._kg_taken = 1
        return batch

    def state_dict(self) -> Dict[str, Any]:
        r"""The position of the KG stream, which runs across epochs: the
        state of the random generator its current pass was shuffled with
        and the number of batches taken from that pass.
        :class:`~pyg_recs.engine.Trainer` checkpoints it with the rest, so
        that a resumed run continues exactly."""
        return {'kg_pass_rng': self._kg_pass_rng, 'kg_taken': self._kg_taken}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        r"""Restores the position saved by :meth:`state_dict`: the current
        KG pass is redrawn from its saved random state and the batches
        already taken are skipped; the random generator is left as it
        was."""
        self._kg_iter, self._kg_pass_rng, self._kg_taken = None, None, 0
        if state.get('kg_pass_rng') is None:
            return
        now = self._get_rng_state()
        self._set_rng_state(state['kg_pass_rng'])
        try:
            self._kg_iter = iter(self.kg_loader)
            for _ in range(int(state['kg_taken'])):
                if next(self._kg_iter, None) is None:
                    raise ValueError("The saved KG position lies beyond the "
                                     "end of 'kg_loader'")
        finally:
            self._set_rng_state(now)
        self._kg_pass_rng = state['kg_pass_rng']
        self._kg_taken = int(state['kg_taken'])

    def _get_rng_state(self) -> Tensor:
        generator = getattr(self.kg_loader, 'generator', None)
        if generator is not None:
            return generator.get_state()
        return torch.get_rng_state()

    def _set_rng_state(self, state: Tensor) -> None:
        generator = getattr(self.kg_loader, 'generator', None)
        if generator is not None:
            generator.set_state(state.cpu())
        else:
            torch.set_rng_state(state.cpu())

    def __iter__(self) -> Iterator[Data]:
        step = 0
        for batch in self.rec_loader:
            yield batch
            step += 1
            if step == self.rec_steps:
                step = 0
                for _ in range(self.kg_steps):
                    yield self._next_kg()
        if step > 0:
            for _ in range(self.kg_steps):
                yield self._next_kg()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self)}, '
                f'rec_steps={self.rec_steps}, kg_steps={self.kg_steps})')


class RankingEvalLoader:
    r"""Iterates over the users with at least one label (*e.g.* a test
    interaction), in increasing order, for full ranking evaluation over all
    items.

    Yields :class:`~torch_geometric.data.Data` objects with
    :obj:`user_index` :obj:`[B]`, :obj:`edge_label_index` :obj:`[2, L]`
    (row: position of the user in :obj:`user_index`, column: a relevant
    item) and :obj:`exclude_index` :obj:`[2, M]` (same layout: the items not
    to rank for the user, *e.g.* the training items, and also the
    validation items when testing), ready for
    :meth:`pyg_recs.metrics.RankingMetrics.update_from_scores`. Repeated
    pairs are kept once; the pairs are grouped by user once, and every batch
    is sliced out with vectorised index operations.

    Args:
        user_index (torch.Tensor): The users of the labels.
        item_index (torch.Tensor): The relevant items.
        exclude_user (torch.Tensor, optional): The users of the pairs to
            exclude from ranking. (default: :obj:`None`)
        exclude_item (torch.Tensor, optional): The items to exclude.
            (default: :obj:`None`)
        num_users (int, optional): The number of users.
            (default: :obj:`None`)
        batch_size (int, optional): Users per mini-batch.
            (default: :obj:`1024`)
    """
    def __init__(
        self,
        user_index: Tensor,
        item_index: Tensor,
        exclude_user: Optional[Tensor] = None,
        exclude_item: Optional[Tensor] = None,
        num_users: Optional[int] = None,
        batch_size: int = 1024,
    ) -> None:
        self.batch_size = _check_batch_size(batch_size)
        user_index, item_index = user_index.view(-1), item_index.view(-1)
        if user_index.numel() != item_index.numel():
            raise ValueError(f"'user_index' and 'item_index' must be of the "
                             f'same size (got {user_index.numel()} and '
                             f'{item_index.numel()})')
        if (exclude_user is None) != (exclude_item is None):
            raise ValueError("'exclude_user' and 'exclude_item' must be "
                             'given together')
        device = user_index.device
        if exclude_user is None:
            exclude_user = torch.empty(0, dtype=torch.long, device=device)
            exclude_item = torch.empty(0, dtype=torch.long, device=device)
        exclude_user, exclude_item = exclude_user.view(-1), exclude_item.view(
            -1)
        if exclude_user.numel() != exclude_item.numel():
            raise ValueError(f"'exclude_user' and 'exclude_item' must be of "
                             f'the same size (got {exclude_user.numel()} and '
                             f'{exclude_item.numel()})')
        if num_users is None:
            num_users = 1 + max(
                int(user_index.max()) if user_index.numel() > 0 else -1,
                int(exclude_user.max()) if exclude_user.numel() > 0 else -1)
        self.num_users = int(num_users)

        self.label_ptr, self.label_item = _group_by_user(
            user_index.long(), item_index.long(), self.num_users)
        self.exclude_ptr, self.exclude_item = _group_by_user(
            exclude_user.long(), exclude_item.long(), self.num_users)
        count = self.label_ptr[1:] - self.label_ptr[:-1]
        self.users = (count > 0).nonzero().view(-1)

    def __len__(self) -> int:
        return math.ceil(self.users.numel() / self.batch_size)

    def __iter__(self) -> Iterator[Data]:
        for i in range(len(self)):
            user = self.users[i * self.batch_size:(i + 1) * self.batch_size]
            yield Data(
                user_index=user,
                edge_label_index=_gather(user, self.label_ptr,
                                         self.label_item),
                exclude_index=_gather(user, self.exclude_ptr,
                                      self.exclude_item),
            )

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.users.numel()} users, '
                f'batch_size={self.batch_size})')


def _group_by_user(user: Tensor, item: Tensor,
                   num_users: int) -> Tuple[Tensor, Tensor]:
    r"""Sorts the distinct (user, item) pairs by user and returns the
    offsets :obj:`ptr` of every user and the items."""
    if user.numel() > 0 and (int(user.min()) < 0
                             or int(user.max()) >= num_users):
        raise ValueError(f"User ids must be in [0, {num_users}) (got values "
                         f'in [{int(user.min())}, {int(user.max())}])')
    pairs = torch.unique(torch.stack([user, item]), dim=1)  # Sorted.
    count = torch.bincount(pairs[0], minlength=num_users)
    ptr = torch.zeros(num_users + 1, dtype=torch.long, device=user.device)
    ptr[1:] = torch.cumsum(count, 0)
    return ptr, pairs[1]


def _gather(user: Tensor, ptr: Tensor, values: Tensor) -> Tensor:
    r"""Returns the :obj:`[2, N]` (position in :obj:`user`, value) pairs of
    the users' segments :obj:`values[ptr[u]:ptr[u + 1]]`."""
    start = ptr[user]
    count = ptr[user + 1] - start
    total = int(count.sum())
    row = torch.repeat_interleave(
        torch.arange(user.numel(), device=user.device), count)
    offset = torch.arange(total, device=user.device) - torch.repeat_interleave(
        torch.cumsum(count, 0) - count, count)
    col = values[torch.repeat_interleave(start, count) + offset]
    return torch.stack([row, col])


__all__ = [
    'InteractionLoader',
    'TripleLoader',
    'JointLoader',
    'RankingEvalLoader',
]
