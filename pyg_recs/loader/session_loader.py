from typing import Iterator, NamedTuple, Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch, InMemoryDataset

from pyg_recs.data.session_graph import (
    CLICK_KEYS,
    EDGE_KEYS,
    GRAPH_KEYS,
    NODE_KEYS,
)


class SessionLoader:
    r"""A fast mini-batch loader for session graphs stored in collated form.

    :class:`torch_geometric.loader.DataLoader` separates every graph from
    the dataset and collates them again, a Python loop per graph. This
    loader gathers a whole mini-batch from the dataset's collated storage
    with a handful of vectorised index operations (on the device the storage
    lives on), and returns the same
    :class:`~torch_geometric.data.Batch` that PyG's loader would: node
    indices (:obj:`edge_index`, :obj:`click_index`, :obj:`last_index`) are
    incremented per graph and :obj:`batch` and :obj:`ptr` are set.

    Args:
        dataset (InMemoryDataset): A dataset of session graphs, *e.g.*
            :class:`~pyg_recs.datasets.SessionDataset`.
        batch_size (int, optional): Graphs per mini-batch. (default: :obj:`1`)
        shuffle (bool, optional): Reshuffle the graphs every epoch.
            (default: :obj:`False`)
        drop_last (bool, optional): Drop the last incomplete batch.
            (default: :obj:`False`)
        device (torch.device or str, optional): Where to keep the storage
            and build the batches; :obj:`None` keeps the dataset's device.
            (default: :obj:`None`)
        generator (torch.Generator, optional): The random generator used for
            shuffling. (default: :obj:`None`)
        indices (torch.Tensor, optional): Restrict the loader to these
            graphs, *e.g.* one shard per process. (default: :obj:`None`)
    """
    def __init__(
        self,
        dataset: InMemoryDataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        device: Optional[Union[torch.device, str]] = None,
        generator: Optional[torch.Generator] = None,
        indices: Optional[Tensor] = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"Invalid 'batch_size' (got {batch_size})")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator

        data, slices = dataset._data, dataset.slices
        if slices is None:
            raise ValueError("'SessionLoader' needs a dataset of more than "
                             "one graph in collated storage")
        missing = [key for key in ('x', 'edge_index', 'click_index',
                                   'last_index') if key not in data]
        if missing:
            raise ValueError(f"The dataset is not made of session graphs: "
                             f"attributes {missing} are missing")
        device = torch.device(device) if device is not None else data.x.device
        self.device = device
        self.store = {key: data[key].to(device) for key in data.keys()}
        self.node_ptr = slices['x'].to(device)
        self.edge_ptr = slices['edge_index'].to(device)
        self.click_ptr = slices['click_index'].to(device)
        if indices is None:
            indices = torch.as_tensor(dataset.indices(), dtype=torch.long)
        self.indices = indices.to(device)

    def __len__(self) -> int:
        n = self.indices.numel()
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        indices = self.indices
        if self.shuffle:
            perm = torch.randperm(indices.numel(), generator=self.generator)
            indices = indices[perm.to(indices.device)]
        for i in range(len(self)):
            yield self.collate(indices[i * self.batch_size:(i + 1) *
                                       self.batch_size])

    def collate(self, index: Tensor) -> Batch:
        r"""Gathers the graphs :obj:`index` into one mini-batch."""
        if self.device.type != 'cpu':
            return self._collate(index)
        # The index operations of a batch are far too small to gain from
        # intra-op threads; on a busy CPU their synchronisation made
        # batching ten times slower (55 s against 4 s for a Diginetica
        # epoch on 2 cores), so batches are built on one thread.
        num_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._collate(index)
        finally:
            torch.set_num_threads(num_threads)

    def _collate(self, index: Tensor) -> Batch:
        index = index.to(self.device)
        num_graphs = index.numel()
        arange = torch.arange(num_graphs, device=self.device)

        nodes = _segments(self.node_ptr, index)
        edges = _segments(self.edge_ptr, index)
        clicks = _segments(self.click_ptr, index)
        ptr = nodes.ptr
        # The graph of every node, and the node offset of every edge and
        # click of the batch:
        batch = nodes.repeat(arange)
        edge_inc = edges.repeat(ptr[:-1])
        click_inc = clicks.repeat(ptr[:-1])

        out = Batch()
        for key, value in self.store.items():
            if key in NODE_KEYS:
                out[key] = value[nodes.gather]
            elif key == 'edge_index':
                out[key] = value[:, edges.gather] + edge_inc
            elif key in EDGE_KEYS:
                out[key] = value[edges.gather]
            elif key in CLICK_KEYS:
                out[key] = value[clicks.gather] + click_inc
            elif key == 'last_index':
                out[key] = value[index] + ptr[:-1]
            elif key in GRAPH_KEYS:
                out[key] = value[index]
            else:
                raise ValueError(f"'SessionLoader' does not know how to "
                                 f"batch the attribute '{key}'")
        out.batch = batch
        out.ptr = ptr
        out._num_graphs = num_graphs
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_graphs='
                f'{self.indices.numel()}, batch_size={self.batch_size}, '
                f'shuffle={self.shuffle})')


class _Segments(NamedTuple):
    gather: Tensor  # Positions of the segments in the collated attribute.
    count: Tensor  # Length of every segment.
    ptr: Tensor  # Offsets of the segments in the batch.
    total: int

    def repeat(self, value: Tensor) -> Tensor:
        # value[g] for every element of segment g. Passing `output_size`
        # avoids a slow size computation (and a device sync).
        return value.repeat_interleave(self.count, output_size=self.total)


def _segments(ptr: Tensor, index: Tensor) -> _Segments:
    r"""The segments :obj:`index` of a collated attribute with offsets
    :obj:`ptr`."""
    start = ptr[index]
    count = ptr[index + 1] - start
    out_ptr = count.new_zeros(count.numel() + 1)
    torch.cumsum(count, 0, out=out_ptr[1:])
    total = int(out_ptr[-1])
    # An arange over the output shifted per segment:
    shift = (start - out_ptr[:-1]).repeat_interleave(count,
                                                     output_size=total)
    gather = torch.arange(total, device=ptr.device) + shift
    return _Segments(gather, count, out_ptr, total)
