"""Vector-store backends behind one interface: the embedded Qdrant engine, or a Qdrant server."""

from __future__ import annotations

from rag_gateway.config import Settings
from rag_gateway.rag.retrieval.stores.base import (
    AUTHOR_ID_KEY,
    AUTHOR_NAME_KEY,
    Hit,
    StoredPoint,
    StoreUnavailableError,
    Vector,
    VectorStore,
)
from rag_gateway.resilience import UpstreamGuard

__all__ = [
    "AUTHOR_ID_KEY",
    "AUTHOR_NAME_KEY",
    "Hit",
    "StoreUnavailableError",
    "StoredPoint",
    "Vector",
    "VectorStore",
    "open_vector_store",
]


def open_vector_store(settings: Settings, guard: UpstreamGuard | None = None) -> VectorStore:
    """A Qdrant server when QDRANT_URL is set, else the embedded engine in QDRANT_PATH.

    Raises `StoreUnavailableError` (with what to do) for a folder another process holds or an old layout.
    """
    if settings.qdrant_url is not None:
        from rag_gateway.rag.retrieval.stores.server import ServerStore

        return ServerStore(settings, guard)
    from rag_gateway.rag.retrieval.stores.edge import EdgeStore

    return EdgeStore(settings)
