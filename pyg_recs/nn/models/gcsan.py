import torch
from torch import Tensor
from torch.nn import TransformerEncoder, TransformerEncoderLayer
from torch_geometric.utils import to_dense_batch

from pyg_recs.nn.models.session_gnn import SessionGNN


class GCSAN(SessionGNN):
    r"""GC-SAN from the `"Graph Contextualized Self-Attention Network for
    Session-based Recommendation" <https://www.ijcai.org/proceedings/2019/
    0547.pdf>`_ paper (IJCAI 2019): SR-GNN's gated graph layer, then
    stacked self-attention blocks over the session's clicks.

    The node states :math:`\mathbf{h}` after
    :class:`~pyg_recs.nn.conv.SRGNNConv` are laid out click by click
    (:func:`~torch_geometric.utils.to_dense_batch`, padded to the longest
    session of the mini-batch and masked), and :obj:`num_layers`
    self-attention blocks (scaled dot-product attention, then a point-wise
    feed-forward network, each with a residual connection, dropout and
    layer normalisation: :class:`torch.nn.TransformerEncoderLayer`)
    contextualise them,

    .. math::
        \mathbf{E} = \mathrm{softmax} \left( \frac{(\mathbf{H}
        \mathbf{W}^Q) (\mathbf{H} \mathbf{W}^K)^{\top}}{\sqrt{d}} \right)
        \mathbf{H} \mathbf{W}^V , \qquad
        \mathbf{F} = \mathrm{ReLU}(\mathbf{E} \mathbf{W}_1 + \mathbf{b}_1)
        \mathbf{W}_2 + \mathbf{b}_2 + \mathbf{E} .

    The session vector mixes the last click's output :math:`\mathbf{f}_n`
    of the last block with its graph state :math:`\mathbf{h}_n`,

    .. math::
        \mathbf{s} = \omega \, \mathbf{f}_n + (1 - \omega) \,
        \mathbf{h}_n ,

    and every item is scored by :math:`\hat{z}_i = \mathbf{s}^{\top}
    \mathbf{v}_i`. Since only :math:`\mathbf{f}_n` is used, the last block
    runs its query, feed-forward network and norms for the last click
    alone (:func:`last_query_block`; the keys and values still span the
    session), which is exact and about a third of that block's work.

    Args:
        num_items (int): The number of items.
        hidden_channels (int, optional): The embedding size.
            (default: :obj:`100`)
        num_steps (int, optional): Propagation steps of the gated graph
            layer. (default: :obj:`1`)
        num_layers (int, optional): Self-attention blocks :math:`k`.
            (default: :obj:`1`)
        heads (int, optional): Attention heads. (default: :obj:`1`)
        omega (float, optional): The weight :math:`\omega` of the
            self-attention output. (default: :obj:`0.6`)
        dropout (float, optional): Dropout in the blocks.
            (default: :obj:`0.2`)
        causal (bool, optional): Let every click attend only to itself and
            the clicks before it (RecBole-GNN's choice; the paper's blocks
            attend over the whole session). With one block the last
            click's output is the same either way. (default: :obj:`False`)
    """
    def __init__(
        self,
        num_items: int,
        hidden_channels: int = 100,
        num_steps: int = 1,
        num_layers: int = 1,
        heads: int = 1,
        omega: float = 0.6,
        dropout: float = 0.2,
        causal: bool = False,
    ) -> None:
        super().__init__(num_items, hidden_channels, num_steps)
        if num_layers < 1:
            raise ValueError(f"Invalid 'num_layers' (got {num_layers})")
        if heads < 1 or hidden_channels % heads != 0:
            raise ValueError(f"Invalid 'heads' (got {heads}): it must "
                             f"divide hidden_channels ({hidden_channels})")
        if not 0 <= omega <= 1:
            raise ValueError(f"Invalid 'omega' (got {omega})")
        if not 0 <= dropout < 1:
            raise ValueError(f"Invalid 'dropout' (got {dropout})")
        self.num_layers = num_layers
        self.heads = heads
        self.omega = omega
        self.dropout = dropout
        self.causal = causal
        layer = TransformerEncoderLayer(
            hidden_channels, heads, dim_feedforward=hidden_channels,
            dropout=dropout, activation='relu', batch_first=True)
        self.encoder = TransformerEncoder(layer, num_layers,
                                          enable_nested_tensor=False)
        self.reset_parameters()

    def readout(self, h: Tensor, click_index: Tensor, last_index: Tensor,
                batch: Tensor) -> Tensor:
        num_sessions = last_index.numel()
        click_batch = batch[click_index]
        dense, mask = to_dense_batch(h[click_index], click_batch,
                                     batch_size=num_sessions)
        length = mask.sum(dim=1)
        # A session without clicks (a padding one) attends to its first
        # slot, so that no softmax runs over nothing.
        mask[:, 0] = True
        causal = None
        if self.causal and self.num_layers > 1:
            size = dense.size(1)
            causal = torch.ones(size, size, dtype=torch.bool,
                                device=dense.device).triu(1)
        *layers, top = self.encoder.layers
        for layer in layers:
            dense = layer(dense, src_mask=causal, src_key_padding_mask=~mask)
        arange = torch.arange(num_sessions, device=dense.device)
        f_last = last_query_block(top, dense, arange,
                                  (length - 1).clamp(min=0), ~mask)
        return self.omega * f_last + (1 - self.omega) * h[last_index]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_items}, '
                f'hidden_channels={self.hidden_channels}, '
                f'num_steps={self.num_steps}, num_layers={self.num_layers}, '
                f'omega={self.omega})')


def last_query_block(layer: TransformerEncoderLayer, x: Tensor,
                     rows: Tensor, cols: Tensor, pad: Tensor) -> Tensor:
    r"""The output of the post-norm :obj:`layer` at one position of each
    sequence, :obj:`x[rows, cols]`, the only one the readout uses: keys and
    values span the whole sequence (:obj:`pad` masks the padding), while
    the query, the residuals, the feed-forward network, the dropouts and
    the layer norms run for that position alone, not for every click.
    Exact, and the same with a causal mask when the position is the last
    one (it sees every click anyway)."""
    if layer.norm_first:
        raise ValueError('last_query_block takes a post-norm layer')
    q = x[rows, cols].unsqueeze(1)
    a = layer.self_attn(q, x, x, key_padding_mask=pad,
                        need_weights=False)[0]
    q = layer.norm1(q + layer.dropout1(a))
    f = layer.linear2(layer.dropout(layer.activation(layer.linear1(q))))
    return layer.norm2(q + layer.dropout2(f)).squeeze(1)
