import torch
from torch import Tensor
from torch.nn import Linear
from torch_geometric.typing import Adj, OptTensor

from pyg_recs.nn.aggr import target_attention
from pyg_recs.nn.models.srgnn import SRGNN


class TAGNN(SRGNN):
    r"""TAGNN from the `"TAGNN: Target Attentive Graph Neural Networks for
    Session-based Recommendation" <https://arxiv.org/abs/2005.02844>`_
    paper (SIGIR 2020): SR-GNN plus a target-aware attention that builds
    a different session vector for every candidate item.

    For a candidate item :math:`i` every click :math:`t` of the session is
    weighted by its affinity with the item, normalised over the session's
    clicks, and the weighted clicks form the target embedding:

    .. math::
        \beta_{i,t} = \mathrm{softmax}_t \left( \mathbf{v}_i^{\top}
        \mathbf{W} \mathbf{h}_t \right) , \qquad
        \mathbf{s}_{\textrm{target}}^{i} = \sum_{t=1}^{n} \beta_{i,t}
        \mathbf{h}_t .

    With the SR-GNN hybrid vector :math:`\mathbf{s}_h` (here with the
    soft-attention weights normalised per session, as in the TAGNN code)
    the score of item :math:`i` is

    .. math::
        \hat{z}_i = (\mathbf{s}_h + \mathbf{s}_{\textrm{target}}^{i})^{\top}
        \mathbf{v}_i = \mathbf{s}_h^{\top} \mathbf{v}_i + \sum_{t}
        \beta_{i,t} \, \mathbf{h}_t^{\top} \mathbf{v}_i .

    All items are scored at once: the affinities
    :math:`\mathbf{V} \mathbf{W} \mathbf{h}_t` and products
    :math:`\mathbf{V} \mathbf{h}_t` of every session node with every item
    are two matrix products of shape :obj:`[num_nodes, num_items]` (a node
    clicked :math:`c` times is one row with :math:`\log c` added to its
    affinities, which equals :math:`c` rows of clicks), normalised over each
    session's nodes and summed in one autograd step
    (:func:`~pyg_recs.nn.aggr.target_attention`). A mini-batch costs
    :math:`O(U N d)` for :math:`U` session nodes and :math:`N` items (the
    reference code pads every session to the longest one,
    :math:`O(B L_{\max} N d)`).

    Args:
        num_items (int): The number of items.
        hidden_channels (int, optional): The embedding size.
            (default: :obj:`100`)
        num_steps (int, optional): Propagation steps of the gated graph
            layer. (default: :obj:`1`)
    """
    def __init__(self, num_items: int, hidden_channels: int = 100,
                 num_steps: int = 1) -> None:
        super().__init__(num_items, hidden_channels, num_steps,
                         attention_softmax=True)
        self.lin_target = Linear(hidden_channels, hidden_channels,
                                 bias=False)  # W
        self.reset_parameters()

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
        :meth:`~pyg_recs.nn.models.SessionGNN.session_embedding`."""
        if batch is None:
            batch = x.new_zeros(x.size(0))
        num_sessions = last_index.numel()
        h = self.node_states(x, edge_index, edge_weight_in, edge_weight_out)
        s_h = self.readout(h, click_index, last_index, batch)
        items = self.item_weights()
        target = target_attention(h, self.lin_target(h), items, click_index,
                                  batch, num_sessions)
        return torch.addmm(target.to(s_h.dtype), s_h, items.t())
