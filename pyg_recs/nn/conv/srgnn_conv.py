import math
from typing import Tuple

import torch
from torch import Tensor
from torch.nn import GRUCell, Linear, Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import (
    is_sparse,
    is_torch_sparse_tensor,
    scatter,
    spmm,
    to_edge_index,
    to_torch_csr_tensor,
)


class SRGNNConv(MessagePassing):
    r"""The gated session graph operator from the `"Session-based
    Recommendation with Graph Neural Networks"
    <https://arxiv.org/abs/1811.00855>`_ paper (SR-GNN, Eq. 1-5).

    Every node aggregates its predecessors and its successors separately,
    with separate learned transforms, and updates its state with a gated
    recurrent unit; the step is repeated :obj:`num_steps` times with shared
    weights:

    .. math::
        \mathbf{a}^{\textrm{in}}_i &= \sum_{j \rightarrow i}
        w^{\textrm{in}}_{ji} \left( \mathbf{W}_{\textrm{in}}
        \mathbf{h}_j + \mathbf{b}_{\textrm{in}} \right)
        + \mathbf{c}_{\textrm{in}}

        \mathbf{a}^{\textrm{out}}_i &= \sum_{i \rightarrow j}
        w^{\textrm{out}}_{ij} \left( \mathbf{W}_{\textrm{out}}
        \mathbf{h}_j + \mathbf{b}_{\textrm{out}} \right)
        + \mathbf{c}_{\textrm{out}}

        \mathbf{h}_i &\leftarrow \textrm{GRU} \left(
        [\mathbf{a}^{\textrm{in}}_i \, \Vert \, \mathbf{a}^{\textrm{out}}_i],
        \mathbf{h}_i \right)

    where the GRU computes :math:`\mathbf{z}_i = \sigma(\mathbf{W}_z
    \mathbf{a}_i + \mathbf{U}_z \mathbf{h}_i)`, :math:`\mathbf{r}_i =
    \sigma(\mathbf{W}_r \mathbf{a}_i + \mathbf{U}_r \mathbf{h}_i)`,
    :math:`\tilde{\mathbf{h}}_i = \tanh(\mathbf{W}_o \mathbf{a}_i +
    \mathbf{r}_i \odot \mathbf{U}_o \mathbf{h}_i)` and
    :math:`(1 - \mathbf{z}_i) \odot \tilde{\mathbf{h}}_i + \mathbf{z}_i
    \odot \mathbf{h}_i`, as the reference implementation does.

    The weights :math:`w^{\textrm{in}}_{ji} = 1 / |\mathcal{N}^{\textrm{in}}
    (i)|` and :math:`w^{\textrm{out}}_{ij} = 1 / |\mathcal{N}^{\textrm{out}}
    (i)|` are the normalised incoming and outgoing matrices of the paper, as
    built by :func:`pyg_recs.data.session_to_graph`. When they are not given
    they are computed from :obj:`edge_index` by degree normalisation, so the
    layer also works on any directed graph. A sparse adjacency
    (:class:`torch.sparse.Tensor` or :class:`torch_sparse.SparseTensor`) is
    read in PyG's transposed convention (:obj:`adj_t[i, j]` is the weight of
    the edge :math:`j \rightarrow i`) and normalised the same way, giving
    identical results.

    Args:
        channels (int): Size of each node state.
        num_steps (int, optional): The number of propagation steps.
            (default: :obj:`1`)
        bias (bool, optional): If set to :obj:`False`, the layer learns no
            additive biases. (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node states :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)` or sparse adjacency
          :math:`(|\mathcal{V}|, |\mathcal{V}|)`,
          edge weights :math:`(|\mathcal{E}|)` *(optional, two of them)*
        - **output:** node states :math:`(|\mathcal{V}|, F)`
    """
    def __init__(self, channels: int, num_steps: int = 1, bias: bool = True,
                 **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        if channels < 1:
            raise ValueError(f"Invalid 'channels' (got {channels})")
        if num_steps < 1:
            raise ValueError(f"Invalid 'num_steps' (got {num_steps})")
        self.channels = channels
        self.num_steps = num_steps

        self.lin_in = Linear(channels, channels, bias=bias)
        self.lin_out = Linear(channels, channels, bias=bias)
        if bias:
            self.bias_in = Parameter(torch.empty(channels))
            self.bias_out = Parameter(torch.empty(channels))
        else:
            self.register_parameter('bias_in', None)
            self.register_parameter('bias_out', None)
        self.gru = GRUCell(2 * channels, channels, bias=bias)

        self.reset_parameters()

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module, uniformly in
        :math:`[-1/\sqrt{F}, 1/\sqrt{F}]` as the reference does."""
        super().reset_parameters()
        bound = 1.0 / math.sqrt(self.channels)
        for param in self.parameters():
            torch.nn.init.uniform_(param, -bound, bound)

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight_in: OptTensor = None,
                edge_weight_out: OptTensor = None) -> Tensor:
        r"""Runs :obj:`num_steps` gated propagation steps.

        Args:
            x (torch.Tensor): The node states.
            edge_index (torch.Tensor or SparseTensor): The edges, or a sparse
                adjacency in PyG's transposed convention.
            edge_weight_in (torch.Tensor, optional): Incoming edge weights;
                computed by degree normalisation when omitted.
                (default: :obj:`None`)
            edge_weight_out (torch.Tensor, optional): Outgoing edge weights;
                computed by degree normalisation when omitted.
                (default: :obj:`None`)
        """
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise ValueError(f"Expected node states of shape [num_nodes, "
                             f"{self.channels}] (got {list(x.size())})")

        if is_sparse(edge_index):
            if edge_weight_in is not None or edge_weight_out is not None:
                raise ValueError("Edge weights cannot be passed with a "
                                 "sparse adjacency: they are its values")
            adj_in, adj_out = self._normalize_sparse(edge_index, x.size(0))
            index_in, index_out = adj_in, adj_out
            edge_weight_in = edge_weight_out = None
        else:
            if edge_weight_in is None or edge_weight_out is None:
                w_in, w_out = degree_weights(edge_index, x.size(0))
                edge_weight_in = w_in if edge_weight_in is None \
                    else edge_weight_in
                edge_weight_out = w_out if edge_weight_out is None \
                    else edge_weight_out
            index_in, index_out = edge_index, edge_index.flip([0])

        for _ in range(self.num_steps):
            # propagate_type: (x: Tensor, edge_weight: OptTensor)
            a_in = self.propagate(index_in, x=self.lin_in(x),
                                  edge_weight=edge_weight_in)
            # propagate_type: (x: Tensor, edge_weight: OptTensor)
            a_out = self.propagate(index_out, x=self.lin_out(x),
                                   edge_weight=edge_weight_out)
            if self.bias_in is not None:
                a_in = a_in + self.bias_in
                a_out = a_out + self.bias_out
            x = self.gru(torch.cat([a_in, a_out], dim=-1), x)
        return x

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce=self.aggr)

    @staticmethod
    def _normalize_sparse(adj_t: Adj, num_nodes: int) -> Tuple[Adj, Adj]:
        # adj_t[i, j] holds the edge j -> i. In-direction: rows normalised by
        # the (weighted) in-degree; out-direction: the transpose, rows
        # normalised by the out-degree.
        (row, col), value = to_edge_index(adj_t)
        value = value.to(torch.get_default_dtype())
        deg_in = scatter(value, row, 0, dim_size=num_nodes, reduce='sum')
        deg_out = scatter(value, col, 0, dim_size=num_nodes, reduce='sum')
        w_in = value / deg_in[row]
        w_out = value / deg_out[col]
        size = (num_nodes, num_nodes)
        if is_torch_sparse_tensor(adj_t):
            adj_in = to_torch_csr_tensor(torch.stack([row, col]), w_in, size)
            adj_out = to_torch_csr_tensor(torch.stack([col, row]), w_out,
                                          size)
        else:
            adj_in = SparseTensor(row=row, col=col, value=w_in,
                                  sparse_sizes=size)
            adj_out = SparseTensor(row=col, col=row, value=w_out,
                                   sparse_sizes=size)
        return adj_in, adj_out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_steps={self.num_steps})')


def degree_weights(edge_index: Tensor,
                   num_nodes: int) -> Tuple[Tensor, Tensor]:
    r"""The normalised weights :math:`w^{\textrm{in}}_{ji} = 1 /
    \deg^{\textrm{in}}(i)` and :math:`w^{\textrm{out}}_{ji} = 1 /
    \deg^{\textrm{out}}(j)` of every edge :math:`j \rightarrow i` in
    :obj:`edge_index` (each distinct edge should appear once).
    """
    src, dst = edge_index[0], edge_index[1]
    ones = torch.ones(src.numel(), dtype=torch.get_default_dtype(),
                      device=src.device)
    deg_in = scatter(ones, dst, 0, dim_size=num_nodes, reduce='sum')
    deg_out = scatter(ones, src, 0, dim_size=num_nodes, reduce='sum')
    return 1.0 / deg_in[dst], 1.0 / deg_out[src]
