r"""Models: the :class:`Recommender` interface (defined in
:mod:`pyg_recs.nn.recommender`, below the layers, so that knowledge-graph
embeddings meet it too), the SR-GNN family and KTUP."""
from pyg_recs.nn.recommender import Recommender

from .session_gnn import SessionGNN
from .srgnn import SRGNN
from .niser import NISER
from .gcsan import GCSAN
from .tagnn import TAGNN
from .ktup import KTUP

__all__ = [
    'Recommender',
    'SessionGNN',
    'SRGNN',
    'NISER',
    'GCSAN',
    'TAGNN',
    'KTUP',
]
