r"""Session readouts: how the clicks of a session become one vector (or,
for target attention, one vector per candidate item)."""
from .soft_attention import SoftAttentionReadout, click_positions
from .target_attention import segment_softmax_sum, target_attention

__all__ = ['SoftAttentionReadout', 'click_positions', 'segment_softmax_sum',
           'target_attention']
