import os.path as osp
import warnings
from time import perf_counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recs.datasets.base import SafeInMemoryDataset

from pyg_recs.data.atomic import AtomicFileError, check_nonempty, read_atomic
from pyg_recs.data.split import (
    check_ratios,
    per_user_random_split,
    random_split_mask,
)
from pyg_recs.io import atomic_json_dump, atomic_torch_save

RawIds = Union[Tensor, List[str]]
Masks = Tuple[Tensor, Tensor, Tensor]

#: The edge types of the knowledge-aware recommendation graph.
RATES = ('user', 'rates', 'item')
ALIGNED = ('item', 'aligned_with', 'entity')
RELATION = ('entity', 'relation', 'entity')


class KGRecDataset(SafeInMemoryDataset):
    r"""Base of the datasets that hold one knowledge-aware
    :class:`~torch_geometric.data.HeteroData` (see
    :func:`build_kg_rec_data`): :meth:`process` reads it with
    :meth:`read_data`, applies the :obj:`pre_transform`, saves it
    atomically and writes its statistics to :obj:`stats.json`."""
    @property
    def processed_file_names(self) -> List[str]:
        return ['data.pt']

    def read_data(self) -> HeteroData:  # pragma: no cover
        raise NotImplementedError

    def process(self) -> None:
        t = perf_counter()
        data = self.read_data()
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        atomic_torch_save((data.to_dict(), None, HeteroData),
                          self.processed_paths[0])
        stats = kg_rec_stats(data)
        stats['seconds'] = round(perf_counter() - t, 3)
        atomic_json_dump(stats, osp.join(self.processed_dir, 'stats.json'))

    @property
    def num_users(self) -> int:
        return int(self._data['user'].num_nodes)

    @property
    def num_items(self) -> int:
        return int(self._data['item'].num_nodes)

    @property
    def num_entities(self) -> int:
        return int(self._data['entity'].num_nodes)

    @property
    def num_relations(self) -> int:
        return len(self._data.relation_names)


