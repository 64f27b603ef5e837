r"""Optional packages, detected once.

:obj:`torch-scatter` and :obj:`torch-sparse` are optional: PyG picks them up
when they are installed and falls back to pure PyTorch otherwise. Our code
never imports them directly; these flags only tell tests and benchmarks
which path is in use.
"""
import torch_geometric.typing as pyg_typing
from torch_geometric.typing import SparseTensor  # noqa: F401

WITH_TORCH_SCATTER: bool = pyg_typing.WITH_TORCH_SCATTER
WITH_TORCH_SPARSE: bool = pyg_typing.WITH_TORCH_SPARSE

__all__ = ['WITH_TORCH_SCATTER', 'WITH_TORCH_SPARSE', 'SparseTensor']
