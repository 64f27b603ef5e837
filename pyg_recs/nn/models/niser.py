import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding

from pyg_recs.nn.aggr import click_positions
from pyg_recs.nn.functional import l2_normalize
from pyg_recs.nn.models.srgnn import SRGNN


class NISER(SRGNN):
    r"""NISER+ from the `"NISER: Normalized Item and Session Representations
    to Handle Popularity Bias" <https://arxiv.org/abs/1909.04276>`_ paper:
    SR-GNN whose item and session vectors are L2-normalised, with position
    embeddings and dropout.

    The item states enter the graph normalised (after dropout on the
    embedding), :math:`\tilde{\mathbf{v}}_i = \mathbf{v}_i / \Vert
    \mathbf{v}_i \Vert_2`; after propagation a learned embedding
    :math:`\mathbf{p}_t` of each click's position :math:`t` in its session
    is added to the click's state before the SR-GNN readout
    (:class:`~pyg_recs.nn.aggr.SoftAttentionReadout` and the hybrid
    :math:`\mathbf{W}_3`), and the session vector is normalised too,
    :math:`\tilde{\mathbf{s}} = \mathbf{s}_h / \Vert \mathbf{s}_h \Vert_2`.
    Scores are scaled cosine similarities,

    .. math::
        \hat{z}_i = \sigma \, \tilde{\mathbf{s}}^{\top}
        \tilde{\mathbf{v}}_i ,

    with the scale (inverse temperature) :math:`\sigma`, so that the
    softmax over all items is not dominated by the norms of popular items.

    Args:
        num_items (int): The number of items.
        hidden_channels (int, optional): The embedding size.
            (default: :obj:`100`)
        num_steps (int, optional): Propagation steps of the gated graph
            layer. (default: :obj:`1`)
        scale (float, optional): The scale :math:`\sigma` of the scores.
            (default: :obj:`16.0`)
        dropout (float, optional): Dropout on the item embeddings entering
            the graph. (default: :obj:`0.1`)
        max_positions (int, optional): Positions with an embedding of their
            own; later clicks share the last one. (default: :obj:`200`)
    """
    def __init__(
        self,
        num_items: int,
        hidden_channels: int = 100,
        num_steps: int = 1,
        scale: float = 16.0,
        dropout: float = 0.1,
        max_positions: int = 200,
    ) -> None:
        if not scale > 0:
            raise ValueError(f"Invalid 'scale' (got {scale})")
        if not 0 <= dropout < 1:
            raise ValueError(f"Invalid 'dropout' (got {dropout})")
        if max_positions < 1:
            raise ValueError(f"Invalid 'max_positions' (got "
                             f"{max_positions})")
        self.scale = scale
        self.dropout = dropout
        self.max_positions = max_positions
        super().__init__(num_items, hidden_channels, num_steps)
        self.pos_emb = Embedding(max_positions, hidden_channels)
        self.reset_parameters()

    def embed(self, x: Tensor) -> Tensor:
        h = F.dropout(self.item_emb(x), p=self.dropout,
                      training=self.training)
        return l2_normalize(h)

    def item_weights(self) -> Tensor:
        return l2_normalize(self.item_emb.weight)

    def click_states(self, h: Tensor, click_index: Tensor,
                     last_index: Tensor, click_batch: Tensor):
        positions, last = click_positions(click_batch, last_index.numel())
        v_click = h[click_index] + self.pos_emb(
            positions.clamp(max=self.max_positions - 1))
        return v_click, v_click[last]

    def readout(self, h: Tensor, click_index: Tensor, last_index: Tensor,
                batch: Tensor) -> Tensor:
        return l2_normalize(
            super().readout(h, click_index, last_index, batch))

    def score(self, s: Tensor) -> Tensor:
        # The scale on the [batch, d] sessions, not the [batch, items]
        # scores: the same product, two passes fewer over the scores.
        return (self.scale * s) @ self.item_weights().t()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_items}, '
                f'hidden_channels={self.hidden_channels}, '
                f'num_steps={self.num_steps}, scale={self.scale})')
