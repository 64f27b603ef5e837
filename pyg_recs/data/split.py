r"""Data splits and negative sampling for knowledge-aware recommendation, as
pure, vectorised :obj:`torch` functions.

:func:`per_user_random_split` follows the preprocessing of
`KTUP <https://arxiv.org/abs/1902.06236>`_ (:obj:`splitRatingData` in the
reference code): every user's interactions are shuffled and the first
:math:`\lceil 0.7 n_u \rceil` go to training, the next
:math:`\lceil 0.1 n_u \rceil` to validation and the rest to testing, with at
least one test interaction where the user has two or more. Unlike the
reference, a user with a single interaction keeps it for training (the
reference would put it into the test set, where a model cannot know the
user).

:func:`sample_negatives` draws items uniformly from those a user has *not*
interacted with, exactly and without rejection loops: with the user's known
positives sorted, :math:`p_0 < p_1 < \ldots < p_{d-1}`, the :math:`r`-th
non-positive item is

.. math::
    r + |\{ j : p_j - j \le r \}|,

one binary search in a sorted index built once by :func:`negative_index`.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

Masks = Tuple[Tensor, Tensor, Tensor]


def check_ratios(ratios: Sequence[float], name: str = 'ratios') -> tuple:
    r"""Checks that :obj:`ratios` are three non-negative
    :obj:`(train, val, test)` shares summing to one, with a positive training
    share, and returns them as a tuple of floats."""
    try:
        out = tuple(float(r) for r in ratios)
    except TypeError:
        raise TypeError(f"'{name}' must be a sequence of three floats "
                        f'(got {ratios!r})') from None
    if (len(out) != 3 or any(not math.isfinite(r) or r < 0 for r in out)
            or out[0] <= 0 or abs(sum(out) - 1.0) > 1e-6):
        raise ValueError(f"Invalid '{name}' (got {ratios!r}); expected three "
                         f'non-negative (train, val, test) shares that sum '
                         f'to 1, with a positive training share')
    return out


def _generator(seed: Optional[int], device: torch.device):
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(int(seed))


def per_user_random_split(
    user: Tensor,
    ratios: Sequence[float] = (0.7, 0.1, 0.2),
    seed: Optional[int] = None,
    num_users: Optional[int] = None,
) -> Masks:
    r"""Splits interactions randomly *per user* into training, validation
    and test masks (see the module description for the counts).

    Every user with at least one interaction keeps at least one training
    interaction; every user with two or more keeps at least one test
    interaction if the test share is positive.

    Args:
        user (torch.Tensor): The user of every interaction,
            :obj:`[num_interactions]`.
        ratios ((float, float, float), optional): The training, validation
            and test shares. (default: :obj:`(0.7, 0.1, 0.2)`)
        seed (int, optional): The random seed; the same seed gives the same
            split. :obj:`None` uses PyTorch's global generator.
            (default: :obj:`None`)
        num_users (int, optional): The number of users.
            (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor): Disjoint boolean
        :obj:`train_mask`, :obj:`val_mask` and :obj:`test_mask` covering all
        interactions.
    """
    r_train, r_val, r_test = check_ratios(ratios)
    user = user.view(-1).long()
    n = user.numel()
    if n > 0 and int(user.min()) < 0:
        raise ValueError(f"'user' must hold non-negative ids "
                         f'(got {int(user.min())})')
    if num_users is None:
        num_users = int(user.max()) + 1 if n > 0 else 0
    device = user.device

    # One sort of unique keys (user, random rank) groups the interactions by
    # user in random order:
    noise = torch.randperm(n, generator=_generator(seed, device),
                           device=device)
    order = torch.sort(user * max(n, 1) + noise).indices
    count = torch.bincount(user, minlength=num_users)
    start = torch.cumsum(count, 0) - count
    rank = torch.empty_like(user)
    rank[order] = torch.arange(n, device=device) - start[user[order]]

    count_f = count.to(torch.float64)
    n_train = torch.ceil(count_f * r_train - 1e-9).long()
    n_val = torch.ceil(count_f * r_val - 1e-9).long()
    reserve = 1 if r_test > 0 else 0
    n_train = torch.minimum(n_train.clamp(min=1),
                            (count - reserve).clamp(min=1))
    n_val = torch.minimum(n_val, (count - n_train - reserve).clamp(min=0))

    n_train, n_val = n_train[user], n_val[user]
    train_mask = rank < n_train
    val_mask = ~train_mask & (rank < n_train + n_val)
    test_mask = ~train_mask & ~val_mask
    return train_mask, val_mask, test_mask


def random_split_mask(
    num: int,
    ratios: Sequence[float] = (0.7, 0.1, 0.2),
    seed: Optional[int] = None,
    device: Optional[torch.device] = None,
) -> Masks:
    r"""Splits :obj:`num` examples (*e.g.* knowledge-graph triples) randomly
    into training, validation and test masks of
    :obj:`round(num * val_share)` validation and
    :obj:`round(num * test_share)` test examples.

    Args:
        num (int): The number of examples.
        ratios ((float, float, float), optional): The training, validation
            and test shares. (default: :obj:`(0.7, 0.1, 0.2)`)
        seed (int, optional): The random seed. (default: :obj:`None`)
        device (torch.device, optional): The device of the masks.
            (default: :obj:`None`)
    """
    _, r_val, r_test = check_ratios(ratios)
    num = int(num)
    if num < 0:
        raise ValueError(f"Invalid 'num' (got {num})")
    device = torch.device('cpu') if device is None else torch.device(device)
    n_val = int(round(num * r_val))
    n_test = min(int(round(num * r_test)), num - n_val)
    perm = torch.randperm(num, generator=_generator(seed, device),
                          device=device)
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(num, device=device)
    n_train = num - n_val - n_test
    train_mask = rank < n_train
    val_mask = ~train_mask & (rank < n_train + n_val)
    test_mask = rank >= n_train + n_val
    return train_mask, val_mask, test_mask


def negative_index(user: Tensor, item: Tensor, num_items: int) -> Tensor:
    r"""Builds the sorted index of known positives that
    :func:`sample_negatives` searches: one :obj:`int64` key
    :math:`u \cdot |\mathcal{I}| + p_j - j` per distinct (user, item) pair,
    where :math:`p_j` is the user's :math:`j`-th positive item in increasing
    order. Duplicate pairs are counted once.

    Args:
        user (torch.Tensor): The users of the known positives.
        item (torch.Tensor): Their items, in :obj:`[0, num_items)`.
        num_items (int): The number of items.
    """
    user, item = user.view(-1).long(), item.view(-1).long()
    if user.numel() != item.numel():
        raise ValueError(f"'user' and 'item' must be of the same size (got "
                         f'{user.numel()} and {item.numel()})')
    num_items = int(num_items)
    if item.numel() > 0 and (int(item.min()) < 0
                             or int(item.max()) >= num_items):
        raise ValueError(f"'item' must hold ids in [0, {num_items}) (got "
                         f'values in [{int(item.min())}, {int(item.max())}])')
    if user.numel() > 0 and int(user.min()) < 0:
        raise ValueError(f"'user' must hold non-negative ids "
                         f'(got {int(user.min())})')
    key = torch.unique(user * num_items + item)  # Sorted.
    owner = torch.div(key, num_items, rounding_mode='floor')
    pos = torch.arange(key.numel(), device=key.device)
    first = torch.ones_like(key, dtype=torch.bool)
    first[1:] = owner[1:] != owner[:-1]
    start = torch.cummax(torch.where(first, pos, torch.zeros_like(pos)),
                         0).values if key.numel() > 0 else pos
    return key - (pos - start)


def sample_negatives(
    user: Tensor,
    num_items: int,
    positive: Tensor,
    num_samples: int = 1,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    r"""Draws items uniformly at random from those each user has *not*
    interacted with (exact, no rejection loop; see the module description).

    Args:
        user (torch.Tensor): The users to draw negatives for, :obj:`[B]`.
        num_items (int): The number of items.
        positive (torch.Tensor): The known positives, either as a
            :obj:`[2, num_positives]` tensor of (user, item) pairs or as the
            1-D index returned by :func:`negative_index` for the same
            :obj:`num_items` (faster when sampling repeatedly).
        num_samples (int, optional): Negatives per user. (default: :obj:`1`)
        generator (torch.Generator, optional): The random generator.
            (default: :obj:`None`)

    Returns:
        torch.Tensor: The negative items, :obj:`[B]` if
        :obj:`num_samples == 1`, else :obj:`[B, num_samples]`.

    Raises:
        ValueError: If a user has interacted with every item.
    """
    num_items = int(num_items)
    if num_samples < 1:
        raise ValueError(f"Invalid 'num_samples' (got {num_samples})")
    if positive.dim() == 2:
        if positive.size(0) != 2:
            raise ValueError(f"'positive' must be of shape [2, num_positives]"
                             f' or a 1-D index (got {tuple(positive.size())})')
        index = negative_index(positive[0], positive[1], num_items)
    elif positive.dim() == 1:
        index = positive.long()
    else:
        raise ValueError(f"'positive' must be of shape [2, num_positives] or "
                         f'a 1-D index (got {tuple(positive.size())})')
    index = index.to(user.device)
    user = user.view(-1).long()
    if num_samples > 1:
        user = user.view(-1, 1).expand(-1, num_samples).reshape(-1)

    base = user * num_items
    lo = torch.searchsorted(index, base)
    num_pos = torch.searchsorted(index, base + num_items) - lo
    free = num_items - num_pos
    if bool((free <= 0).any()):
        bad = user[free <= 0][0]
        raise ValueError(f"User {int(bad)} has interacted with all "
                         f'{num_items} items: there is no negative to sample')
    rand = torch.rand(user.numel(), generator=generator, device=user.device,
                      dtype=torch.float64)
    r = torch.minimum((rand * free).long(), free - 1)
    skip = torch.searchsorted(index, base + r, right=True) - lo
    out = r + skip
    return out if num_samples == 1 else out.view(-1, num_samples)


__all__ = [
    'check_ratios',
    'per_user_random_split',
    'random_split_mask',
    'negative_index',
    'sample_negatives',
]