class AtomicKGDataset(KGRecDataset):
    r"""Knowledge-aware recommendation data in the atomic-file format of
    `RecBole <https://recbole.io/docs/user_guide/data/atomic_files.html>`_,
    as used by `KTUP <https://arxiv.org/abs/1902.06236>`_ (Cao *et al.*,
    WWW 2019) and other models that learn from user-item interactions and a
    knowledge graph (KG) together.

    Reads three tab-separated files with typed headers from
    :obj:`root/raw`: :obj:`{name}.inter` (:obj:`user_id:token`,
    :obj:`item_id:token`, optionally :obj:`rating:float` and
    :obj:`timestamp:float`), :obj:`{name}.kg` (:obj:`head_id:token`,
    :obj:`relation_id:token`, :obj:`tail_id:token`) and :obj:`{name}.link`
    (:obj:`item_id:token`, :obj:`entity_id:token`); :obj:`.item` and
    :obj:`.user` feature files are not read. It builds one
    :class:`~torch_geometric.data.HeteroData` once in :meth:`process`:

    * node types :obj:`'user'`, :obj:`'item'` and :obj:`'entity'`, each with
      :obj:`num_nodes` and :obj:`raw_id`, the original ids (for users and
      items an :obj:`int64` tensor when all ids are integers, else a list
      of :obj:`str`; for entities always a list of :obj:`str`);
    * :obj:`('user', 'rates', 'item')`: :obj:`edge_index`, :obj:`rating`
      and :obj:`time` (when in the file), and disjoint :obj:`train_mask`,
      :obj:`val_mask`, :obj:`test_mask` from a random split per user
      (:func:`~pyg_recs.data.split.per_user_random_split`);
    * :obj:`('item', 'aligned_with', 'entity')`: one edge per item to its
      entity, also stored as :obj:`data['item'].entity`;
    * :obj:`('entity', 'relation', 'entity')`: the KG triples as
      :obj:`edge_index` (head, tail) and :obj:`edge_type` (relation id),
      with :obj:`train_mask`, :obj:`val_mask`, :obj:`test_mask` for KG
      completion (:func:`~pyg_recs.data.split.random_split_mask`);
    * :obj:`relation_names`, the relation ids of the file in relation-id
      order.

    Users and items are those of :obj:`.inter`, numbered densely in sorted
    order of their original ids (numeric order when all ids are integers).
    Entities are those of :obj:`.kg` and :obj:`.link`, numbered the same
    way; as in the KTUP reference code, every item without an entity in
    :obj:`.link` gets an entity slot of its own after them (its
    :obj:`raw_id` is the empty string and :obj:`data['entity'].in_kg` is
    :obj:`False`), so that every item is aligned with exactly one entity.
    Repeated (user, item) pairs keep their first line; repeated triples
    are kept once. Interactions and triples stay in file order otherwise.

    The KG split defaults to the :obj:`7:1:2` of the KTUP reference
    preprocessing (:obj:`preprocessTriples.py`): recommendation models
    train on the training triples only, so that KG completion can be
    evaluated on triples never seen; pass :obj:`kg_ratios=(1.0, 0.0, 0.0)`
    to train on the whole KG.

    Malformed files raise :class:`~pyg_recs.data.atomic.AtomicFileError`
    naming the file, the 1-based line (the header is line 1) and the field:
    a missing or untyped header, a wrong number of fields, a rating that is
    not a finite number, an empty id, an item of :obj:`.link` that is not
    in :obj:`.inter`, or an item linked twice.

    Args:
        root (str): Root directory where the dataset should be saved; the
            raw files are read from :obj:`root/raw`.
        name (str): The file stem of the raw files (*e.g.*
            :obj:`'ml-100k'` for :obj:`ml-100k.inter`).
        ratios ((float, float, float), optional): The per-user training,
            validation and test shares of the interactions.
            (default: :obj:`(0.7, 0.1, 0.2)`)
        kg_ratios ((float, float, float), optional): The training,
            validation and test shares of the KG triples.
            (default: :obj:`(0.7, 0.1, 0.2)`)
        seed (int, optional): The random seed of both splits.
            (default: :obj:`2019`)
        strict (bool, optional): If set to :obj:`False`, surplus fields at
            the end of a line are dropped with a warning, as RecBole does.
            (default: :obj:`True`)
        transform (callable, optional): A function/transform that takes in
            a :class:`~torch_geometric.data.HeteroData` object and returns a
            transformed version, applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): A function/transform applied
            before saving to disk. (default: :obj:`None`)
        force_reload (bool, optional): Whether to re-process the dataset.
            (default: :obj:`False`)

    **STATS:**

    .. list-table::
        :widths: 16 10 10 10 10 10 10 10
        :header-rows: 1

        * - Name
          - #users
          - #items
          - #ratings
          - #entities
          - #relations
          - #triples
          - #linked items
        * - RecBole :obj:`test`
          - 171
          - 200
          - 6,017
          - 6,035
          - 24
          - 11,338
          - 198
        * - :obj:`ml-100k`
          - 943
          - 1,682
          - 100,000
          - 34,712
          - 24
          - 91,631
          - 1,598

    #entities counts the item-only slots: 6,033 + 2 and 34,628 + 84.
    RecBole's :obj:`test.inter` has a surplus field on its last line and
    needs :obj:`strict=False`.
    """
    url: Optional[str] = None

    def __init__(
        self,
        root: str,
        name: str,
        ratios: Sequence[float] = (0.7, 0.1, 0.2),
        kg_ratios: Sequence[float] = (0.7, 0.1, 0.2),
        seed: int = 2019,
        strict: bool = True,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        if not isinstance(name, str) or name == '' or osp.sep in name:
            raise ValueError(f"Invalid 'name' (got {name!r})")
        self.name = name
        self.ratios = check_ratios(ratios, 'ratios')
        self.kg_ratios = check_ratios(kg_ratios, 'kg_ratios')
        self.seed = int(seed)
        self.strict = bool(strict)
        super().__init__(root, transform, pre_transform,
                         force_reload=force_reload)
        self.load(self.processed_paths[0], data_cls=HeteroData)

    @property
    def processed_dir(self) -> str:
        ratios = '-'.join(f'{r:g}' for r in self.ratios)
        kg_ratios = '-'.join(f'{r:g}' for r in self.kg_ratios)
        tag = f'{self.name}_r{ratios}_kg{kg_ratios}_seed{self.seed}'
        if not self.strict:
            tag += '_lenient'
        return osp.join(self.root, 'processed', tag)

    @property
    def raw_file_names(self) -> List[str]:
        return [f'{self.name}.{ext}' for ext in ('inter', 'kg', 'link')]

    def download(self) -> None:
        raise FileNotFoundError(
            f"'{self.__class__.__name__}' has no source to download from: "
            f'put the RecBole atomic files {self.raw_file_names} into '
            f"'{self.raw_dir}'")

    def read_data(self) -> HeteroData:
        return read_atomic_kg(*self.raw_paths, ratios=self.ratios,
                              kg_ratios=self.kg_ratios, seed=self.seed,
                              strict=self.strict)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.name}, '
                f'num_users={self.num_users}, num_items={self.num_items}, '
                f'num_entities={self.num_entities}, '
                f'num_relations={self.num_relations})')


