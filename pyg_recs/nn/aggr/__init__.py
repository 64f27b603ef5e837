r"""Session readouts: how the clicks of a session become one vector."""
from .soft_attention import SoftAttentionReadout, click_positions

__all__ = ['SoftAttentionReadout', 'click_positions']
