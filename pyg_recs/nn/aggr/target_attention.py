r"""Attention of every candidate over a session's states, for all
candidates at once (TAGNN's target attention)."""
from typing import Tuple

import torch
from torch import Tensor
from torch_geometric.utils import cumsum, segment


def _expand(src: Tensor, count: Tensor, size: int) -> Tensor:
    return src.repeat_interleave(count, dim=0, output_size=size)


class _SegmentSoftmaxSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, values: Tensor,
                ptr: Tensor) -> Tensor:
        count = ptr[1:] - ptr[:-1]
        size = logits.size(0)
        # e = exp(logits - max): one buffer, reused in place.
        e = logits.detach().clone()
        e.sub_(_expand(segment(e, ptr, reduce='max'), count, size)).exp_()
        norm = segment(e, ptr, reduce='sum')
        out = segment(e * values, ptr, reduce='sum').div_(norm)
        e.div_(_expand(norm, count, size))  # beta
        ctx.save_for_backward(e, values, out, ptr)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tuple[Tensor, Tensor, None]:
        beta, values, out, ptr = ctx.saved_tensors
        count = ptr[1:] - ptr[:-1]
        size = beta.size(0)
        # d out / d values = beta, d out / d logits = beta (values - out)
        grad_values = beta * _expand(grad_out, count, size)
        grad_logits = values - _expand(out, count, size)
        grad_logits.mul_(grad_values)
        return grad_logits, grad_values, None


def segment_softmax_sum(logits: Tensor, values: Tensor,
                        ptr: Tensor) -> Tensor:
    r"""Softmax-weighted sums over segments of rows, column by column:

    .. math::
        \mathbf{out}_{b, i} = \sum_{t \in \mathcal{S}_b}
        \frac{\exp(\mathbf{L}_{t, i})}{\sum_{u \in \mathcal{S}_b}
        \exp(\mathbf{L}_{u, i})} \, \mathbf{G}_{t, i} ,

    where segment :math:`\mathcal{S}_b` holds rows
    :obj:`ptr[b]:ptr[b + 1]`. In TAGNN, row :math:`t` is a click (or a
    session node), column :math:`i` a candidate item, :math:`\mathbf{L}`
    the affinities :math:`\mathbf{v}_i^{\top} \mathbf{W} \mathbf{h}_t`
    and :math:`\mathbf{G}` the products :math:`\mathbf{v}_i^{\top}
    \mathbf{h}_t`.

    Equal to :func:`torch_geometric.utils.softmax` over :obj:`ptr`
    followed by :func:`torch_geometric.utils.segment` of the weighted
    values, in one autograd node that keeps two :obj:`[rows, columns]`
    tensors for the backward pass (the weights and the values) instead of
    every intermediate, with gradients
    :math:`\partial \mathbf{out} / \partial \mathbf{G}_{t,i} =
    \beta_{t,i}` and :math:`\partial \mathbf{out} / \partial
    \mathbf{L}_{t,i} = \beta_{t,i} (\mathbf{G}_{t,i} -
    \mathbf{out}_{b,i})`.

    Args:
        logits (torch.Tensor): :obj:`[rows, columns]`.
        values (torch.Tensor): :obj:`[rows, columns]`.
        ptr (torch.Tensor): Segment boundaries, :obj:`[num_segments + 1]`,
            rows sorted by segment; every segment non-empty.

    Returns:
        :obj:`[num_segments, columns]`.
    """
    if logits.dim() != 2 or logits.size() != values.size():
        raise ValueError(f"'logits' and 'values' must be matrices of the "
                         f"same shape (got {tuple(logits.size())} and "
                         f"{tuple(values.size())})")
    if ptr.numel() < 1 or int(ptr[-1]) != logits.size(0):
        raise ValueError(f"'ptr' must end at the number of rows "
                         f"{logits.size(0)} (got {ptr.tolist()[-1:]})")
    if bool((ptr[1:] <= ptr[:-1]).any()):
        raise ValueError("'ptr' must be strictly increasing: every segment "
                         "needs at least one row")
    # Sums in at least float32 (under bf16 autocast the products are bf16).
    dtype = torch.promote_types(
        torch.promote_types(logits.dtype, values.dtype), torch.float32)
    if logits.size(0) == 0:
        return logits.new_zeros(ptr.numel() - 1, logits.size(1), dtype=dtype)
    return _SegmentSoftmaxSum.apply(logits.to(dtype), values.to(dtype), ptr)


def target_attention(h: Tensor, keys: Tensor, items: Tensor,
                     click_index: Tensor, batch: Tensor,
                     num_sessions: int) -> Tensor:
    r"""TAGNN's target attention of every item over each session's clicks,
    :obj:`[num_sessions, num_items]`:

    .. math::
        \mathbf{out}_{b, i} = \sum_{t \in b} \mathrm{softmax}_t \left(
        \mathbf{v}_i^{\top} \mathbf{k}_t \right) \mathbf{v}_i^{\top}
        \mathbf{h}_t ,

    computed over the session nodes rather than the clicks: a node clicked
    :math:`c` times is one row with :math:`\log c` added to its logits,
    which is exactly :math:`c` rows of clicks; then
    :func:`segment_softmax_sum`.

    Args:
        h (torch.Tensor): Node states, :obj:`[num_nodes, hidden]`.
        keys (torch.Tensor): Node keys (TAGNN: :math:`\mathbf{W}
            \mathbf{h}_t`), :obj:`[num_nodes, hidden]`.
        items (torch.Tensor): Item embeddings, :obj:`[num_items, hidden]`.
        click_index (torch.Tensor): The node of every click.
        batch (torch.Tensor): The session of every node (any order).
        num_sessions (int): The number of sessions.
    """
    count = torch.bincount(click_index, minlength=h.size(0))
    if h.size(0) > 1 and bool((batch[1:] < batch[:-1]).any()):
        batch, perm = batch.sort(stable=True)
        h, keys, count = h[perm], keys[perm], count[perm]
    ptr = cumsum(torch.bincount(batch, minlength=num_sessions))
    logits = torch.addmm(count.to(keys.dtype).log().unsqueeze(-1), keys,
                         items.t())
    return segment_softmax_sum(logits, h @ items.t(), ptr)