def read_atomic_kg(
    inter_path: str,
    kg_path: str,
    link_path: str,
    ratios: Sequence[float] = (0.7, 0.1, 0.2),
    kg_ratios: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 2019,
    strict: bool = True,
) -> HeteroData:
    r"""Reads RecBole's :obj:`.inter`, :obj:`.kg` and :obj:`.link` files
    into the :class:`~torch_geometric.data.HeteroData` of
    :class:`AtomicKGDataset` (see there)."""
    inter = read_atomic(inter_path, ['user_id', 'item_id'], strict=strict)
    kg = read_atomic(kg_path, ['head_id', 'relation_id', 'tail_id'],
                     strict=strict)
    link = read_atomic(link_path, ['item_id', 'entity_id'], strict=strict)
    types = inter.attrs['types']
    for name in ('user_id', 'item_id'):
        if types[name] != 'token':
            raise AtomicFileError(inter_path, 1, name,
                                  f"the column '{name}' must be of type "
                                  f"'token' (got '{types[name]}')")
    for name in ('rating', 'timestamp'):
        if name in types and types[name] != 'float':
            raise AtomicFileError(inter_path, 1, name,
                                  f"the column '{name}' must be of type "
                                  f"'float' (got '{types[name]}')")
    check_nonempty(inter, ['user_id', 'item_id'])
    check_nonempty(kg, ['head_id', 'relation_id', 'tail_id'])
    check_nonempty(link, ['item_id', 'entity_id'])
    if len(inter) == 0:
        raise AtomicFileError(inter_path, 2, None, 'the file holds no '
                              'interactions')
    if len(kg) == 0:
        raise AtomicFileError(kg_path, 2, None, 'the file holds no '
                              'triples; KTUP and TransH need at least one '
                              'relation')

    # Repeated (user, item) pairs keep their first line:
    inter = inter[~inter.duplicated(['user_id', 'item_id'], keep='first')]
    kg = kg[~kg.duplicated(['head_id', 'relation_id', 'tail_id'])]

    user, user_ids = encode_ids(inter['user_id'].to_numpy(dtype=object))
    item, item_ids = encode_ids(inter['item_id'].to_numpy(dtype=object))

    # Items of '.link' must be items of '.inter', each linked once:
    link_item = lookup_ids(item_ids, link['item_id'].to_numpy(dtype=object))
    if (link_item < 0).any():
        i = int(np.flatnonzero(link_item < 0)[0])
        raise AtomicFileError(
            link_path, int(link.index[i]), 'item_id',
            f"the item {link['item_id'].iloc[i]!r} is not an item of "
            f"'{osp.basename(inter_path)}'")
    dup = link['item_id'].duplicated(keep='first').to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raw = link['item_id'].iloc[i]
        first = int(link.index[(link['item_id'] == raw).to_numpy()][0])
        raise AtomicFileError(
            link_path, int(link.index[i]), 'item_id',
            f'the item {raw!r} is linked to a second entity (first on line '
            f'{first}); every item must have at most one entity')

    num_triples = len(kg)
    entity, entity_ids = encode_ids(
        np.concatenate([
            kg['head_id'].to_numpy(dtype=object),
            kg['tail_id'].to_numpy(dtype=object),
            link['entity_id'].to_numpy(dtype=object),
        ]), numeric=False)
    head = entity[:num_triples]
    tail = entity[num_triples:2 * num_triples]
    link_entity = entity[2 * num_triples:]
    relation, relation_names = encode_ids(
        kg['relation_id'].to_numpy(dtype=object))
    if isinstance(relation_names, Tensor):
        relation_names = [str(r) for r in relation_names.tolist()]

    item_entity = np.full(len(item_ids), -1, dtype=np.int64)
    item_entity[link_item] = link_entity
    in_kg = np.zeros(len(entity_ids), dtype=bool)
    in_kg[head] = True
    in_kg[tail] = True
    outside = ~in_kg[link_entity]
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        warnings.warn(
            f"'{link_path}': {int(outside.sum())} of {len(link_entity)} "
            f"linked entities occur in no triple of "
            f"'{osp.basename(kg_path)}' (the first on line "
            f"{int(link.index[i])}, {link['entity_id'].iloc[i]!r}); their "
            f"items get no knowledge from the KG", stacklevel=2)

    rec_masks = per_user_random_split(torch.from_numpy(user), ratios, seed,
                                      num_users=len(user_ids))
    kg_masks = random_split_mask(num_triples, kg_ratios, seed)

    rating = inter['rating'].to_numpy() if 'rating' in types else None
    time_ = inter['timestamp'].to_numpy() if 'timestamp' in types else None
    return build_kg_rec_data(
        user=user, item=item, rating=rating, time=time_, rec_masks=rec_masks,
        head=head, relation=relation, tail=tail, kg_masks=kg_masks,
        item_entity=item_entity, user_ids=user_ids, item_ids=item_ids,
        entity_ids=list(entity_ids), relation_names=relation_names)


