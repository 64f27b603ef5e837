r"""pyg_recs: graph learning for recommendation on PyTorch Geometric."""
import pyg_recs.data  # noqa: F401
import pyg_recs.engine  # noqa: F401
import pyg_recs.loader  # noqa: F401
import pyg_recs.datasets  # noqa: F401
import pyg_recs.metrics  # noqa: F401
import pyg_recs.nn  # noqa: F401
from pyg_recs.typing import WITH_TORCH_SCATTER, WITH_TORCH_SPARSE

__version__ = '0.1.0'

__all__ = [
    'WITH_TORCH_SCATTER',
    'WITH_TORCH_SPARSE',
    '__version__',
]
