r"""Pure functions on arrays and graphs: session graphs, safe pickles,
atomic-file readers and splits. No dataset I/O lives here."""
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
]