def build_kg_rec_data(
    user: np.ndarray,
    item: np.ndarray,
    rating: Optional[np.ndarray],
    time: Optional[np.ndarray],
    rec_masks: Masks,
    head: np.ndarray,
    relation: np.ndarray,
    tail: np.ndarray,
    kg_masks: Masks,
    item_entity: np.ndarray,
    user_ids: RawIds,
    item_ids: RawIds,
    entity_ids: List[str],
    relation_names: List[str],
) -> HeteroData:
    r"""Assembles the :class:`~torch_geometric.data.HeteroData` of
    :class:`AtomicKGDataset` from dense indices. Items whose
    :obj:`item_entity` is :obj:`-1` get entity slots of their own after the
    :obj:`len(entity_ids)` KG entities."""
    num_users, num_items = len(user_ids), len(item_ids)
    num_kg_entities = len(entity_ids)
    item_entity = np.asarray(item_entity, dtype=np.int64).copy()
    unlinked = item_entity < 0
    item_entity[unlinked] = num_kg_entities + np.arange(int(unlinked.sum()))
    num_entities = num_kg_entities + int(unlinked.sum())

    data = HeteroData()
    data['user'].num_nodes = num_users
    data['user'].raw_id = user_ids
    data['item'].num_nodes = num_items
    data['item'].raw_id = item_ids
    data['item'].entity = torch.from_numpy(item_entity)
    data['entity'].num_nodes = num_entities
    data['entity'].raw_id = list(entity_ids) + [''] * (num_entities -
                                                       num_kg_entities)
    in_kg = torch.zeros(num_entities, dtype=torch.bool)
    in_kg[:num_kg_entities] = True
    data['entity'].in_kg = in_kg

    store = data[RATES]
    store.edge_index = torch.stack([
        torch.as_tensor(np.asarray(user, dtype=np.int64)),
        torch.as_tensor(np.asarray(item, dtype=np.int64)),
    ])
    if rating is not None:
        store.rating = torch.as_tensor(np.asarray(rating, dtype=np.float32))
    if time is not None:
        time = np.asarray(time, dtype=np.float64)
        if np.all(time == np.round(time)):
            store.time = torch.from_numpy(time.astype(np.int64))
        else:
            store.time = torch.from_numpy(time)
    store.train_mask, store.val_mask, store.test_mask = rec_masks

    data[ALIGNED].edge_index = torch.stack(
        [torch.arange(num_items),
         torch.from_numpy(item_entity)])

    store = data[RELATION]
    store.edge_index = torch.stack([
        torch.as_tensor(np.asarray(head, dtype=np.int64)),
        torch.as_tensor(np.asarray(tail, dtype=np.int64)),
    ])
    store.edge_type = torch.as_tensor(np.asarray(relation, dtype=np.int64))
    store.train_mask, store.val_mask, store.test_mask = kg_masks
    data.relation_names = list(relation_names)
    return data


