from typing import Iterator, Optional, Union

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

        node_start, node_count = _span(self.node_ptr, index)
        ptr = _ptr(node_count)
        num_nodes = int(ptr[-1])
        node_gather = _gather_index(node_start, node_count, ptr, num_nodes)
        batch = arange.repeat_interleave(node_count, output_size=num_nodes)

        edge_start, edge_count = _span(self.edge_ptr, index)
        edge_ptr = _ptr(edge_count)
        num_edges = int(edge_ptr[-1])
        edge_gather = _gather_index(edge_start, edge_count, edge_ptr,
                                    num_edges)
        edge_inc = ptr[:-1].repeat_interleave(edge_count,
                                              output_size=num_edges)

        click_start, click_count = _span(self.click_ptr, index)
        click_ptr = _ptr(click_count)
        num_clicks = int(click_ptr[-1])
        click_gather = _gather_index(click_start, click_count, click_ptr,
                                     num_clicks)
        click_inc = ptr[:-1].repeat_interleave(click_count,
                                               output_size=num_clicks)

        out = Batch()
        for key, value in self.store.items():
            if key in NODE_KEYS:
                out[key] = value[node_gather]
            elif key == 'edge_index':
                out[key] = value[:, edge_gather] + edge_inc
            elif key in EDGE_KEYS:
                out[key] = value[edge_gather]
            elif key in CLICK_KEYS:
                out[key] = value[click_gather] + click_inc
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


def _span(ptr: Tensor, index: Tensor):
    start = ptr[index]
    return start, ptr[index + 1] - start


def _ptr(count: Tensor) -> Tensor:
    ptr = count.new_zeros(count.numel() + 1)
    torch.cumsum(count, 0, out=ptr[1:])
    return ptr


def _gather_index(start: Tensor, count: Tensor, out_ptr: Tensor,
                  total: int) -> Tensor:
    # Positions `start[g], ..., start[g] + count[g] - 1` for every graph `g`,
    # concatenated: an arange over the output shifted per graph. Passing
    # `output_size` avoids a slow size computation (and a device sync).
    shift = (start - out_ptr[:-1]).repeat_interleave(count,
                                                     output_size=total)
    return torch.arange(total, device=start.device) + shift
