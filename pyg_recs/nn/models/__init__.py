from .srgnn import SRGNN
from .ktup import KTUP

__all__ = ['SRGNN', 'KTUP']
