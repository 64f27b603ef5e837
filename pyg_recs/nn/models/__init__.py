from .session_gnn import SessionGNN
from .srgnn import SRGNN
from .niser import NISER
from .gcsan import GCSAN
from .tagnn import TAGNN
from .ktup import KTUP

__all__ = ['SessionGNN', 'SRGNN', 'NISER', 'GCSAN', 'TAGNN', 'KTUP']
