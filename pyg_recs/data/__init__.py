r"""Readers and transforms below the datasets: raw click logs, RecBole
atomic files and KG files to arrays and graphs, session graphs, safe
pickles, splits and verified downloads. The
:class:`~torch_geometric.data.InMemoryDataset` classes of
:mod:`pyg_recs.datasets` (which own the folders: raw, processed, caching)
call them; nothing here keeps state on disk."""
from .clicks import (
    SRGNNSplits,
    read_diginetica_clicks,
    read_yoochoose_clicks,
    srgnn_preprocess,
)
from .kg import build_kg_rec_data, read_atomic_kg, read_ktup
from .safe_pickle import RestrictedUnpickler, UnsafePickleError, safe_load
from .session_graph import (
    flatten_sessions,
    session_to_graph,
    sessions_to_graphs,
)

__all__ = [
    'flatten_sessions',
    'session_to_graph',
    'sessions_to_graphs',
    'RestrictedUnpickler',
    'UnsafePickleError',
    'safe_load',
    'read_diginetica_clicks',
    'read_yoochoose_clicks',
    'srgnn_preprocess',
    'SRGNNSplits',
    'read_atomic_kg',
    'read_ktup',
    'build_kg_rec_data',
]
