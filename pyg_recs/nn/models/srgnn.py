import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding, Linear
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import scatter, softmax

from pyg_recs.data.session_graph import IGNORE_INDEX
from pyg_recs.nn.conv.srgnn_conv import SRGNNConv


class SRGNN(torch.nn.Module):
    r"""The SR-GNN model from the `"Session-based Recommendation with Graph
    Neural Networks" <https://arxiv.org/abs/1811.00855>`_ paper.

    Item embeddings :math:`\mathbf{v}_i` are refined on each session graph
    by :class:`~pyg_recs.nn.conv.SRGNNConv`. A soft-attention readout over
    the clicks :math:`v_{s,1}, \ldots, v_{s,n}` of a session combines them
    with the last click (Eq. 6-8):

    .. math::
        \alpha_t &= \mathbf{q}^{\top} \sigma \left( \mathbf{W}_1
        \mathbf{v}_{s,n} + \mathbf{W}_2 \mathbf{v}_{s,t} + \mathbf{c}
        \right)

        \mathbf{s}_g &= \sum_{t=1}^{n} \alpha_t \mathbf{v}_{s,t}

        \mathbf{s}_h &= \mathbf{W}_3 \left[ \mathbf{s}_g \, \Vert \,
        \mathbf{v}_{s,n} \right]

    and every item is scored by :math:`\hat{z}_i = \mathbf{s}_h^{\top}
    \mathbf{v}_i` (Eq. 9), trained with cross-entropy over all items.
    The readout is a sum over each session's clicks computed with
    :func:`~torch_geometric.utils.scatter` over the batch vector; as in the
    paper the weights :math:`\alpha_t` are not normalised, unless
    :obj:`attention_softmax=True` normalises them per session with
    :func:`~torch_geometric.utils.softmax`.

    Args:
        num_items (int): The number of items.
        hidden_channels (int, optional): The embedding size.
            (default: :obj:`100`)
        num_steps (int, optional): Propagation steps of the gated graph
            layer. (default: :obj:`1`)
        hybrid (bool, optional): If set to :obj:`False`, uses the global
            preference :math:`\mathbf{s}_g` alone as the session embedding
            (the paper's SR-GNN-NGC ablation is different: this is the
            reference code's :obj:`nonhybrid` switch). (default: :obj:`True`)
        attention_softmax (bool, optional): Normalise the attention weights
            over each session. (default: :obj:`False`)
    """
    def __init__(
        self,
        num_items: int,
        hidden_channels: int = 100,
        num_steps: int = 1,
        hybrid: bool = True,
        attention_softmax: bool = False,
    ) -> None:
        super().__init__()
        if num_items < 1:
            raise ValueError(f"Invalid 'num_items' (got {num_items})")
        self.num_items = num_items
        self.hidden_channels = hidden_channels
        self.num_steps = num_steps
        self.hybrid = hybrid
        self.attention_softmax = attention_softmax

        self.item_emb = Embedding(num_items, hidden_channels)
        self.conv = SRGNNConv(hidden_channels, num_steps)
        self.lin_last = Linear(hidden_channels, hidden_channels)  # W_1, c
        self.lin_click = Linear(hidden_channels, hidden_channels)  # W_2
        self.att = Linear(hidden_channels, 1, bias=False)  # q
        self.lin_hybrid = Linear(2 * hidden_channels, hidden_channels)  # W_3

        self.reset_parameters()

    @property
    def ddp_find_unused_parameters(self) -> bool:
        # Only the non-hybrid readout leaves parameters (W_3) unused.
        return not self.hybrid

    def reset_parameters(self):
        r"""Resets all learnable parameters uniformly in
        :math:`[-1/\sqrt{d}, 1/\sqrt{d}]`, as the reference does."""
        bound = 1.0 / math.sqrt(self.hidden_channels)
        for param in self.parameters():
            torch.nn.init.uniform_(param, -bound, bound)

    def session_embedding(
        self,
        x: Tensor,
        edge_index: Adj,
        click_index: Tensor,
        last_index: Tensor,
        batch: OptTensor = None,
        edge_weight_in: OptTensor = None,
        edge_weight_out: OptTensor = None,
    ) -> Tensor:
        r"""Returns the session embeddings :math:`\mathbf{s}_h`.

        Args:
            x (torch.Tensor): The item id of every node, :obj:`[num_nodes]`.
            edge_index (torch.Tensor or SparseTensor): The session graph
                edges, see :class:`~pyg_recs.nn.conv.SRGNNConv`.
            click_index (torch.Tensor): The node of every click, in order,
                :obj:`[num_clicks]`.
            last_index (torch.Tensor): The node of every session's last
                click, :obj:`[batch_size]`.
            batch (torch.Tensor, optional): The session of every node,
                :obj:`[num_nodes]`; :obj:`None` means a single session.
                (default: :obj:`None`)
            edge_weight_in (torch.Tensor, optional): Incoming edge weights.
                (default: :obj:`None`)
            edge_weight_out (torch.Tensor, optional): Outgoing edge weights.
                (default: :obj:`None`)
        """
        if not torch.compiler.is_compiling() and x.numel() > 0:
            low, high = torch.stack(torch.aminmax(x)).tolist()  # One sync.
            if low < 0 or high >= self.num_items:
                raise ValueError(f"Item ids must be in [0, "
                                 f"{self.num_items - 1}] (got ids from "
                                 f"{low} to {high})")
        num_sessions = last_index.numel()
        if batch is None:
            batch = x.new_zeros(x.size(0))

        h = self.item_emb(x)  # [num_nodes, hidden]
        h = self.conv(h, edge_index, edge_weight_in, edge_weight_out)

        v_click = h[click_index]  # [num_clicks, hidden]
        click_batch = batch[click_index]  # [num_clicks]
        v_last = h[last_index]  # [num_sessions, hidden]

        alpha = self.att(
            torch.sigmoid(
                self.lin_last(v_last)[click_batch] +
                self.lin_click(v_click)))  # [num_clicks, 1]
        if self.attention_softmax:
            alpha = softmax(alpha, click_batch, num_nodes=num_sessions)
        s_g = scatter(alpha * v_click, click_batch, dim=0,
                      dim_size=num_sessions, reduce='sum')
        if not self.hybrid:
            return s_g
        return self.lin_hybrid(torch.cat([s_g, v_last], dim=-1))

    def forward(
        self,
        x: Tensor,
        edge_index: Adj,
        click_index: Tensor,
        last_index: Tensor,
        batch: OptTensor = None,
        edge_weight_in: OptTensor = None,
        edge_weight_out: OptTensor = None,
    ) -> Tensor:
        r"""Returns the scores of all items for every session,
        :obj:`[batch_size, num_items]`; arguments as in
        :meth:`session_embedding`."""
        s_h = self.session_embedding(x, edge_index, click_index, last_index,
                                     batch, edge_weight_in, edge_weight_out)
        return s_h @ self.item_emb.weight.t()

    def batch_scores(self, batch) -> Tensor:
        r"""Scores of all items for a mini-batch of session graphs, as
        produced by :class:`~pyg_recs.loader.SessionLoader` or PyG's
        :class:`~torch_geometric.loader.DataLoader`."""
        return self(batch.x, batch.edge_index, batch.click_index,
                    batch.last_index, batch.batch,
                    getattr(batch, 'edge_weight_in', None),
                    getattr(batch, 'edge_weight_out', None))

    def loss(self, scores: Tensor, target: Tensor) -> Tensor:
        r"""Cross-entropy of the next item over all items (Eq. 10),
        averaged over the sessions whose target is not :obj:`-100`
        (the padding sessions of
        :class:`~pyg_recs.loader.SessionLoader` with :obj:`pad=True`).

        The log-softmax runs in :obj:`float32` whatever the dtype of
        :obj:`scores` (*e.g.* :obj:`bfloat16` under
        :func:`torch.autocast`): in :obj:`bfloat16` its sum over tens of
        thousands of items would lose most of its precision."""
        return F.cross_entropy(scores.float(), target,
                               ignore_index=IGNORE_INDEX)

    def batch_loss(self, batch) -> Tensor:
        r"""The training loss of a mini-batch with next items
        :obj:`batch.y`."""
        if batch.y.numel() == 0:
            raise ValueError('The loss of an empty batch is undefined')
        return self.loss(self.batch_scores(batch), batch.y)

    @torch.no_grad()
    def recommend(self, batch, k: int = 20) -> Tensor:
        r"""Returns the top-:obj:`k` item ids for every session of the
        mini-batch, :obj:`[batch_size, k]`, best first."""
        if k < 1:
            raise ValueError(f"Invalid 'k' (got {k})")
        scores = self.batch_scores(batch)
        return scores.topk(min(k, self.num_items), dim=-1).indices

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_items}, '
                f'hidden_channels={self.hidden_channels}, '
                f'num_steps={self.num_steps})')
