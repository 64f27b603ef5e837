import os.path as osp
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from pyg_recs.datasets.base import SafeInMemoryDataset, safe_torch_load

from pyg_recs.data.safe_pickle import safe_load
from pyg_recs.data.session_graph import flatten_sessions, sessions_to_graphs
from pyg_recs.io import atomic_json_dump, atomic_torch_save

Examples = Tuple[List[List[int]], List[int]]

SPLITS = ('train', 'valid', 'test')
VAL_SPLITS = ('last', 'random')


class SessionDataset(SafeInMemoryDataset):
    r"""Session-based recommendation data in the format distributed with
    `SR-GNN <https://github.com/CRIPAC-DIG/SR-GNN>`_ and most later papers
    (NARM, STAMP, GCE-GNN, ...): two pickles :obj:`train.txt` and
    :obj:`test.txt` in :obj:`root/raw`, each holding a tuple
    :obj:`(list_of_sessions, list_of_next_items)` of prefix examples.

    Every example becomes a session graph (see
    :func:`pyg_recs.data.sessions_to_graphs`) built once in :meth:`process`.
    Item ids are remapped to :obj:`0, ..., num_items - 1` in sorted order of
    the original ids (:obj:`item_ids[i]` is the original id of item
    :obj:`i`); for the usual 1-based SR-GNN files this is :obj:`id - 1`.
    The last :obj:`val_ratio` of the training examples (the most recent
    ones in these files) form the :obj:`'valid'` split used for model
    selection; :obj:`'test'` is only for reporting. With
    :obj:`val_split='random'` a random :obj:`val_ratio` share of the
    training examples (drawn with a fixed seed) is held out instead, as in
    the SR-GNN reference code's :obj:`split_validation`: the most recent
    sessions, the closest to the test period, then stay in training.

    Pickles are read with a restricted unpickler that admits only lists,
    tuples, ints and strs.

    Args:
        root (str): Root directory where the dataset should be saved.
        split (str, optional): :obj:`'train'`, :obj:`'valid'` or
            :obj:`'test'`. (default: :obj:`'train'`)
        val_ratio (float, optional): The share of training examples held
            out for validation. (default: :obj:`0.1`)
        transform (callable, optional): A function/transform that takes in
            a :class:`~torch_geometric.data.Data` object and returns a
            transformed version, applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): A function/transform applied
            before saving to disk. (default: :obj:`None`)
        force_reload (bool, optional): Whether to re-process the dataset.
            (default: :obj:`False`)
        val_split (str, optional): :obj:`'last'` holds out the most recent
            training examples for validation, :obj:`'random'` a random
            share of them (seed :obj:`0`). (default: :obj:`'last'`)
    """
    url: Optional[str] = None

    def __init__(
        self,
        root: str,
        split: str = 'train',
        val_ratio: float = 0.1,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        force_reload: bool = False,
        val_split: str = 'last',
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"Invalid 'split' (got '{split}'); expected one "
                             f"of {SPLITS}")
        if not 0.0 <= val_ratio < 1.0:
            raise ValueError(f"Invalid 'val_ratio' (got {val_ratio}); "
                             f"expected a value in [0, 1)")
        if val_split not in VAL_SPLITS:
            raise ValueError(f"Invalid 'val_split' (got {val_split!r}); "
                             f"expected one of {VAL_SPLITS}")
        self.split = split
        self.val_ratio = val_ratio
        self.val_split = val_split
        super().__init__(root, transform, pre_transform,
                         force_reload=force_reload)
        self.load(self.processed_paths[SPLITS.index(split)])
        meta = safe_torch_load(self.processed_paths[3])
        self.item_ids: Tensor = meta['item_ids']
        self.num_items: int = int(self.item_ids.numel())

    @property
    def val_tag(self) -> str:
        r"""The validation part of the processed folder's name, e.g.
        :obj:`'val0.1'` or :obj:`'val0.1_random'`."""
        tag = f'val{self.val_ratio:g}'
        return tag if self.val_split == 'last' else f'{tag}_{self.val_split}'

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, f'processed_{self.val_tag}')

    @property
    def raw_file_names(self) -> List[str]:
        return ['train.txt', 'test.txt']

    @property
    def processed_file_names(self) -> List[str]:
        return ['train.pt', 'valid.pt', 'test.pt', 'items.pt']

    def download(self) -> None:
        raise FileNotFoundError(
            f"'{self.__class__.__name__}' has no public source to download "
            f"from: put the SR-GNN pickles {self.raw_file_names} into "
            f"'{self.raw_dir}'")

    def read_examples(self) -> Dict[str, Examples]:
        r"""Reads the raw files into :obj:`{'train': (sessions, targets),
        'test': (sessions, targets)}` with original item ids, where
        :obj:`sessions` is a list of item id lists or the flat
        :obj:`(items, ptr)` form of :func:`pyg_recs.data.flatten_sessions`.
        Subclasses that parse other raw formats override this method.
        """
        out = {}
        for name, path in zip(['train', 'test'], self.raw_paths):
            out[name] = check_examples(safe_load(path), path)
        return out

    def process(self) -> None:
        examples = self.read_examples()
        # Everything below works on the flat form (items, ptr, targets):
        flat = {}
        for name in ('train', 'test'):
            sessions, targets = examples.pop(name)
            items, ptr = flatten_sessions(sessions)
            del sessions
            flat[name] = (items, ptr, np.asarray(targets, dtype=np.int64))
        del examples

        # Remap item ids densely over everything seen in the raw data:
        item_ids = np.unique(np.concatenate([
            part for name in ('train', 'test')
            for part in (flat[name][0], flat[name][2])
        ]))

        unseen = _unseen_items(flat['train'], flat['test'])
        if unseen['num_items'] > 0:
            warnings.warn(
                f"'{self.root}': {unseen['num_items']} items of the test "
                f"split never occur in training ({unseen['num_clicks']} "
                f"clicks, {unseen['num_targets']} targets); they get "
                f"untrained embeddings and those targets count as misses",
                stacklevel=2)

        items, ptr, targets = flat.pop('train')
        num_valid = int(round(targets.size * self.val_ratio))
        num_train = targets.size - num_valid
        if self.val_split == 'random':
            # Reorder so that a random share comes last, keeping the order
            # of the examples within each part:
            valid = np.zeros(targets.size, dtype=bool)
            rng = np.random.default_rng(0)
            valid[rng.choice(targets.size, num_valid, replace=False)] = True
            order = np.concatenate([np.flatnonzero(~valid),
                                    np.flatnonzero(valid)])
            items, ptr, targets = _take((items, ptr, targets), order)
        cut = int(ptr[num_train])
        parts = {
            'train': (items[:cut], ptr[:num_train + 1], targets[:num_train]),
            'valid': (items[cut:], ptr[num_train:] - cut,
                      targets[num_train:]),
            'test': flat.pop('test'),
        }
        del items, ptr, targets
        sizes = {split: int(parts[split][2].size) for split in SPLITS}
        for i, split in enumerate(SPLITS):
            items, ptr, targets = parts.pop(split)
            items = np.searchsorted(item_ids, items)
            targets = np.searchsorted(item_ids, targets)
            data, slices = sessions_to_graphs((items, ptr), targets)
            del items, ptr, targets
            if self.pre_transform is not None:
                data_list = [
                    self.pre_transform(d)
                    for d in _separate_all(data, slices, sizes[split])
                ]
                data, slices = self.collate(data_list)
            self.save_collated(data, slices, self.processed_paths[i])
            del data, slices
        atomic_torch_save({'item_ids': torch.from_numpy(item_ids)},
                          self.processed_paths[3])
        atomic_json_dump(sizes | {'num_items': int(item_ids.size),
                                  'unseen_test': unseen},
                         osp.join(self.processed_dir, 'stats.json'))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self)}, '
                f'split={self.split}, num_items={self.num_items})')


