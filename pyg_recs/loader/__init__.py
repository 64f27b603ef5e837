r"""Mini-batch loaders for session graphs and knowledge-graph data."""
from .session_loader import SessionLoader
from .kg_loader import (
    InteractionLoader,
    JointLoader,
    RankingEvalLoader,
    TripleLoader,
)

__all__ = [
    'SessionLoader',
    'InteractionLoader',
    'TripleLoader',
    'JointLoader',
    'RankingEvalLoader',
]
