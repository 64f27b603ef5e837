r"""Pure functions on arrays and graphs: session graphs, safe pickles,
atomic-file readers and splits. No dataset I/O lives here."""
from .clicks import (
    SRGNNSplits,
    read_diginetica_clicks,
    read_yoochoose_clicks,
    srgnn_preprocess,
)
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
]
