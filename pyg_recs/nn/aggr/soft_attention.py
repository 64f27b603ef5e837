import torch
from torch import Tensor
from torch.nn import Linear
from torch_geometric.utils import cumsum, scatter, softmax


class SoftAttentionReadout(torch.nn.Module):
    r"""The soft-attention session readout of the `"Session-based
    Recommendation with Graph Neural Networks"
    <https://arxiv.org/abs/1811.00855>`_ paper (SR-GNN, Eq. 6), shared by
    its successors (NISER, TAGNN).

    Every click :math:`t` of a session is weighted by its affinity with the
    session's last click :math:`n`, and the weighted clicks are summed:

    .. math::
        \alpha_t &= \mathbf{q}^{\top} \sigma \left( \mathbf{W}_1
        \mathbf{v}_{n} + \mathbf{W}_2 \mathbf{v}_{t} + \mathbf{c}
        \right)

        \mathbf{s}_g &= \sum_{t=1}^{n} \alpha_t \mathbf{v}_{t}

    The clicks of all sessions of a mini-batch are given flat, with the
    session of every click, and the sum is a
    :func:`~torch_geometric.utils.scatter`. As in SR-GNN the weights are
    not normalised, unless :obj:`softmax=True` normalises them over each
    session with :func:`torch_geometric.utils.softmax` (as TAGNN does).

    Args:
        channels (int): Size of each click state.
        softmax (bool, optional): Normalise the weights per session.
            (default: :obj:`False`)

    Shapes:
        - **input:** click states :math:`(C, F)`, session of every click
          :math:`(C)`, last-click states :math:`(B, F)`
        - **output:** session vectors :math:`(B, F)`
    """
    def __init__(self, channels: int, softmax: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.softmax = softmax
        self.lin_last = Linear(channels, channels)  # W_1, c
        self.lin_click = Linear(channels, channels)  # W_2
        self.att = Linear(channels, 1, bias=False)  # q

    def reset_parameters(self):
        r"""Resets all learnable parameters."""
        self.lin_last.reset_parameters()
        self.lin_click.reset_parameters()
        self.att.reset_parameters()

    def forward(self, v_click: Tensor, click_batch: Tensor, v_last: Tensor
                ) -> Tensor:
        num_sessions = v_last.size(0)
        alpha = self.att(
            torch.sigmoid(
                self.lin_last(v_last)[click_batch] +
                self.lin_click(v_click)))  # [num_clicks, 1]
        if self.softmax:
            alpha = softmax(alpha, click_batch, num_nodes=num_sessions)
        return scatter(alpha * v_click, click_batch, dim=0,
                       dim_size=num_sessions, reduce='sum')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'softmax={self.softmax})')


def click_positions(click_batch: Tensor, num_sessions: int) -> Tensor:
    r"""The position of every click within its session, counted from
    :obj:`0` at the session's first click, for clicks listed session by
    session (as :class:`~pyg_recs.loader.SessionLoader` and PyG's
    :class:`~torch_geometric.data.Batch` list them).

    Returns the positions :obj:`[num_clicks]` and the flat index of every
    session's last click :obj:`[num_sessions]` (for a session without
    clicks, a padding one, the last click of the session before it, or
    :obj:`0`)."""
    counts = scatter(torch.ones_like(click_batch), click_batch, dim=0,
                     dim_size=num_sessions, reduce='sum')
    ptr = cumsum(counts)
    arange = torch.arange(click_batch.numel(), device=click_batch.device)
    positions = arange - ptr[click_batch]
    last = (ptr[1:] - 1).clamp(min=0)
    return positions, last
