import os.path as osp
from typing import Callable, List, Optional

from torch_geometric.data import HeteroData

from pyg_recs.data.kg import read_ktup
from pyg_recs.datasets.knowledge_graph import KGRecDataset


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


__all__ = ['KTUPDataset']
