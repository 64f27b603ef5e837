r"""PyG :class:`~torch_geometric.data.InMemoryDataset` classes."""
from .session_dataset import SessionDataset

__all__ = ['SessionDataset']
