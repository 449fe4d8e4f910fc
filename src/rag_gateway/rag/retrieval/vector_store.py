"""The vector store: one interface over Qdrant, remote (`QDRANT_URL`) or local (an on-disk folder).

Remote Qdrant is driven with `AsyncQdrantClient`. qdrant-client's local mode is synchronous numpy code even
behind `AsyncQdrantClient` (it would block the event loop), so in local mode the synchronous client is used
and every call runs in the CPU pool. Callers see the same coroutines either way.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import numpy as np
from qdrant_client import AsyncQdrantClient, QdrantClient, models
from qdrant_client.common.client_exceptions import QdrantException, ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.errors import (
    GatewayError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    parse_retry_after,
)
from rag_gateway.rag.retrieval.embedding import Vector
from rag_gateway.resilience import UpstreamGuard
from rag_gateway.runtime.cpu_pool import CpuPool

T = TypeVar("T")
UPSTREAM = "qdrant"

#: Payload keys written at ingest and read on the request path.
AUTHOR_NAME_KEY = "author_full_name"
AUTHOR_ID_KEY = "author_id"


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk."""

    id: str
    collection: str
    score: float
    payload: Mapping[str, Any]
    vector: Vector | None


def author_filter(author: str | None) -> models.Filter | None:
    if author is None:
        return None
    return models.Filter(
        must=[models.FieldCondition(key=AUTHOR_NAME_KEY, match=models.MatchValue(value=author))]
    )


