r"""Mini-batch loaders for session graphs and knowledge-graph data."""
from .session_loader import SessionLoader

__all__ = ['SessionLoader']
