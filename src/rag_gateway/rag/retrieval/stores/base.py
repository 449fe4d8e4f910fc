"""What every vector-store backend offers the pipeline and ingestion, whatever engine runs it.

Two backends: the Qdrant engine embedded in-process (`EdgeStore`, the default, a folder at QDRANT_PATH)
and a Qdrant server or cluster (`ServerStore`, QDRANT_URL). Both store per chunk a dense vector (``dense``:
dot product on unit vectors, i.e. cosine) and a BM25 sparse vector (``bm25``, IDF applied by the store),
with keyword indexes on the author fields, and answer the same calls with the same hits; `tests/contract`
holds them to it. Each collection records the `IndexSchema` it was built with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rag_gateway.errors import GatewayError
from rag_gateway.rag.retrieval.schema import IndexSchema

Vector = npt.NDArray[np.float32]

#: Payload keys written at ingest and read on the request path.
AUTHOR_NAME_KEY = "author_full_name"
AUTHOR_ID_KEY = "author_id"
#: Payload fields with a keyword index: the author filter and the author catalogue read them.
KEYWORD_INDEXES = (AUTHOR_NAME_KEY, AUTHOR_ID_KEY)
#: Facet values read at most per collection (the author catalogue).
MAX_FACET_VALUES = 100_000
#: The named vectors of every collection.
DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"


@dataclass(frozen=True, slots=True)
class SparseVector:
    """BM25 term weights: hashed token ids and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


#: What one search looks for: a dense query vector, or a BM25 query.
SearchVector = Vector | SparseVector


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk. No vector comes along: the reranker asks the store for the scores it needs
    (`VectorStore.dense_scores`), which costs less than carrying 384 floats per hit into Python."""

    id: str
    collection: str
    score: float
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """One chunk to write: its id (a UUID string), its unit vector and its payload."""

    id: str
    vector: Sequence[float] | Vector
    payload: dict[str, Any]
    sparse: SparseVector | None = None


def named_vectors(point: StoredPoint, sparse_type: Callable[..., Any]) -> dict[str, Any]:
    """A point's vectors as both engines take them: the dense list, and the BM25 vector when it has terms
    (``sparse_type`` is the engine's own sparse-vector class)."""
    dense = point.vector.tolist() if isinstance(point.vector, np.ndarray) else list(point.vector)
    vectors: dict[str, Any] = {DENSE_VECTOR: dense}
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE_VECTOR] = sparse_type(
            indices=list(point.sparse.indices), values=list(point.sparse.values)
        )
    return vectors


def hit_of(collection: str, point: Any, payload: Mapping[str, Any] | None = None) -> Hit:
    """A scored point of either engine (same fields: id, score, payload) as a `Hit`; ``payload`` when it
    was fetched apart from the search."""
    return Hit(
        id=str(point.id),  # a uuid.UUID for UUID ids on the embedded engine
        collection=collection,
        score=float(point.score),
        payload=payload if payload is not None else (point.payload or {}),
    )


def sparse_term_ids(vectors: Any) -> tuple[int, ...]:
    """The BM25 term ids in a stored point's named vectors (either engine's record); none for a chunk
    whose text had no terms."""
    sparse = vectors.get(SPARSE_VECTOR) if isinstance(vectors, dict) else None
    return tuple(sparse.indices) if sparse is not None else ()


class StoreUnavailableError(RuntimeError):
    """The store cannot be opened as configured (locked by another process, an old layout, a bad folder).

    Its message says what to do; it is raised at start-up or by the CLI, never on the request path.
    """


class VectorStore(Protocol):
    """The calls the gateway and ingestion make; each backend keeps its engine's details to itself."""

    #: Where the data lives (a folder or a URL), for messages.
    location: str

    async def ensure_collections(self, schema: IndexSchema, collections: Sequence[str]) -> None:
        """Create the missing collections with the author indexes, recording ``schema``.

        Raises `StoreUnavailableError` when an existing collection was built with another schema.
        """
        ...

    async def check_schema(self, schema: IndexSchema) -> None:
        """Raise `StoreUnavailableError` (naming the rebuild) if any collection has another schema."""
        ...

    async def existing_collections(self) -> set[str]: ...

    async def upsert(self, collection: str, points: Sequence[StoredPoint]) -> None:
        """Write points; a point whose id exists is replaced, so re-importing adds nothing."""
        ...

    async def existing_ids(self, collection: str, ids: Sequence[str]) -> set[str]: ...

    async def count(self, collection: str) -> int: ...

    async def build_index(self, collection: str) -> None:
        """Index what bulk writes added (a no-op where the engine indexes by itself)."""
        ...

    async def authors(self, collections: Sequence[str]) -> set[str]:
        """Every distinct author name indexed in the given collections."""
        ...

    async def search_collections(
        self, collections: Sequence[str], vectors: Sequence[SearchVector], author: str | None, limit: int
    ) -> dict[str, list[list[Hit]] | GatewayError]:
        """A hit list per (collection, query), best first, filtered by author when one is given; dense
        and BM25 queries may be mixed (one batched call per collection).

        A collection that fails maps to its error (the others still answer); the gateway's own overload
        is raised.
        """
        ...

    async def sample_sparse_terms(self, collection: str, limit: int) -> list[tuple[int, ...]]:
        """The BM25 term ids of up to ``limit`` stored points (in id order, which is random for UUID
        ids), one tuple per point (empty for a chunk without terms): a sample for document-frequency
        estimates."""
        ...

    async def dense_scores(self, vector: Vector, ids: Mapping[str, Sequence[str]]) -> dict[str, float]:
        """The exact dot product of ``vector`` with the stored dense vector of each listed point
        (collection -> point ids), by point id: the embedding reranker's cosine, computed where the
        vectors live. Points that no longer exist are left out."""
        ...

    async def close(self) -> None: ...