class VectorStore:
    """Qdrant behind coroutines, whichever mode it runs in."""

    def __init__(self, settings: Settings, pool: CpuPool, guard: UpstreamGuard | None = None) -> None:
        self._pool = pool
        self._guard = guard
        self._remote: AsyncQdrantClient | None = None
        self._local: QdrantClient | None = None
        if settings.qdrant_url is not None:
            api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            self._remote = AsyncQdrantClient(
                url=settings.qdrant_url,
                api_key=api_key,
                timeout=math.ceil(settings.qdrant_timeout_s),
                check_compatibility=False,  # it would start a thread making a blocking request
            )
        else:
            settings.qdrant_path.mkdir(parents=True, exist_ok=True)
            # Local mode: synchronous by nature; every call below goes through the pool.
            self._local = QdrantClient(path=str(settings.qdrant_path))
        self.location = settings.qdrant_url or str(settings.qdrant_path)

    async def _call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        if self._guard is None:
            return await self._call_once(name, *args, **kwargs)
        return await self._guard.call(lambda: self._call_once(name, *args, **kwargs))

    async def _call_once(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        try:
            if self._remote is not None:
                return await getattr(self._remote, name)(*args, **kwargs)
            assert self._local is not None
            method: Callable[..., Any] = getattr(self._local, name)
            return await self._pool.run(method, *args, **kwargs)
        except (UnexpectedResponse, ResponseHandlingException, httpx.HTTPError) as exc:
            raise map_qdrant_error(exc) from exc
        except QdrantException as exc:  # a 429 with Retry-After
            retry_after = exc.retry_after_s if isinstance(exc, ResourceExhaustedResponse) else None
            raise UpstreamUnavailableError(
                "the vector store is rate limiting",
                upstream=UPSTREAM,
                retry_after=retry_after,
                retryable=True,
            ) from exc
        except (json.JSONDecodeError, AssertionError) as exc:  # a 200 that is not JSON, or a null result
            if self._remote is None:
                raise
            raise UpstreamBadResponseError(
                "the vector store returned an unusable answer", upstream=UPSTREAM
            ) from exc

    # --- schema -----------------------------------------------------------------------------------
    async def ensure_collections(self, dim: int, collections: Sequence[str] = COLLECTIONS) -> None:
        """Create missing collections (dot product of unit vectors) and the author index facets need."""
        for name in collections:
            if not await self._call("collection_exists", name):
                await self._call(
                    "create_collection",
                    name,
                    # Dot product on unit vectors is cosine similarity; it spares qdrant-client's local mode
                    # from re-normalising every stored vector on every query.
                    vectors_config=models.VectorParams(size=dim, distance=models.Distance.DOT),
                )
                if self._remote is not None:  # local mode has no payload indexes
                    await self._call(
                        "create_payload_index",
                        name,
                        field_name=AUTHOR_NAME_KEY,
                        field_schema=models.PayloadSchemaType.KEYWORD,
                    )

    async def existing_collections(self) -> set[str]:
        response = await self._call("get_collections")
        return {c.name for c in response.collections}

    # --- writes (ingestion only) ---------------------------------------------------------------------
    async def upsert(self, collection: str, points: Sequence[models.PointStruct]) -> None:
        await self._call("upsert", collection, points=list(points), wait=True)

    async def existing_ids(self, collection: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        found = await self._call(
            "retrieve", collection, ids=list(ids), with_payload=False, with_vectors=False
        )
        return {str(p.id) for p in found}

    async def count(self, collection: str) -> int:
        result = await self._call("count", collection, exact=True)
        return int(result.count)

    # --- reads (request path) ----------------------------------------------------------------------
    async def authors(self, collections: Sequence[str]) -> set[str]:
        """Every distinct author name indexed in the given collections."""
        results = await asyncio.gather(
            *(
                self._call("facet", name, key=AUTHOR_NAME_KEY, limit=10_000, exact=True)
                for name in collections
            )
        )
        return {str(hit.value) for result in results for hit in result.hits}

    async def search_collection(
        self, collection: str, vectors: Sequence[Vector], author: str | None, limit: int
    ) -> list[list[Hit]]:
        """One batched request per collection: a hit list per query vector, best first."""
        requests = _query_requests(vectors, author, limit)
        responses = await self._call("query_batch_points", collection, requests=requests)
        return [[_to_hit(collection, point) for point in response.points] for response in responses]

    async def search_collections(
        self, collections: Sequence[str], vectors: Sequence[Vector], author: str | None, limit: int
    ) -> dict[str, list[list[Hit]] | GatewayError]:
        """Every collection at once; a collection that fails maps to its error, the others still answer.

        Remote: one concurrent batched request per collection. Local mode: one pool job for all of them,
        since each job costs a queue wait and thread hand-offs that dwarf a small brute-force search.
        """
        if self._local is None:
            results = await asyncio.gather(
                *(self.search_collection(name, vectors, author, limit) for name in collections),
                return_exceptions=True,
            )
            found: dict[str, list[list[Hit]] | GatewayError] = {}
            for name, result in zip(collections, results, strict=True):
                if isinstance(result, BaseException) and not isinstance(result, GatewayError):
                    raise result
                found[name] = result
            return found
        local_hits = await self._pool.run(search_local, self._local, collections, vectors, author, limit)
        return dict(local_hits)  # the same hits, typed as the wider mapping callers get

    async def close(self) -> None:
        if self._remote is not None:
            await self._remote.close()
        if self._local is not None:
            await self._pool.run(self._local.close)


def search_local(
    client: QdrantClient,
    collections: Sequence[str],
    vectors: Sequence[Vector],
    author: str | None,
    limit: int,
) -> dict[str, list[list[Hit]]]:
    """Every collection of a local-mode client, synchronously: a hit list per (collection, query vector).

    Local mode deep-copies every query it is given. A query built the usual way carries the vector as a
    384-float Python list, and copying that cost more than the search itself; a NearestQuery built around
    the numpy vector (ours and already valid, hence ``model_construct``) copies in one memcpy. Same hits
    and scores as a batch request (tested), for much less search CPU per request (docs/performance.md).
    """
    query_filter = author_filter(author)
    queries = [
        models.NearestQuery.model_construct(nearest=vector)  # type: ignore[arg-type]  # numpy on purpose
        for vector in vectors
    ]

    def hits(name: str, query: models.NearestQuery) -> list[Hit]:
        response = client.query_points(
            name, query=query, query_filter=query_filter, limit=limit, with_payload=True, with_vectors=True
        )
        return [_to_hit(name, point) for point in response.points]

    return {name: [hits(name, query) for query in queries] for name in collections}


def map_qdrant_error(exc: Exception) -> GatewayError:
    source = exc.source if isinstance(exc, ResponseHandlingException) else exc
    # every vector-store call on the read path is idempotent, so transient failures are retryable
    if isinstance(source, httpx.TimeoutException):
        return UpstreamTimeoutError("the vector store timed out", upstream=UPSTREAM, retryable=True)
    if isinstance(source, httpx.TransportError):
        return UpstreamUnavailableError("the vector store is unreachable", upstream=UPSTREAM, retryable=True)
    if isinstance(source, UnexpectedResponse) and source.status_code in (429, 503):
        retry_after = source.headers.get("retry-after") if source.headers else None
        return UpstreamUnavailableError(
            "the vector store is overloaded",
            upstream=UPSTREAM,
            retryable=True,
            retry_after=parse_retry_after(retry_after),
        )
    status = (source.status_code or 0) if isinstance(source, UnexpectedResponse) else 0
    return UpstreamBadResponseError(
        "the vector store returned an error", upstream=UPSTREAM, retryable=status >= 500
    )


def _query_requests(vectors: Sequence[Vector], author: str | None, limit: int) -> list[models.QueryRequest]:
    query_filter = author_filter(author)
    return [
        models.QueryRequest(
            query=vector.tolist(), filter=query_filter, limit=limit, with_payload=True, with_vector=True
        )
        for vector in vectors
    ]


def _to_hit(collection: str, point: models.ScoredPoint) -> Hit:
    vector = point.vector
    array = np.asarray(vector, dtype=np.float32) if isinstance(vector, list) else None
    return Hit(
        id=str(point.id),
        collection=collection,
        score=float(point.score),
        payload=point.payload or {},
        vector=array,
    )
