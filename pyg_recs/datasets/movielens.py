from typing import Callable, Optional, Sequence

from pyg_recs.data.download import download_verified
from pyg_recs.datasets.knowledge_graph import AtomicKGDataset


class MovieLens100KKG(AtomicKGDataset):
    r"""The MovieLens-100K ratings with a Freebase knowledge graph, in the
    atomic files that `RecBole <https://github.com/RUCAIBox/RecBole>`__ ships
    as its example data set, for knowledge-aware recommendation such as
    `KTUP <https://arxiv.org/abs/1902.06236>`_.

    The ratings are those of the `GroupLens <https://grouplens.org/
    datasets/movielens/100k/>`_ release; items are linked to Freebase
    entities by `KB4Rec <https://github.com/RUCDM/KB4Rec>`_ and the KG holds
    the Freebase triples around them. See :class:`AtomicKGDataset` for the
    :class:`~torch_geometric.data.HeteroData` layout and the splits.

    Raw files already in :obj:`root/raw` (:obj:`ml-100k.inter`,
    :obj:`ml-100k.kg`, :obj:`ml-100k.link`) are used as they are; otherwise
    they are downloaded from RecBole's repository and checked against the
    SHA-256 recorded in :obj:`sha256` (a changed or corrupt download raises
    a :class:`~pyg_recs.data.download.ChecksumError` and leaves nothing in
    :obj:`root/raw`).

    .. note::
        Licences: the ratings are under the GroupLens terms of use (research
        use, no redistribution without permission), the KB4Rec linkage is
        for non-commercial research only, RecBole's files are MIT.

    Args:
        root (str): Root directory where the dataset should be saved.
        ratios ((float, float, float), optional): The per-user training,
            validation and test shares of the ratings.
            (default: :obj:`(0.7, 0.1, 0.2)`)
        kg_ratios ((float, float, float), optional): The training,
            validation and test shares of the KG triples.
            (default: :obj:`(0.7, 0.1, 0.2)`)
        seed (int, optional): The random seed of both splits.
            (default: :obj:`2019`)
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
        :widths: 10 10 10 10 10 10 10
        :header-rows: 1

        * - #users
          - #items
          - #ratings
          - #entities
          - #relations
          - #triples
          - #linked items
        * - 943
          - 1,682
          - 100,000
          - 34,628 (+84)
          - 24
          - 91,631
          - 1,598

    The 84 items without a Freebase entity get entity slots of their own,
    34,712 :obj:`'entity'` nodes in all.
    """
    url = ('https://raw.githubusercontent.com/RUCAIBox/RecBole/master/'
           'recbole/dataset_example/ml-100k')
    #: Accepted SHA-256 hashes of every raw file, as in RecBole's repository
    #: (Unix line endings) and in its PyPI wheel 1.2.0 (Windows endings).
    sha256 = {
        'ml-100k.inter': (
            '4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff',
            'd4832a77576cb5a480517a9554eef1872331f1ba780ddcd3f4bf956d562ccfc2',
        ),
        'ml-100k.kg': (
            '200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779',
            'e72e5ee22f5721daea5bfe2156c2a26c1434a72d7b3365cf21cfe069497ba29f',
        ),
        'ml-100k.link': (
            '524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948',
            '936102919c05e13da972a5d9c1ed6461ca5366b9df7371ecba10f266c1afaea1',
        ),
    }

    def __init__(
        self,
        root: str,
        ratios: Sequence[float] = (0.7, 0.1, 0.2),
        kg_ratios: Sequence[float] = (0.7, 0.1, 0.2),
        seed: int = 2019,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        super().__init__(root, 'ml-100k', ratios=ratios, kg_ratios=kg_ratios,
                         seed=seed, transform=transform,
                         pre_transform=pre_transform,
                         force_reload=force_reload)

    def download(self) -> None:
        for name in self.raw_file_names:
            download_verified(f'{self.url}/{name}', self.raw_dir,
                              sha256=self.sha256[name])


__all__ = ['MovieLens100KKG']
