import os.path as osp
from time import perf_counter
from typing import Callable, List, Optional, Sequence

from torch_geometric.data import HeteroData

from pyg_recs.data.kg import (  # noqa: F401 (the edge types)
    ALIGNED,
    RATES,
    RELATION,
    build_kg_rec_data,
    kg_rec_stats,
    read_atomic_kg,
)
from pyg_recs.data.split import check_ratios
from pyg_recs.datasets.base import SafeInMemoryDataset
from pyg_recs.io import atomic_json_dump


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
        self.save([data], self.processed_paths[0])
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


__all__ = ['KGRecDataset', 'AtomicKGDataset']
