import os
import os.path as osp
import shutil
from typing import Callable, Dict, List, Optional

from torch_geometric.data import download_url

from pyg_recs.data.clicks import read_yoochoose_clicks, srgnn_preprocess
from pyg_recs.datasets.session_dataset import Examples, SessionDataset

FRACTIONS = ('1/64', '1/4', '1')


class Yoochoose(SessionDataset):
    r"""The YOOCHOOSE click logs of the `RecSys Challenge 2015
    <https://recsys.acm.org/recsys15/challenge/>`_ in the 1/64 and 1/4
    splits of `"Session-based Recommendation with Graph Neural Networks"
    <https://arxiv.org/abs/1811.00855>`_ (SR-GNN), used by NARM, STAMP,
    SR-GNN and most later session-based recommenders.

    The raw file :obj:`yoochoose-clicks.dat` (33 million lines of
    :obj:`session_id,timestamp,item_id,category`) is preprocessed once per
    fraction in :meth:`process` with
    :func:`pyg_recs.data.clicks.srgnn_preprocess`, exactly as the SR-GNN
    reference code does: sessions of length 1 and items seen fewer than 5
    times removed (then sessions shorter than 2), the sessions of the last
    day for testing, items renumbered by first appearance in training and
    every prefix of a session predicting its next item. Of the time-ordered
    training examples only the most recent :obj:`fraction` is kept; the
    test set is the same for both fractions. The last :obj:`val_ratio` of
    the kept training examples form the :obj:`'valid'` split (see
    :class:`SessionDataset`).

    If :obj:`root/raw` already holds :obj:`yoochoose-clicks.dat`, it is
    used as it is; otherwise :meth:`download` fetches
    :obj:`yoochoose-data.7z` and extracts the click file
    with :obj:`py7zr` when it is installed, or explains how to extract it
    by hand.

    .. note::
        The data was released by YOOCHOOSE GmbH for the RecSys Challenge
        2015 for research purposes; see the challenge page for its terms of
        use. It is not redistributed with this package.

    Args:
        root (str): Root directory where the dataset should be saved.
        fraction (str, optional): The most recent part of the training
            examples to keep, :obj:`'1/64'`, :obj:`'1/4'` or :obj:`'1'`
            (the full split). (default: :obj:`'1/64'`)
        split (str, optional): :obj:`'train'`, :obj:`'valid'` or
            :obj:`'test'`. (default: :obj:`'train'`)
        val_ratio (float, optional): The share of (the most recent)
            training examples held out for validation. (default: :obj:`0.1`)
        transform (callable, optional): A function/transform that takes in
            a :class:`~torch_geometric.data.Data` object and returns a
            transformed version, applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): A function/transform applied
            before saving to disk. (default: :obj:`None`)
        force_reload (bool, optional): Whether to re-process the dataset.
            (default: :obj:`False`)
        val_split (str, optional): :obj:`'last'` or :obj:`'random'`; see
            :class:`SessionDataset`. (default: :obj:`'last'`)

    **STATS:**

    .. list-table::
        :widths: 20 10 10 10 10
        :header-rows: 1

        * - Name
          - #clicks
          - #train examples
          - #test examples
          - #items
        * - Yoochoose 1/64
          - 557,248
          - 369,859
          - 55,898
          - 16,766
        * - Yoochoose 1/4
          - 8,326,407
          - 5,917,745
          - 55,898
          - 29,618

    The numbers are those of the SR-GNN paper; its item counts are the
    items of the training examples, while :obj:`num_items` counts the items
    of the training and the test examples.
    """
    url = 'https://s3-eu-west-1.amazonaws.com/yc-rdata/yoochoose-data.7z'
    archive_name = 'yoochoose-data.7z'

    def __init__(
        self,
        root: str,
        fraction: str = '1/64',
        split: str = 'train',
        val_ratio: float = 0.1,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        force_reload: bool = False,
        val_split: str = 'last',
    ) -> None:
        if fraction not in FRACTIONS:
            raise ValueError(f"Invalid 'fraction' (got {fraction!r}); "
                             f"expected one of {FRACTIONS}")
        self.fraction = fraction
        super().__init__(root, split, val_ratio, transform, pre_transform,
                         force_reload, val_split)

    @property
    def raw_file_names(self) -> List[str]:
        return ['yoochoose-clicks.dat']

    @property
    def processed_dir(self) -> str:
        name = f"processed_{self.fraction.replace('/', '_')}"
        return osp.join(self.root, f'{name}_{self.val_tag}')

    def download(self) -> None:
        archive = osp.join(self.raw_dir, self.archive_name)
        manual = (f"Extract 'yoochoose-clicks.dat' from '{archive}' by hand "
                  f"(e.g. '7z e {archive} yoochoose-clicks.dat -o"
                  f"{self.raw_dir}' with p7zip, or 'pip install py7zr') "
                  f"and put it into '{self.raw_dir}'")
        if not osp.exists(archive):
            try:
                download_url(self.url, self.raw_dir)
            except Exception as e:
                raise RuntimeError(
                    f"Could not download YOOCHOOSE from '{self.url}' ({e}). "
                    f"Get 'yoochoose-data.7z' of the RecSys Challenge 2015 "
                    f"(e.g. from https://www.kaggle.com/datasets/chadgostopp/"
                    f"recsys-challenge-2015, where the files come unpacked) "
                    f"and put it or 'yoochoose-clicks.dat' into "
                    f"'{self.raw_dir}'") from e
        try:
            import py7zr
        except ImportError:
            raise RuntimeError(f"'py7zr' is needed to extract '{archive}' "
                               f"and is not installed. {manual}") from None
        tmp = osp.join(self.raw_dir, 'yoochoose-data.tmp')
        with py7zr.SevenZipFile(archive, mode='r') as z:
            names = [n for n in z.getnames()
                     if osp.basename(n) == self.raw_file_names[0]]
            if not names:
                raise RuntimeError(f"'{archive}' holds no "
                                   f"'{self.raw_file_names[0]}'. {manual}")
            z.extract(path=tmp, targets=names)
        os.replace(osp.join(tmp, names[0]), self.raw_paths[0])
        shutil.rmtree(tmp, ignore_errors=True)
        os.remove(archive)

    def read_examples(self) -> Dict[str, Examples]:
        df = read_yoochoose_clicks(self.raw_paths[0])
        out = srgnn_preprocess(
            df, dataset='yoochoose',
            fraction=None if self.fraction == '1' else self.fraction,
            as_arrays=True)
        return {'train': out.train, 'test': out.test}

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self)}, '
                f'fraction={self.fraction}, split={self.split}, '
                f'num_items={self.num_items})')


__all__ = ['Yoochoose']
