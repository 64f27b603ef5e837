import os
import os.path as osp
import shutil
import zipfile
from typing import Callable, Dict, List, Optional

from torch_geometric.data import download_google_url

from pyg_recs.data.clicks import read_diginetica_clicks, srgnn_preprocess
from pyg_recs.data.download import safe_extract
from pyg_recs.datasets.session_dataset import Examples, SessionDataset


class Diginetica(SessionDataset):
    r"""The Diginetica click logs of the `CIKM Cup 2016
    <https://competitions.codalab.org/competitions/11161>`_ in the split of
    `"Session-based Recommendation with Graph Neural Networks"
    <https://arxiv.org/abs/1811.00855>`_ (SR-GNN), used by SR-GNN, GCE-GNN
    and most later session-based recommenders.

    The raw file :obj:`train-item-views.csv` (:obj:`;`-separated
    :obj:`session_id;user_id;item_id;timeframe;eventdate`) is preprocessed
    once in :meth:`process` with :func:`pyg_recs.data.clicks.srgnn_preprocess`,
    exactly as the SR-GNN reference code does: clicks ordered by
    :obj:`timeframe` within a session, sessions of length 1 and items seen
    fewer than 5 times removed (then sessions shorter than 2), the sessions
    of the last 7 days for testing, items renumbered by first appearance in
    training, and every prefix of a session predicting its next item. The
    training examples are in time order; the last :obj:`val_ratio` of them
    form the :obj:`'valid'` split (see :class:`SessionDataset`).

    If :obj:`root/raw` already holds the raw file, it is used as it is;
    otherwise :meth:`download` fetches :obj:`dataset-train-diginetica.zip`
    from the Google Drive folder of the CIKM Cup and extracts
    :obj:`train-item-views.csv` (or explains where to get it by hand).
    The :obj:`sample_train-item-views.csv` sample shipped with the SR-GNN
    code is processed the same way with
    :obj:`raw_file_name='sample_train-item-views.csv'` (put it into
    :obj:`root/raw`).

    .. note::
        The data was released by DIGINETICA and its partners for the CIKM
        Cup 2016 for research purposes; see the competition page for its
        terms of use. It is not redistributed with this package.

    Args:
        root (str): Root directory where the dataset should be saved.
        split (str, optional): :obj:`'train'`, :obj:`'valid'` or
            :obj:`'test'`. (default: :obj:`'train'`)
        val_ratio (float, optional): The share of (the most recent)
            training examples held out for validation. (default: :obj:`0.1`)
        raw_file_name (str, optional): The name of the raw click file in
            :obj:`root/raw`. (default: :obj:`'train-item-views.csv'`)
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
        * - Diginetica
          - 982,961
          - 719,470
          - 60,858
          - 43,097
        * - SR-GNN sample
          - 1,812
          - 1,205
          - 99
          - 309

    Clicks are those left after the filtering (of 12,391 raw clicks in
    the sample); the Diginetica numbers are those of the SR-GNN paper.
    With :obj:`val_ratio=0.1` the 719,470 training examples become 647,523
    for :obj:`'train'` and 71,947 for :obj:`'valid'`.
    """
    url = ('https://drive.google.com/file/d/'
           '0B7XZSACQf0KdenRmMk8yVUU5LWc/view')
    google_id = '0B7XZSACQf0KdenRmMk8yVUU5LWc'
    zip_name = 'dataset-train-diginetica.zip'
    default_raw_file_name = 'train-item-views.csv'

    def __init__(
        self,
        root: str,
        split: str = 'train',
        val_ratio: float = 0.1,
        raw_file_name: str = 'train-item-views.csv',
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        force_reload: bool = False,
        val_split: str = 'last',
    ) -> None:
        if (not isinstance(raw_file_name, str) or raw_file_name == ''
                or osp.basename(raw_file_name) != raw_file_name):
            raise ValueError(f"Invalid 'raw_file_name' (got "
                             f"{raw_file_name!r}); expected a file name in "
                             f"'root/raw'")
        self.raw_file_name = raw_file_name
        super().__init__(root, split, val_ratio, transform, pre_transform,
                         force_reload, val_split)

    @property
    def raw_file_names(self) -> List[str]:
        return [self.raw_file_name]

    @property
    def processed_dir(self) -> str:
        name = 'processed'
        if self.raw_file_name != self.default_raw_file_name:
            name += '_' + osp.splitext(self.raw_file_name)[0]
        return osp.join(self.root, f'{name}_{self.val_tag}')

    def download(self) -> None:
        manual = (f"Download '{self.zip_name}' from the CIKM Cup 2016 "
                  f"(https://competitions.codalab.org/competitions/11161, "
                  f"'Participate' > 'Get Data', or {self.url}), extract "
                  f"'{self.default_raw_file_name}' from it and put it into "
                  f"'{self.raw_dir}'")
        if self.raw_file_name != self.default_raw_file_name:
            raise FileNotFoundError(
                f"'{self.raw_file_name}' is not in '{self.raw_dir}' and "
                f"only '{self.default_raw_file_name}' can be downloaded: "
                f"put the file there (the SR-GNN sample is "
                f"'datasets/sample_train-item-views.csv' of "
                f"https://github.com/CRIPAC-DIG/SR-GNN)")
        path = osp.join(self.raw_dir, self.zip_name)
        if not osp.exists(path):
            try:
                path = download_google_url(self.google_id, self.raw_dir,
                                           self.zip_name)
            except Exception as e:  # Drive asks for a login or is down.
                raise RuntimeError(f"Could not download Diginetica ({e}). "
                                   f"{manual}") from e
        if not zipfile.is_zipfile(path):
            os.remove(path)  # An HTML page instead of the archive.
            raise RuntimeError(f"The download of '{path}' is not a zip "
                               f"archive. {manual}")
        # Every member is vetted (no absolute paths, '..' or links); only
        # the click file is written, into a temporary folder first.
        tmp = osp.join(self.raw_dir, '.diginetica-extract')
        try:
            extracted = safe_extract(path, tmp,
                                     names=[self.default_raw_file_name])
            if not extracted:
                raise RuntimeError(
                    f"'{path}' holds no '{self.default_raw_file_name}'. "
                    f"{manual}")
            os.replace(extracted[0], self.raw_paths[0])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        os.remove(path)

    def read_examples(self) -> Dict[str, Examples]:
        df = read_diginetica_clicks(self.raw_paths[0])
        out = srgnn_preprocess(df, dataset='diginetica', as_arrays=True)
        return {'train': out.train, 'test': out.test}


__all__ = ['Diginetica']
