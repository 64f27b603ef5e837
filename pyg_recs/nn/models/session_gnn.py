import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding
from torch_geometric.typing import Adj, OptTensor

from pyg_recs.data.session_graph import IGNORE_INDEX
from pyg_recs.nn.recommender import Recommender
from pyg_recs.nn.conv.srgnn_conv import SRGNNConv


class SessionGNN(Recommender):
    r"""The base of the SR-GNN family: item embeddings refined on each
    session graph by the gated :class:`~pyg_recs.nn.conv.SRGNNConv`, a
    readout that turns the clicks of a session into a session vector
    :math:`\mathbf{s}`, and scores :math:`\hat{z}_i = \mathbf{s}^{\top}
    \mathbf{v}_i` over all items, trained with cross-entropy.

    A model of the family implements :meth:`readout`, and may change how
    item states enter the graph (:meth:`embed`) and how sessions meet items
    (:meth:`score`, or :meth:`forward` as a whole). It meets the
    :class:`~pyg_recs.nn.models.Recommender` interface the engine relies on
    (:meth:`batch_scores`, :meth:`batch_loss`, :meth:`recommend`).

    Args:
        num_items (int): The number of items.
        hidden_channels (int, optional): The embedding size.
            (default: :obj:`100`)
        num_steps (int, optional): Propagation steps of the gated graph
            layer. (default: :obj:`1`)
    """
    def __init__(self, num_items: int, hidden_channels: int = 100,
                 num_steps: int = 1) -> None:
        super().__init__()
        if num_items < 1:
            raise ValueError(f"Invalid 'num_items' (got {num_items})")
        self.num_items = num_items
        self.hidden_channels = hidden_channels
        self.num_steps = num_steps
        self.item_emb = Embedding(num_items, hidden_channels)
        self.conv = SRGNNConv(hidden_channels, num_steps)

    def reset_parameters(self):
        r"""Resets all learnable parameters uniformly in
        :math:`[-1/\sqrt{d}, 1/\sqrt{d}]`, as the SR-GNN reference does
        (layer norms, if any, to the identity)."""
        bound = 1.0 / math.sqrt(self.hidden_channels)
        for param in self.parameters():
            torch.nn.init.uniform_(param, -bound, bound)
        for module in self.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.reset_parameters()

    def embed(self, x: Tensor) -> Tensor:
        r"""The states of the items :obj:`x` before propagation."""
        return self.item_emb(x)

    def item_weights(self) -> Tensor:
        r"""The item vectors :math:`\mathbf{v}_i` sessions are scored
        against, :obj:`[num_items, hidden_channels]`."""
        return self.item_emb.weight

    def score(self, s: Tensor) -> Tensor:
        r"""The scores of all items for the session vectors :obj:`s`."""
        return s @ self.item_weights().t()

    def readout(self, h: Tensor, click_index: Tensor, last_index: Tensor,
                batch: Tensor) -> Tensor:
        r"""The session vectors from the node states :obj:`h` after
        propagation, :obj:`[batch_size, hidden_channels]`."""
        raise NotImplementedError

    def node_states(
        self,
        x: Tensor,
        edge_index: Adj,
        edge_weight_in: OptTensor = None,
        edge_weight_out: OptTensor = None,
    ) -> Tensor:
        r"""The node states after propagation on the session graphs."""
        if not torch.compiler.is_compiling() and x.numel() > 0:
            low, high = torch.stack(torch.aminmax(x)).tolist()  # One sync.
            if low < 0 or high >= self.num_items:
                raise ValueError(f"Item ids must be in [0, "
                                 f"{self.num_items - 1}] (got ids from "
                                 f"{low} to {high})")
        return self.conv(self.embed(x), edge_index, edge_weight_in,
                         edge_weight_out)

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
        r"""Returns the session vectors :math:`\mathbf{s}`.

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
        if batch is None:
            batch = x.new_zeros(x.size(0))
        h = self.node_states(x, edge_index, edge_weight_in, edge_weight_out)
        return self.readout(h, click_index, last_index, batch)

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
        return self.score(
            self.session_embedding(x, edge_index, click_index, last_index,
                                   batch, edge_weight_in, edge_weight_out))

    def batch_scores(self, batch) -> Tensor:
        r"""Scores of all items for a mini-batch of session graphs, as
        produced by :class:`~pyg_recs.loader.SessionLoader` or PyG's
        :class:`~torch_geometric.loader.DataLoader`."""
        return self(batch.x, batch.edge_index, batch.click_index,
                    batch.last_index, batch.batch,
                    getattr(batch, 'edge_weight_in', None),
                    getattr(batch, 'edge_weight_out', None))

    def loss(self, scores: Tensor, target: Tensor) -> Tensor:
        r"""Cross-entropy of the next item over all items, averaged over
        the sessions whose target is not :obj:`-100` (the padding sessions
        of :class:`~pyg_recs.loader.SessionLoader` with :obj:`pad=True`).

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

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_items}, '
                f'hidden_channels={self.hidden_channels}, '
                f'num_steps={self.num_steps})')
