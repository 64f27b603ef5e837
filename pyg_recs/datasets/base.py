r"""A :class:`~torch_geometric.data.InMemoryDataset` that never runs code
from the files of its folder.

PyG's :class:`~torch_geometric.data.Dataset` remembers the
:obj:`pre_transform` and :obj:`pre_filter` a folder was processed with by
pickling their :func:`repr` to :obj:`processed/pre_transform.pt` and
:obj:`pre_filter.pt`, and unpickles both with :obj:`weights_only=False`
every time the dataset is opened; :meth:`InMemoryDataset.load` falls back
to :obj:`weights_only=False` as well when a file holds a global it does
not know. A dataset folder is something users copy, share and unpack from
archives, so either is a way to run code on whoever opens it.
:class:`SafeInMemoryDataset` keeps PyG's behaviour (warn when the
pre-processing differs, process once, :meth:`load` the collated storage)
but stores the two reprs as JSON (:obj:`processed/pre_processing.json`),
never reads the :obj:`.pt` files, and loads every processed file with
:obj:`torch.load(..., weights_only=True)` and no fallback. The same JSON
holds the size and modification time of every raw file: when the raw
files change (*e.g.* another dataset linked into the same root), the
folder is processed again instead of silently reusing the old data.
"""
import json
import os
import os.path as osp
import sys
import warnings
from typing import Any, Dict, Optional, Sequence, Type

import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.data.data import BaseData
from torch_geometric.data.dataset import _repr, files_exist

from pyg_recs.io import atomic_json_dump, atomic_torch_save, torch_load_reason

#: The file that records the pre-processing a folder was built with.
PRE_PROCESSING = 'pre_processing.json'


def safe_torch_load(path: str) -> Any:
    r"""Loads a processed file with :obj:`weights_only=True` and no
    fallback: tensors, containers and PyG's allow-listed classes only. A
    file that holds anything else, or is not a torch file at all, gives a
    :class:`RuntimeError` naming the file and the fix."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # UnpicklingError, zip/EOF errors, ...
        raise RuntimeError(
            f"Could not load the processed file '{path}': it is damaged or "
            f"was not written by pyg_recs ({torch_load_reason(e)}). Nothing "
            f"was run from it. Delete the folder '{osp.dirname(path)}' (or "
            f"pass force_reload=True) to process the raw files again") \
            from None


def raw_fingerprint(paths) -> dict:
    r"""The size and modification time (in ns) of every raw file, following
    links: a cheap check that the raw files a folder was processed from
    are still the same."""
    out = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out[osp.basename(path)] = [st.st_size, st.st_mtime_ns]
    return out


class SafeInMemoryDataset(InMemoryDataset):
    r"""An :class:`~torch_geometric.data.InMemoryDataset` whose opening
    never unpickles arbitrary objects (see the module docstring).
    Subclasses implement :meth:`process` as usual."""
    def _process(self) -> None:
        record = osp.join(self.processed_dir, PRE_PROCESSING)
        current = {'pre_transform': _repr(self.pre_transform),
                   'pre_filter': _repr(self.pre_filter),
                   'raw': raw_fingerprint(self.raw_paths)}
        force_reload = self.force_reload
        if not force_reload and osp.exists(record):
            try:
                with open(record, encoding='utf-8') as f:
                    stored = json.load(f)
            except (OSError, ValueError) as e:
                stored = None
                warnings.warn(f"Could not read '{record}' ({e}); the "
                              f"pre-processing of this folder is unknown",
                              stacklevel=2)
            if isinstance(stored, dict):
                if 'raw' in stored and stored['raw'] != current['raw']:
                    warnings.warn(
                        f"The raw files of '{self.root}' changed since they "
                        f"were processed ('{record}'); processing them "
                        f"again", stacklevel=2)
                    force_reload = True
                for key in ('pre_transform', 'pre_filter'):
                    if stored.get(key) != current[key]:
                        warnings.warn(
                            f"The `{key}` argument differs from the one used "
                            f"in the pre-processed version of this dataset "
                            f"('{record}'). Pass `force_reload=True` to "
                            f"process it again.", stacklevel=2)

        if not force_reload and files_exist(self.processed_paths):
            return

        if self.log and 'PYTEST_CURRENT_TEST' not in os.environ:
            print('Processing...', file=sys.stderr)
        os.makedirs(self.processed_dir, exist_ok=True)
        self.process()
        atomic_json_dump(current, record)
        if self.log and 'PYTEST_CURRENT_TEST' not in os.environ:
            print('Done!', file=sys.stderr)

    @classmethod
    def save(cls, data_list: Sequence[BaseData], path: str) -> None:
        r"""Collates :obj:`data_list` and saves it to :obj:`path` in the
        format of :meth:`InMemoryDataset.save
        <torch_geometric.data.InMemoryDataset.save>`, atomically: an
        interrupted or failed write (a full disk) leaves the previous file
        as it was."""
        data, slices = cls.collate(data_list)
        cls.save_collated(data, slices, path)

    @staticmethod
    def save_collated(data: BaseData, slices: Optional[Dict[str, Any]],
                      path: str) -> None:
        r"""Saves already collated storage (*e.g.* built with vectorised
        operations, without a list of graphs) like :meth:`save` does."""
        atomic_torch_save((data.to_dict(), slices, data.__class__), path)

    def load(self, path: str, data_cls: Type[BaseData] = Data) -> None:
        r"""Loads the collated storage written by :meth:`save` from
        :obj:`path`, with :obj:`weights_only=True` and a clear error for a
        foreign file."""
        out = safe_torch_load(path)
        if not (isinstance(out, tuple) and len(out) in (2, 3)
                and isinstance(out[0], (dict, BaseData))):
            raise RuntimeError(
                f"The processed file '{path}' does not hold a dataset "
                f"written by pyg_recs (got {type(out).__name__}). Delete the "
                f"folder '{osp.dirname(path)}' (or pass force_reload=True) "
                f"to process the raw files again")
        if len(out) == 3:
            data, self.slices, data_cls = out
        else:
            data, self.slices = out
        self.data = data_cls.from_dict(data) if isinstance(data,
                                                           dict) else data