def _take(flat, index: np.ndarray):
    r"""The examples :obj:`index` of the flat form
    :obj:`(items, ptr, targets)`, in that order."""
    items, ptr, targets = flat
    lengths = np.diff(ptr)[index]
    new_ptr = np.zeros(index.size + 1, dtype=ptr.dtype)
    np.cumsum(lengths, out=new_ptr[1:])
    # Position j of the output reads ptr[index[i]] + (j - new_ptr[i]):
    shift = np.repeat(ptr[index] - new_ptr[:-1], lengths)
    gather = np.arange(int(new_ptr[-1]), dtype=ptr.dtype) + shift
    return items[gather], new_ptr, targets[index]


def _unseen_items(train, test) -> Dict[str, int]:
    r"""Counts the items of the test split (clicks and targets) that never
    occur in the training examples."""
    seen = np.unique(np.concatenate([train[0], train[2]]))
    click = ~np.isin(test[0], seen)
    target = ~np.isin(test[2], seen)
    items = np.unique(np.concatenate([test[0][click], test[2][target]]))
    return {'num_items': int(items.size), 'num_clicks': int(click.sum()),
            'num_targets': int(target.sum())}


def check_examples(obj: object, path: str) -> Examples:
    r"""Checks that :obj:`obj` is an SR-GNN example tuple
    :obj:`(sessions, targets)` and returns it, or raises a
    :class:`ValueError` naming the file and the offending example.
    """
    if (not isinstance(obj, (tuple, list)) or len(obj) != 2
            or not isinstance(obj[0], (list, tuple))
            or not isinstance(obj[1], (list, tuple))):
        raise ValueError(f"'{path}' is not an SR-GNN example file: expected "
                         f"a pair (list_of_sessions, list_of_next_items), "
                         f"got {type(obj).__name__}")
    sessions, targets = obj
    if len(sessions) != len(targets):
        raise ValueError(f"'{path}' has {len(sessions)} sessions but "
                         f"{len(targets)} targets")
    if len(sessions) == 0:
        raise ValueError(f"'{path}' holds no examples")
    for i, (session, target) in enumerate(zip(sessions, targets)):
        if not isinstance(session, (list, tuple)) or len(session) == 0:
            raise ValueError(f"'{path}', example {i}: the session must be a "
                             f"non-empty list of item ids (got {session!r})")
        if not _is_id(target):
            raise ValueError(f"'{path}', example {i}: the target must be a "
                             f"non-negative int item id (got {target!r})")
        for item in session:
            if not _is_id(item):
                raise ValueError(
                    f"'{path}', example {i}: item ids must be non-negative "
                    f"ints below 2**63 (got {item!r})")
    return list(sessions), list(targets)


def _is_id(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value < 2**63)


def _separate_all(data: Data, slices: Dict[str, Tensor],
                  num: int) -> Sequence[Data]:
    dataset = InMemoryDataset.__new__(InMemoryDataset)
    InMemoryDataset.__init__(dataset)
    dataset.data, dataset.slices = data, slices
    return [dataset.get(i) for i in range(num)]
