r"""Layers and models: :mod:`pyg_recs.nn.conv`, :mod:`pyg_recs.nn.aggr`,
:mod:`pyg_recs.nn.kge`, :mod:`pyg_recs.nn.functional` and
:mod:`pyg_recs.nn.models`."""
from . import aggr, conv, functional, kge, models  # noqa: F401
from .conv import *  # noqa: F401,F403
from .conv import __all__ as conv_all

__all__ = list(conv_all)