def kg_rec_stats(data: HeteroData) -> Dict[str, int]:
    r"""Counts of a :class:`~torch_geometric.data.HeteroData` built by
    :func:`build_kg_rec_data` (users, items, entities, relations, splits)."""
    rates, kg = data[RATES], data[RELATION]
    in_kg = data['entity'].in_kg
    return {
        'num_users': int(data['user'].num_nodes),
        'num_items': int(data['item'].num_nodes),
        'num_interactions': int(rates.edge_index.size(1)),
        'num_train': int(rates.train_mask.sum()),
        'num_val': int(rates.val_mask.sum()),
        'num_test': int(rates.test_mask.sum()),
        'num_entities': int(data['entity'].num_nodes),
        'num_kg_entities': int(in_kg.sum()),
        'num_linked_items': int(in_kg[data['item'].entity].sum()),
        'num_relations': len(data.relation_names),
        'num_triples': int(kg.edge_index.size(1)),
        'num_kg_train': int(kg.train_mask.sum()),
        'num_kg_val': int(kg.val_mask.sum()),
        'num_kg_test': int(kg.test_mask.sum()),
    }


def encode_ids(values: np.ndarray,
               numeric: bool = True) -> Tuple[np.ndarray, RawIds]:
    r"""Numbers the distinct ids in :obj:`values` densely in sorted order.

    Returns the index of every value and the sorted distinct raw ids: an
    :obj:`int64` tensor if :obj:`numeric` and every id is an integer written
    canonically (so that it maps back to the same string), else a list of
    :obj:`str` in string order.
    """
    import pandas as pd

    strs = np.asarray(values, dtype=object).astype(str)
    if numeric and strs.size > 0:
        try:
            ints = strs.astype(np.int64)
        except (ValueError, OverflowError):
            ints = None
        if ints is not None and bool((ints.astype(str) == strs).all()):
            index, uniq = pd.factorize(ints, sort=True)
            return (index.astype(np.int64),
                    torch.from_numpy(np.asarray(uniq, dtype=np.int64)))
    index, uniq = pd.factorize(strs, sort=True)
    return index.astype(np.int64), [str(v) for v in uniq]


def lookup_ids(ids: RawIds, values: np.ndarray) -> np.ndarray:
    r"""Returns the index of every raw id in :obj:`values` within the
    vocabulary :obj:`ids` of :func:`encode_ids`, or :obj:`-1` if absent."""
    import pandas as pd

    if isinstance(ids, Tensor):
        ids = ids.numpy().astype(str)
    strs = np.asarray(values, dtype=object).astype(str)
    return pd.Index(np.asarray(ids, dtype=object)).get_indexer(
        strs.astype(object)).astype(np.int64)


__all__ = [
    'AtomicKGDataset',
    'read_atomic_kg',
    'build_kg_rec_data',
    'kg_rec_stats',
    'encode_ids',
    'lookup_ids',
]
