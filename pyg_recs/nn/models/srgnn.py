import torch
from torch import Tensor
from torch.nn import Linear

from pyg_recs.nn.aggr import SoftAttentionReadout
from pyg_recs.nn.models.session_gnn import SessionGNN


class SRGNN(SessionGNN):
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
    The readout is :class:`~pyg_recs.nn.aggr.SoftAttentionReadout`, a sum
    over each session's clicks computed with
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
        super().__init__(num_items, hidden_channels, num_steps)
        self.hybrid = hybrid
        self.attention_softmax = attention_softmax
        self.attention = SoftAttentionReadout(hidden_channels,
                                              softmax=attention_softmax)
        self.lin_hybrid = Linear(2 * hidden_channels, hidden_channels)  # W_3
        self._register_load_state_dict_pre_hook(_rename_old_keys)
        self.reset_parameters()

    @property
    def ddp_find_unused_parameters(self) -> bool:
        # Only the non-hybrid readout leaves parameters (W_3) unused.
        return not self.hybrid

    def click_states(self, h: Tensor, click_index: Tensor,
                     last_index: Tensor, click_batch: Tensor):
        r"""The states of every click and of every session's last click
        the readout attends over."""
        return h[click_index], h[last_index]

    def readout(self, h: Tensor, click_index: Tensor, last_index: Tensor,
                batch: Tensor) -> Tensor:
        r"""The hybrid session vector :math:`\mathbf{s}_h` (Eq. 6-8), or
        :math:`\mathbf{s}_g` when :obj:`hybrid=False`."""
        click_batch = batch[click_index]  # [num_clicks]
        v_click, v_last = self.click_states(h, click_index, last_index,
                                            click_batch)
        s_g = self.attention(v_click, click_batch, v_last)
        if not self.hybrid:
            return s_g
        return self.lin_hybrid(torch.cat([s_g, v_last], dim=-1))


_OLD_KEYS = ('lin_last.', 'lin_click.', 'att.')


def _rename_old_keys(state_dict, prefix, *args, **kwargs):
    # Checkpoints written before the readout became its own module kept its
    # weights at the top level ('lin_last.weight', ...).
    for key in list(state_dict):
        rest = key[len(prefix):]
        if key.startswith(prefix) and rest.startswith(_OLD_KEYS):
            state_dict[prefix + 'attention.' + rest] = state_dict.pop(key)
