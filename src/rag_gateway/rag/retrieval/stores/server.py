"""A Qdrant server or cluster (QDRANT_URL) through the shared `AsyncQdrantClient`.

This is how a deployment outgrows one machine: several gateway workers and replicas read one Qdrant
cluster. Every call is a native coroutine on one pooled client, guarded (retries, circuit breaker) like
the other upstreams; the client's errors become gateway errors (never their text).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.common.client_exceptions import QdrantException, ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag_gateway.config import Settings
from rag_gateway.errors import (
    GatewayError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    parse_retry_after,
)
from rag_gateway.rag.retrieval.schema import IndexSchema
from rag_gateway.rag.retrieval.stores.base import (
    AUTHOR_NAME_KEY,
    DENSE_VECTOR,
    KEYWORD_INDEXES,
    MAX_FACET_VALUES,
    SPARSE_VECTOR,
    Hit,
    SearchVector,
    SparseVector,
    StoredPoint,
    StoreUnavailableError,
    Vector,
    hit_of,
    named_vectors,
    sparse_term_ids,
)
from rag_gateway.resilience import UpstreamGuard

UPSTREAM = "qdrant"
#: Scores from the original vectors of the filtered points (never quantized copies).
EXACT_SEARCH = models.SearchParams(exact=True, quantization=models.QuantizationSearchParams(ignore=True))
#: The collection metadata key that records the index schema.
SCHEMA_KEY = "rag_gateway_schema"


def author_filter(author: str | None) -> models.Filter | None:
    if author is None:
        return None
    return models.Filter(
        must=[models.FieldCondition(key=AUTHOR_NAME_KEY, match=models.MatchValue(value=author))]
    )


class ServerStore:
    """Qdrant's REST API behind coroutines."""

    def __init__(self, settings: Settings, guard: UpstreamGuard | None = None) -> None:
        assert settings.qdrant_url is not None
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        self._client = AsyncQdrantClient(
            url=settings.qdrant_url,
            api_key=api_key,
            timeout=math.ceil(settings.qdrant_timeout_s),
            check_compatibility=False,  # it would start a thread making a blocking request
        )
        self._guard = guard
        self._params = models.SearchParams(hnsw_ef=settings.vector_search_ef)
        self.location = settings.qdrant_url

    async def _call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        if self._guard is None:
            return await self._call_once(name, *args, **kwargs)
        return await self._guard.call(lambda: self._call_once(name, *args, **kwargs))

    async def _call_once(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, name)(*args, **kwargs)
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
            raise UpstreamBadResponseError(
                "the vector store returned an unusable answer", upstream=UPSTREAM
            ) from exc

    # --- schema -----------------------------------------------------------------------------------
    async def check_schema(self, schema: IndexSchema) -> None:
        present = await self.existing_collections()
        for name in sorted(present):
            info = await self._call("get_collection", name)
            difference = schema.describe_difference(_recorded_schema(info))
            if difference is not None:
                raise StoreUnavailableError(
                    f"the collection {name} on {self.location} was built with another index shape: "
                    f"{difference}. Rebuild it: re-ingest your documents or chunks into new collections "
                    "(a new Qdrant, or after deleting these), e.g. `rag-gateway ingest FILE.jsonl`. "
                    "Nothing was changed."
                )

    async def ensure_collections(self, schema: IndexSchema, collections: Sequence[str]) -> None:
        await self.check_schema(schema)
        for name in collections:
            if await self._call("collection_exists", name):
                continue
            await self._call(
                "create_collection",
                name,
                vectors_config={
                    DENSE_VECTOR: models.VectorParams(size=schema.dim, distance=models.Distance.DOT)
                },
                sparse_vectors_config={
                    SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                metadata={SCHEMA_KEY: schema.as_dict()},
            )
            for field in KEYWORD_INDEXES:
                await self._call(
                    "create_payload_index",
                    name,
                    field_name=field,
                    field_schema=models.PayloadSchemaType.KEYWORD,
                )

    async def existing_collections(self) -> set[str]:
        response = await self._call("get_collections")
        return {c.name for c in response.collections}

    # --- writes (ingestion) ------------------------------------------------------------------------
    async def upsert(self, collection: str, points: Sequence[StoredPoint]) -> None:
        structs = [
            models.PointStruct(id=p.id, vector=named_vectors(p, models.SparseVector), payload=p.payload)
            for p in points
        ]
        await self._call("upsert", collection, points=structs, wait=True)

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

    async def build_index(self, collection: str) -> None:
        """The server's optimizer indexes in the background as points arrive; nothing to do."""

    # --- reads (request path) ----------------------------------------------------------------------
    async def authors(self, collections: Sequence[str]) -> set[str]:
        results = await asyncio.gather(
            *(
                self._call("facet", name, key=AUTHOR_NAME_KEY, limit=MAX_FACET_VALUES, exact=True)
                for name in collections
            )
        )
        return {str(hit.value) for result in results for hit in result.hits if hit.count > 0}

    async def search_collection(
        self, collection: str, vectors: Sequence[SearchVector], author: str | None, limit: int
    ) -> list[list[Hit]]:
        """One batched request per collection: a hit list per query vector, best first."""
        query_filter = author_filter(author)
        requests = [
            models.QueryRequest(
                query=_query(vector),
                using=SPARSE_VECTOR if isinstance(vector, SparseVector) else DENSE_VECTOR,
                filter=query_filter,
                limit=limit,
                with_payload=True,
                with_vector=False,
                params=self._params,
            )
            for vector in vectors
        ]
        responses = await self._call("query_batch_points", collection, requests=requests)
        return [[hit_of(collection, point) for point in response.points] for response in responses]

    async def search_collections(
        self, collections: Sequence[str], vectors: Sequence[SearchVector], author: str | None, limit: int
    ) -> dict[str, list[list[Hit]] | GatewayError]:
        """One concurrent batched request per collection."""
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

    async def dense_scores(self, vector: Vector, ids: Mapping[str, Sequence[str]]) -> dict[str, float]:
        """One exact query per collection, filtered to the listed ids, all concurrently."""
        query = vector.tolist()

        async def score(collection: str, point_ids: Sequence[str]) -> list[Any]:
            response = await self._call(
                "query_points",
                collection,
                query=query,
                using=DENSE_VECTOR,
                query_filter=models.Filter(must=[models.HasIdCondition(has_id=list(point_ids))]),
                limit=len(point_ids),
                with_payload=False,
                with_vectors=False,
                search_params=EXACT_SEARCH,
            )
            return list(response.points)

        wanted = [(collection, point_ids) for collection, point_ids in ids.items() if point_ids]
        found = await asyncio.gather(*(score(collection, point_ids) for collection, point_ids in wanted))
        return {str(point.id): float(point.score) for points in found for point in points}

    async def sample_sparse_terms(self, collection: str, limit: int) -> list[tuple[int, ...]]:
        records, _ = await self._call(
            "scroll", collection, limit=limit, with_payload=False, with_vectors=[SPARSE_VECTOR]
        )
        return [sparse_term_ids(record.vector) for record in records]

    async def close(self) -> None:
        await self._client.close()


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


def _recorded_schema(info: models.CollectionInfo) -> dict[str, Any] | None:
    metadata = info.config.metadata or {}
    recorded = metadata.get(SCHEMA_KEY)
    return recorded if isinstance(recorded, dict) else None


def _query(vector: SearchVector) -> Any:
    if isinstance(vector, SparseVector):
        return models.SparseVector(indices=list(vector.indices), values=list(vector.values))
    return vector.tolist()
