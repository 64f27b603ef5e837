r"""PyG :class:`~torch_geometric.data.InMemoryDataset` classes."""
from .session_dataset import SessionDataset
from .knowledge_graph import AtomicKGDataset
from .movielens import MovieLens100KKG
from .ktup_format import KTUPDataset

__all__ = [
    'SessionDataset',
    'AtomicKGDataset',
    'MovieLens100KKG',
    'KTUPDataset',
]
