r"""Session graphs of `SR-GNN <https://arxiv.org/abs/1811.00855>`_.

A session :math:`s = [v_{s,1}, \ldots, v_{s,n}]` becomes a directed graph
whose nodes are the *unique* items of the session, in order of first
appearance, and whose edges are the distinct transitions
:math:`v_{s,t} \rightarrow v_{s,t+1}` between consecutive clicks. Every edge
:math:`(i, j)` carries two normalised weights, the entries of the paper's
outgoing and incoming matrices:

.. math::
    w^{\textrm{out}}_{ij} = \frac{1}{|\mathcal{N}^{\textrm{out}}(i)|},
    \qquad
    w^{\textrm{in}}_{ij} = \frac{1}{|\mathcal{N}^{\textrm{in}}(j)|},

where :math:`\mathcal{N}^{\textrm{out}}(i)` are the distinct successors of
:math:`i` and :math:`\mathcal{N}^{\textrm{in}}(j)` the distinct predecessors
of :math:`j`.

One function builds these graphs: :func:`sessions_to_graphs` works on many
sessions at once with vectorised :obj:`numpy` operations and returns them in
the collated storage format of
:class:`~torch_geometric.data.InMemoryDataset`; :func:`session_to_graph` is
the same function applied to a single session.
"""
from itertools import chain
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

Sessions = Union[Sequence[Sequence[int]], Tuple[np.ndarray, np.ndarray]]

#: Attributes of a session graph: node-level, edge-level, click-level and
#: graph-level, as stored by :func:`sessions_to_graphs`.
NODE_KEYS = ('x', )
EDGE_KEYS = ('edge_index', 'edge_weight_in', 'edge_weight_out')
CLICK_KEYS = ('click_index', )
GRAPH_KEYS = ('last_index', 'y')
#: The target of a padding session (see
#: :class:`~pyg_recs.loader.SessionLoader`'s :obj:`pad`): the
#: :obj:`ignore_index` of :func:`torch.nn.functional.cross_entropy`, left
#: out of the loss and of evaluation metrics.
IGNORE_INDEX = -100


def flatten_sessions(sessions: Sessions) -> Tuple[np.ndarray, np.ndarray]:
    r"""Returns the clicks of all sessions as one flat :obj:`int64` array and
    the offsets :obj:`ptr` of each session in it (:obj:`ptr[i]` to
    :obj:`ptr[i + 1]` are the clicks of session :obj:`i`).

    Args:
        sessions (list of lists or tuple of arrays): The sessions, either as
            a list of item id lists or already as a :obj:`(items, ptr)` pair.
    """
    if isinstance(sessions, tuple) and len(sessions) == 2 and isinstance(
            sessions[0], np.ndarray):
        items = np.asarray(sessions[0], dtype=np.int64)
        ptr = np.asarray(sessions[1], dtype=np.int64)
        return items, ptr
    lengths = np.fromiter((len(s) for s in sessions), dtype=np.int64,
                          count=len(sessions))
    items = np.fromiter(chain.from_iterable(sessions), dtype=np.int64,
                        count=int(lengths.sum()))
    ptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    return items, ptr


