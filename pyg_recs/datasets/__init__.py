r"""PyG :class:`~torch_geometric.data.InMemoryDataset` classes."""
from .session_dataset import SessionDataset
from .diginetica import Diginetica
from .yoochoose import Yoochoose
from .knowledge_graph import AtomicKGDataset
from .movielens import MovieLens100KKG
from .ktup_format import KTUPDataset

__all__ = [
    'SessionDataset',
    'Diginetica',
    'Yoochoose',
    'AtomicKGDataset',
    'MovieLens100KKG',
    'KTUPDataset',
]
