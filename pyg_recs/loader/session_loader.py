from typing import Iterator, NamedTuple, Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch, InMemoryDataset

from pyg_recs.data.session_graph import (
    CLICK_KEYS,
    EDGE_KEYS,
    GRAPH_KEYS,
    IGNORE_INDEX,
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
        pad (bool, optional): Pad every mini-batch to a few static shapes,
            as CUDA graphs (:obj:`torch.compile(mode='reduce-overhead')`)
            need, see below. (default: :obj:`False`)

    With :obj:`pad=True`, a mini-batch always holds
    :obj:`batch_size + 1` sessions, and its nodes, edges and clicks are
    all padded to one size, the bucket of its number of clicks :math:`c`,

    .. math::
        b(c) = \min \{ m \cdot 2^e \geq c + 1 : m \in \{1, 3/2\},
        e \geq 0 \}

    (a session graph has at most as many nodes as clicks, and fewer
    edges), so that a batch has one of a handful of shapes: two per
    octave of :math:`c`, whose range is narrow for a fixed batch size.
    The padding contributes nothing: the sessions after the real ones have
    the target :obj:`IGNORE_INDEX` (:obj:`-100`), which the loss and the
    evaluation skip; the padding nodes (item :obj:`0`) belong to the last
    session, which always is a padding one, and so do the padding clicks;
    the padding edges join the first padding node to itself with weight
    :obj:`0`. A padded batch has a boolean :obj:`session_mask`
    (:obj:`[batch_size + 1]`, :obj:`True` for real sessions).
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
        pad: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"Invalid 'batch_size' (got {batch_size})")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.pad = pad

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
        if self.pad:
            return self._pad(out, nodes.total, edges.total, clicks.total)
        return out

    def _pad(self, out: Batch, num_nodes: int, num_edges: int,
             num_clicks: int) -> Batch:
        num_graphs = out._num_graphs
        num_slots = self.batch_size + 1  # The last one is always padding.
        dummy = num_nodes  # The first padding node.
        # One size for all: num_nodes <= num_clicks and num_edges <
        # num_clicks, so every kind gets at least one padding element.
        size = bucket_size(num_clicks + 1)
        pad_nodes = size - num_nodes
        pad_edges = size - num_edges
        pad_clicks = size - num_clicks
        pad_graphs = num_slots - num_graphs
        device = self.device

        def full(size, value, like):
            return torch.full((size, ) + tuple(like.shape[1:]), value,
                              dtype=like.dtype, device=device)

        for key in list(out.keys()):
            value = out[key]
            if key in NODE_KEYS:
                out[key] = torch.cat([value, full(pad_nodes, 0, value)])
            elif key == 'edge_index':
                out[key] = torch.cat([
                    value,
                    value.new_full((2, pad_edges), dummy),
                ], dim=1)
            elif key in EDGE_KEYS:
                out[key] = torch.cat([value, full(pad_edges, 0, value)])
            elif key in CLICK_KEYS:
                out[key] = torch.cat([value, full(pad_clicks, dummy, value)])
            elif key == 'last_index':
                out[key] = torch.cat([value, full(pad_graphs, dummy, value)])
            elif key == 'y':
                out[key] = torch.cat(
                    [value, full(pad_graphs, IGNORE_INDEX, value)])
        out.batch = torch.cat([
            out.batch,
            out.batch.new_full((pad_nodes, ), num_slots - 1),
        ])
        # Padding sessions own no node, but the last, which owns them all:
        out.ptr = torch.cat([
            out.ptr,
            out.ptr.new_full((pad_graphs - 1, ), num_nodes),
            out.ptr.new_full((1, ), num_nodes + pad_nodes),
        ])
        mask = torch.zeros(num_slots, dtype=torch.bool, device=device)
        mask[:num_graphs] = True
        out.session_mask = mask
        out._num_graphs = num_slots
        return out

    def __repr__(self) -> str:
        pad = ', pad=True' if self.pad else ''
        return (f'{self.__class__.__name__}(num_graphs='
                f'{self.indices.numel()}, batch_size={self.batch_size}, '
                f'shuffle={self.shuffle}{pad})')


def bucket_size(n: int) -> int:
    r"""The smallest size of the form :math:`2^e` or :math:`3 \cdot
    2^{e-1}` that holds :obj:`n` (:obj:`1, 2, 3, 4, 6, 8, 12, 16, ...`),
    the sizes that :class:`SessionLoader` pads to (at most 50% more
    than :obj:`n`)."""
    if n <= 1:
        return 1
    power = 1 << (n - 1).bit_length()  # The next power of two >= n.
    three = 3 * power // 4
    return three if three >= n else power


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