def sessions_to_graphs(
    sessions: Sessions,
    targets: Optional[Sequence[int]] = None,
) -> Tuple[Data, Dict[str, Tensor]]:
    r"""Builds the session graphs of many sessions at once.

    Returns a :class:`~torch_geometric.data.Data` object holding all graphs
    concatenated and the :obj:`slices` that delimit every graph, *i.e.* the
    storage format of :class:`~torch_geometric.data.InMemoryDataset`
    (indices are local to each graph). Every graph has

    * :obj:`x` (:obj:`[num_nodes]`): the item id of each node, unique items
      in order of first appearance,
    * :obj:`edge_index` (:obj:`[2, num_edges]`): each distinct transition
      once, sorted by source and then target node,
    * :obj:`edge_weight_in`, :obj:`edge_weight_out` (:obj:`[num_edges]`):
      the normalised weights defined above,
    * :obj:`click_index` (:obj:`[len(session)]`): the node of every click,
    * :obj:`last_index` (:obj:`[1]`): the node of the last click,
    * :obj:`y` (:obj:`[1]`): the target item, if :obj:`targets` is given.

    Args:
        sessions (list of lists or tuple of arrays): The sessions, see
            :func:`flatten_sessions`. Item ids must be non-negative.
        targets (sequence of int, optional): The next item of each session.
            (default: :obj:`None`)
    """
    items, ptr = flatten_sessions(sessions)
    num_sessions = ptr.size - 1
    lengths = np.diff(ptr)
    if num_sessions > 0 and lengths.min() < 1:
        bad = int(np.argmin(lengths))
        raise ValueError(f"Session {bad} is empty: every session needs at "
                         f"least one click")
    if items.size > 0 and items.min() < 0:
        bad = int(np.argmin(items))
        raise ValueError(f"Invalid item id {int(items[bad])} at click {bad}: "
                         f"item ids must be non-negative")
    if targets is not None:
        targets = np.asarray(targets, dtype=np.int64).reshape(-1)
        if targets.size != num_sessions:
            raise ValueError(f"Got {targets.size} targets for "
                             f"{num_sessions} sessions")

    session = np.repeat(np.arange(num_sessions, dtype=np.int64), lengths)

    # Unique items per session, in order of first appearance, through the
    # key (session, item). Items are renumbered densely first if the key
    # could overflow otherwise:
    num_ids = int(items.max()) + 1 if items.size > 0 else 1
    if num_ids > np.iinfo(np.int64).max // max(num_sessions, 1):
        uniq, dense = np.unique(items, return_inverse=True)
        items_key, num_ids = dense.reshape(-1), max(uniq.size, 1)
    else:
        items_key = items
    key = session * num_ids + items_key
    del items_key
    # (Temporaries are freed as soon as possible: the full YOOCHOOSE split
    # has ~100M clicks, 800 MB per int64 array.)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    del _, key
    order = np.argsort(first, kind='stable')
    first = first[order]
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    del order
    click_node = rank[inverse.reshape(-1)]  # Global node id of every click.
    del rank, inverse
    x = items[first]
    node_session = session[first]
    del first
    node_ptr = np.zeros(num_sessions + 1, dtype=np.int64)
    np.cumsum(np.bincount(node_session, minlength=num_sessions),
              out=node_ptr[1:])

    # Distinct transitions between consecutive clicks of the same session:
    same = session[1:] == session[:-1]
    num_nodes = x.size
    base = max(num_nodes, 1)
    edge_key = click_node[:-1][same] * base
    edge_key += click_node[1:][same]
    del same
    src, dst = np.divmod(_sorted_unique(edge_key), base)
    del edge_key
    out_deg = np.bincount(src, minlength=num_nodes)
    in_deg = np.bincount(dst, minlength=num_nodes)
    edge_session = node_session[src]
    del node_session
    edge_ptr = np.zeros(num_sessions + 1, dtype=np.int64)
    np.cumsum(np.bincount(edge_session, minlength=num_sessions),
              out=edge_ptr[1:])
    offset = node_ptr[edge_session]
    del edge_session
    edge_index = np.empty((2, src.size), dtype=np.int64)
    np.subtract(src, offset, out=edge_index[0])
    np.subtract(dst, offset, out=edge_index[1])
    del offset
    weight_in = 1.0 / in_deg[dst]
    weight_out = 1.0 / out_deg[src]
    del src, dst, in_deg, out_deg

    click_index = click_node
    click_index -= node_ptr[session]
    del click_node, session
    last_index = click_index[ptr[1:] - 1] if num_sessions > 0 else \
        np.zeros(0, dtype=np.int64)

    dtype = torch.get_default_dtype()
    data = Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(edge_index),
        edge_weight_in=torch.from_numpy(weight_in).to(dtype),
        edge_weight_out=torch.from_numpy(weight_out).to(dtype),
        click_index=torch.from_numpy(click_index),
        last_index=torch.from_numpy(last_index),
    )
    graph_ptr = torch.arange(num_sessions + 1)
    slices = {
        'x': torch.from_numpy(node_ptr),
        'edge_index': torch.from_numpy(edge_ptr),
        'edge_weight_in': torch.from_numpy(edge_ptr),
        'edge_weight_out': torch.from_numpy(edge_ptr),
        'click_index': torch.from_numpy(ptr.copy()),
        'last_index': graph_ptr,
    }
    if targets is not None:
        data.y = torch.from_numpy(targets)
        slices['y'] = graph_ptr
    return data, slices


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    r"""The sorted distinct values of :obj:`values`, by sorting. (Since
    :obj:`numpy` 2.3, :func:`numpy.unique` without :obj:`return_*` arguments
    hashes, which is ~100x slower than sorting for millions of distinct
    keys.)"""
    values = np.sort(values)
    if values.size > 1:
        values = values[np.concatenate([[True], values[1:] != values[:-1]])]
    return values


def session_to_graph(
    session: Sequence[int],
    target: Optional[int] = None,
) -> Data:
    r"""Builds the graph of a single session, see :func:`sessions_to_graphs`.

    For the session :obj:`[1, 2, 3, 2, 4]` the nodes are items
    :obj:`[1, 2, 3, 4]`; node :obj:`1` (item 2) sends weight :math:`1/2` to
    each of its successors (items 3 and 4) and receives weight :math:`1/2`
    from each of its predecessors (items 1 and 3).

    Args:
        session (sequence of int): The item ids of the clicks, in order.
        target (int, optional): The next item. (default: :obj:`None`)
    """
    session = [int(v) for v in session]
    data, _ = sessions_to_graphs(
        [session], None if target is None else [int(target)])
    return data


__all__ = [
    'flatten_sessions',
    'sessions_to_graphs',
    'session_to_graph',
]
