r"""Functional building blocks shared by the models."""
import torch
from torch import Tensor

__all__ = ['l2_normalize']


class _L2Normalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, eps: float) -> Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        small = norm < eps
        norm = norm.clamp_min(eps)
        y = x / norm
        ctx.save_for_backward(y, norm, small)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):
        y, norm, small = ctx.saved_tensors
        # <g_i, y_i> per row, as a batched (1 x d) @ (d x 1) product: no
        # [rows, d] temporary.
        dot = (grad.unsqueeze(-2) @ y.unsqueeze(-1)).squeeze(-1)
        dot = dot.masked_fill(small, 0.0)  # Clamped rows: y = x / eps.
        return torch.addcmul(grad, y, dot, value=-1.0).div_(norm), None


def l2_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    r"""Divides each row of :obj:`x` (its last dimension) by its L2 norm,

    .. math::
        \mathbf{y}_i = \frac{\mathbf{x}_i}{\max(\Vert \mathbf{x}_i
        \Vert_2, \epsilon)},

    as :func:`torch.nn.functional.normalize` with :obj:`p=2, dim=-1`, with
    a backward pass of its own,

    .. math::
        \frac{\partial \mathcal{L}}{\partial \mathbf{x}_i} =
        \frac{\mathbf{g}_i - \mathbf{y}_i \langle \mathbf{g}_i,
        \mathbf{y}_i \rangle}{\max(\Vert \mathbf{x}_i \Vert_2, \epsilon)}

    (:math:`\mathbf{g}_i` the incoming gradient; rows whose norm is below
    :math:`\epsilon` pass :math:`\mathbf{g}_i / \epsilon`). It reads and
    writes the :obj:`[rows, d]` tensors three times where autograd through
    :func:`~torch.nn.functional.normalize` takes about ten passes: NISER
    normalises its whole item table at every training step.

    Args:
        x (torch.Tensor): The rows, :obj:`[..., d]`.
        eps (float, optional): The smallest norm divided by.
            (default: :obj:`1e-12`)
    """
    return _L2Normalize.apply(x, eps)
