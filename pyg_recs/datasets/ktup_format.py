import os.path as osp
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recs.data.atomic import AtomicFileError, read_tsv
from pyg_recs.datasets.knowledge_graph import (
    KGRecDataset,
    build_kg_rec_data,
    encode_ids,
    lookup_ids,
)

SPLITS = ('train', 'valid', 'test')


class KTUPDataset(KGRecDataset):
    r"""Knowledge-aware recommendation data in the layout of the
    `KTUP reference code <https://github.com/TaoMiner/joint-kg-recommender>`_
    from the `"Unifying Knowledge Graph Learning and Recommendation: Towards
    a Better Understanding of User Preferences"
    <https://arxiv.org/abs/1902.06236>`_ paper (Cao *et al.*, WWW 2019),
    *e.g.* its :obj:`ml1m` and :obj:`dbbook2014` folders, with the splits
    that come with them.

    The content of such a folder goes into :obj:`root/raw`; all files are
    tab-separated and without header:

    * :obj:`train.dat`, :obj:`valid.dat` (optional), :obj:`test.dat`:
      ratings :obj:`user  item  rating`, with the ids of
    * :obj:`u_map.dat`, :obj:`i_map.dat`: :obj:`id  original_id`;
    * :obj:`kg/train.dat`, :obj:`kg/valid.dat` (optional),
      :obj:`kg/test.dat`: triples :obj:`head  tail  relation` (note the
      order), with the ids of
    * :obj:`kg/e_map.dat`, :obj:`kg/r_map.dat`: :obj:`id  uri`;
    * :obj:`i2kg_map.tsv`: :obj:`original_item_id  name  entity_uri`.
      Lines whose item is not in :obj:`i_map.dat` or whose entity is not in
      :obj:`kg/e_map.dat` are ignored, as in the reference code (they were
      filtered out by its preprocessing).

    The result is the :class:`~torch_geometric.data.HeteroData` of
    :class:`~pyg_recs.datasets.AtomicKGDataset`, with the files' splits as
    :obj:`train_mask`, :obj:`val_mask` and :obj:`test_mask`. Users, items,
    entities and relations keep the ids of the map files (numbered densely
    in id order should the ids have gaps). As in the reference code
    (:obj:`rebuildEntityItemVocab`), items without an entity get entity
    slots of their own after the KG entities.

    Unlike the reference code, which skips lines with a wrong number of
    fields silently, malformed lines raise an
    :class:`~pyg_recs.data.atomic.AtomicFileError` naming the file, the
    1-based line and the field, as do ids missing from the map files; pass
    :obj:`strict=False` to skip lines with a wrong number of fields with a
    warning instead.

    Args:
        root (str): Root directory where the dataset should be saved; the
            raw files are read from :obj:`root/raw`.
        strict (bool, optional): Whether lines with a wrong number of fields
            are an error (else they are skipped). (default: :obj:`True`)
        transform (callable, optional): A function/transform that takes in
            a :class:`~torch_geometric.data.HeteroData` object and returns a
            transformed version, applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): A function/transform applied
            before saving to disk. (default: :obj:`None`)
        force_reload (bool, optional): Whether to re-process the dataset.
            (default: :obj:`False`)

    **STATS:** the counts depend on the folder read (the KTUP paper
    reports them for :obj:`ml1m` and :obj:`dbbook2014` in its data table);
    :meth:`process` writes them to :obj:`processed/stats.json`: users,
    items, ratings per split, entities (KG and item-only), relations and
    triples per split.
    """
    url: Optional[str] = None

    def __init__(
        self,
        root: str,
        strict: bool = True,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        self.strict = bool(strict)
        super().__init__(root, transform, pre_transform,
                         force_reload=force_reload)
        self.load(self.processed_paths[0], data_cls=HeteroData)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root,
                        'processed' if self.strict else 'processed_lenient')

    @property
    def raw_file_names(self) -> List[str]:
        return [
            'train.dat', 'test.dat', 'u_map.dat', 'i_map.dat',
            'i2kg_map.tsv', 'kg/train.dat', 'kg/test.dat', 'kg/e_map.dat',
            'kg/r_map.dat'
        ]

    def download(self) -> None:
        raise FileNotFoundError(
            f"'{self.__class__.__name__}' cannot download the KTUP data: "
            f'get a dataset folder (ml1m or dbbook2014) as linked from '
            f'https://github.com/TaoMiner/joint-kg-recommender and put its '
            f"content ({', '.join(self.raw_file_names)}) into "
            f"'{self.raw_dir}'")

    def read_data(self) -> HeteroData:
        return read_ktup(self.raw_dir, strict=self.strict)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_users={self.num_users}, '
                f'num_items={self.num_items}, '
                f'num_entities={self.num_entities}, '
                f'num_relations={self.num_relations})')


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


__all__ = ['KTUPDataset', 'read_ktup']
