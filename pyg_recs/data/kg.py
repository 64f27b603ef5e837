r"""Readers of knowledge-aware recommendation data: RecBole atomic files
(:obj:`.inter`, :obj:`.kg`, :obj:`.link`) and the KTUP reference layout,
into one :class:`~torch_geometric.data.HeteroData` with users, items and KG
entities (:data:`RATES`, :data:`ALIGNED`, :data:`RELATION`) and the split
masks. The datasets of :mod:`pyg_recs.datasets` call them."""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recs.data.atomic import (
    AtomicFileError,
    check_nonempty,
    read_atomic,
    read_tsv,
)
from pyg_recs.data.split import per_user_random_split, random_split_mask

RawIds = Union[Tensor, List[str]]
Masks = Tuple[Tensor, Tensor, Tensor]

#: The edge types of the knowledge-aware recommendation graph.
RATES = ('user', 'rates', 'item')
ALIGNED = ('item', 'aligned_with', 'entity')
RELATION = ('entity', 'relation', 'entity')
#: The split files of the KTUP layout.
SPLITS = ('train', 'valid', 'test')


# RecBole atomic files ########################################################

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


# The KTUP reference layout ##################################################

def read_ktup(folder: str, strict: bool = True) -> HeteroData:
    r"""Reads a KTUP data folder (see :class:`KTUPDataset`) into a
    :class:`~torch_geometric.data.HeteroData`."""
    user_map = _read_map(osp.join(folder, 'u_map.dat'), strict)
    item_map = _read_map(osp.join(folder, 'i_map.dat'), strict)
    entity_map = _read_map(osp.join(folder, 'kg', 'e_map.dat'), strict)
    relation_map = _read_map(osp.join(folder, 'kg', 'r_map.dat'), strict)

    parts = []
    for split in SPLITS:
        path = osp.join(folder, f'{split}.dat')
        if split == 'valid' and not osp.exists(path):
            continue
        df = read_tsv(path, ['user', 'item', 'rating'],
                      ['int', 'int', 'float'], strict=strict)
        user = _to_index(user_map, df, 'user', 'u_map.dat')
        item = _to_index(item_map, df, 'item', 'i_map.dat')
        parts.append((split, user, item, df['rating'].to_numpy()))
    user, item, rating, rec_masks = _concat(parts)

    parts = []
    for split in SPLITS:
        path = osp.join(folder, 'kg', f'{split}.dat')
        if split == 'valid' and not osp.exists(path):
            continue
        df = read_tsv(path, ['head', 'tail', 'relation'],
                      ['int', 'int', 'int'], strict=strict)
        head = _to_index(entity_map, df, 'head', 'kg/e_map.dat')
        tail = _to_index(entity_map, df, 'tail', 'kg/e_map.dat')
        relation = _to_index(relation_map, df, 'relation', 'kg/r_map.dat')
        parts.append((split, head, tail, relation))
    head, tail, relation, kg_masks = _concat(parts)

    # Items aligned with entities through their original ids and URIs:
    link = read_tsv(osp.join(folder, 'i2kg_map.tsv'),
                    ['item', 'name', 'entity'], ['token', 'token', 'token'],
                    strict=strict)
    link_item = lookup_ids(item_map[1], link['item'].to_numpy(dtype=object))
    link_entity = lookup_ids(entity_map[1],
                             link['entity'].to_numpy(dtype=object))
    keep = (link_item >= 0) & (link_entity >= 0)
    link_item, link_entity = link_item[keep], link_entity[keep]
    _, first = np.unique(link_item, return_index=True)
    item_entity = np.full(len(item_map[1]), -1, dtype=np.int64)
    item_entity[link_item[first]] = link_entity[first]

    return build_kg_rec_data(
        user=user, item=item, rating=rating, time=None, rec_masks=rec_masks,
        head=head, relation=relation, tail=tail, kg_masks=kg_masks,
        item_entity=item_entity, user_ids=_raw_ids(user_map[1]),
        item_ids=_raw_ids(item_map[1]), entity_ids=list(entity_map[1]),
        relation_names=list(relation_map[1]))


def _read_map(path: str, strict: bool) -> Tuple[np.ndarray, List[str]]:
    r"""Reads an :obj:`id  original_id` file and returns the sorted ids and
    the original ids in that order."""
    df = read_tsv(path, ['id', 'raw_id'], ['int', 'token'], strict=strict)
    ids = df['id'].to_numpy()
    dup = df['id'].duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise AtomicFileError(path, int(df.index[i]), 'id',
                              f'the id {int(ids[i])} appears twice')
    order = np.argsort(ids, kind='stable')
    return ids[order], [str(v) for v in df['raw_id'].to_numpy()[order]]


def _to_index(id_map: Tuple[np.ndarray, List[str]], df, column: str,
              map_name: str) -> np.ndarray:
    ids = id_map[0]
    values = df[column].to_numpy()
    index = np.searchsorted(ids, values)
    found = index < ids.size
    found[found] = ids[index[found]] == values[found]
    if not found.all():
        i = int(np.flatnonzero(~found)[0])
        raise AtomicFileError(df.attrs['path'], int(df.index[i]), column,
                              f'the id {int(values[i])} is not in '
                              f"'{map_name}'")
    return index.astype(np.int64)


def _concat(parts) -> tuple:
    masks = {
        split: np.concatenate([
            np.full(part[1].size, part[0] == split, dtype=bool)
            for part in parts
        ])
        for split in SPLITS
    }
    columns = [np.concatenate([part[i] for part in parts]) for i in (1, 2, 3)]
    mask_tensors = tuple(torch.from_numpy(masks[split]) for split in SPLITS)
    return (*columns, mask_tensors)


def _raw_ids(raw: List[str]):
    r"""The original ids as an :obj:`int64` tensor if all are integers,
    else as the list of :obj:`str`."""
    strs = np.asarray(raw, dtype=object).astype(str)
    if isinstance(encode_ids(strs)[1], Tensor):
        return torch.from_numpy(strs.astype(np.int64))
    return list(raw)


__all__ = [
    'RATES',
    'ALIGNED',
    'RELATION',
    'read_atomic_kg',
    'read_ktup',
    'build_kg_rec_data',
    'kg_rec_stats',
    'encode_ids',
    'lookup_ids',
]
