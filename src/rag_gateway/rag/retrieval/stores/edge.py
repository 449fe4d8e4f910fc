"""The Qdrant engine embedded in the gateway's process (qdrant-edge): the default store.

One shard per collection, each a folder under QDRANT_PATH, with Qdrant's own segments, HNSW index, payload
indexes and write-ahead log. A folder belongs to one process at a time (the engine locks it), so a second
gateway or an ingest run on the same folder gets a clear error; several workers need QDRANT_URL.

The engine's calls hold the GIL for their whole duration (the binding releases it nowhere), so a pool
thread would not run them in parallel with the event loop; it would only add two thread hand-offs per
call. Reads therefore run inline: an HNSW search with an author filter on a keyword index takes well
under a millisecond. Bulk writes and `build_index` (HNSW construction) run only in ingestion, never in the
serving process.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import methodcaller
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import qdrant_edge as edge

from rag_gateway.config import Settings
from rag_gateway.errors import GatewayError, UpstreamBadResponseError
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
    named_vectors,
    sparse_term_ids,
)

T = TypeVar("T")
UPSTREAM = "vector_store"
#: Written at the folder's root: what built it, so a later version can tell an older layout.
LAYOUT_FILE = "store.json"
LAYOUT = {"engine": "qdrant-edge", "layout": 1}
#: Candidates rescored with the original vectors, as a multiple of the limit (quantized search).
QUANTIZATION_OVERSAMPLING = 2.0
#: Scores from the original vectors of the filtered points (never their int8 copies).
EXACT_SEARCH = edge.SearchParams(exact=True, quantization=edge.QuantizationSearchParams(ignore=True))
#: Held (flock) by the process that has the folder open.
LOCK_FILE = ".lock"
#: Files qdrant-client's local mode (the store of earlier versions) leaves at a folder's root.
LOCAL_MODE_MARKERS = ("meta.json", "collection")


#: BM25 vectors, with the IDF modifier, as every shard of this store has them.
SPARSE_PARAMS = edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)


def shard_config(dim: int, quantization: bool, search_threads: int) -> edge.EdgeConfig:
    """Dot product on unit vectors (cosine); with quantization, int8 copies in RAM and originals on disk.
    BM25 vectors with the IDF modifier."""
    if quantization:
        dense = edge.EdgeVectorParams(
            size=dim,
            distance=edge.Distance.Dot,
            memory=edge.Memory.Cold,
            quantization_config=edge.ScalarQuantizationConfig(
                type=edge.ScalarType.Int8, quantile=0.99, memory=edge.Memory.Pinned
            ),
        )
    else:
        dense = edge.EdgeVectorParams(size=dim, distance=edge.Distance.Dot, memory=edge.Memory.Cached)
    return edge.EdgeConfig(
        vectors={DENSE_VECTOR: dense},
        sparse_vectors={SPARSE_VECTOR: SPARSE_PARAMS},
        hnsw_config=edge.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
        payload_memory=edge.Memory.Cached,
        max_search_threads=search_threads,
    )


def load_config(search_threads: int) -> edge.EdgeConfig:
    """What loading a shard may set without a rebuild: its search pool. The engine wants the stored
    vectors named too; the BM25 ones (checked against the shard's) stand for them, the rest is the shard's
    own. The engine's default pool has a thread per core: a search then hands each segment to it and
    waits, which costs more CPU than searching in one thread on small collections (docs/performance.md)."""
    return edge.EdgeConfig(sparse_vectors={SPARSE_VECTOR: SPARSE_PARAMS}, max_search_threads=search_threads)


def check_folder(path: Path) -> None:
    """Refuse a folder written by qdrant-client's local mode, with the commands that move it over."""
    if all((path / marker).exists() for marker in LOCAL_MODE_MARKERS) and not (path / LAYOUT_FILE).exists():
        raise StoreUnavailableError(
            f"{path} holds a qdrant-client local-mode store (the embedded store of earlier versions), which "
            "this version does not read on the request path. Move it to the Qdrant engine with "
            f"`rag-gateway migrate-store {path} NEW_FOLDER` and set QDRANT_PATH=NEW_FOLDER, or re-ingest "
            "your documents into a new QDRANT_PATH (`rag-gateway ingest ...`). Nothing was changed."
        )


def _in_use(path: Path) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"the vector store folder {path} is in use by another process (a running gateway or ingest); "
        "stop it first, or point QDRANT_URL at a Qdrant server that several processes can share"
    )


def _lock_folder(path: Path) -> IO[bytes] | None:
    handle = (path / LOCK_FILE).open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise _in_use(path) from None
    return handle


def _engine_error(path: Path, exc: Exception) -> StoreUnavailableError:
    message = str(exc)
    if "WouldBlock" in message:
        return _in_use(path)
    return StoreUnavailableError(f"cannot open the vector store folder {path}: {message}")


class EdgeStore:
    """Qdrant's engine in-process: a shard per collection under one folder."""

    def __init__(self, settings: Settings) -> None:
        self._root = settings.qdrant_path
        self._quantization = settings.edge_quantization
        self._search_threads = settings.edge_search_threads
        # int8 scores alone lose neighbours; rescoring twice the limit with the originals recovers them
        rescore = edge.QuantizationSearchParams(rescore=True, oversampling=QUANTIZATION_OVERSAMPLING)
        self._params = edge.SearchParams(
            hnsw_ef=settings.vector_search_ef, quantization=rescore if self._quantization else None
        )
        self._shards: dict[str, edge.EdgeShard] = {}
        self.location = str(self._root)
        self._root.mkdir(parents=True, exist_ok=True)
        check_folder(self._root)
        self._lock = _lock_folder(self._root)  # the engine locks each shard; this guards the folder itself
        loading = load_config(self._search_threads)
        try:
            for shard_dir in sorted(self._root.iterdir()):
                if (shard_dir / "edge_config.json").is_file() or (shard_dir / "segments").is_dir():
                    self._shards[shard_dir.name] = edge.EdgeShard.load(str(shard_dir), loading)
        except Exception as exc:
            self._close_shards()
            raise _engine_error(self._root, exc) from exc
        self._layout_file = self._root / LAYOUT_FILE
        self._layout = _read_layout(self._layout_file)
        self._layout_file.write_text(json.dumps(self._layout))

    def _recorded_schema(self, collection: str) -> dict[str, Any] | None:
        schemas: dict[str, dict[str, Any]] = self._layout.setdefault("schemas", {})
        return schemas.get(collection)

    def _record_schema(self, collection: str, schema: IndexSchema) -> None:
        self._layout.setdefault("schemas", {})[collection] = schema.as_dict()
        self._layout_file.write_text(json.dumps(self._layout))

    def _shard(self, collection: str) -> edge.EdgeShard:
        shard = self._shards.get(collection)
        if shard is None:
            raise UpstreamBadResponseError(f"collection {collection} does not exist", upstream=UPSTREAM)
        return shard

    def _run(self, collection: str, call: Callable[[edge.EdgeShard], T]) -> T:
        shard = self._shard(collection)
        try:
            return call(shard)
        except Exception as exc:  # the engine raises plain Exception; its text stays in the log
            raise UpstreamBadResponseError("the vector store failed", upstream=UPSTREAM) from exc

    # --- schema -----------------------------------------------------------------------------------
    async def check_schema(self, schema: IndexSchema) -> None:
        for name in self._shards:
            difference = schema.describe_difference(self._recorded_schema(name))
            if difference is not None:
                raise StoreUnavailableError(
                    f"the collection {name} in {self._root} was built with another index shape: "
                    f"{difference}. Rebuild it into a new folder: `rag-gateway migrate-store {self._root} "
                    "NEW_FOLDER` (or re-ingest your documents), then set QDRANT_PATH=NEW_FOLDER. "
                    "Nothing was changed."
                )

    async def ensure_collections(self, schema: IndexSchema, collections: Sequence[str]) -> None:
        await self.check_schema(schema)
        for name in collections:
            if name in self._shards:
                continue
            try:
                config = shard_config(schema.dim, self._quantization, self._search_threads)
                shard = edge.EdgeShard.create(str(self._root / name), config)
            except Exception as exc:
                raise _engine_error(self._root / name, exc) from exc
            for field in KEYWORD_INDEXES:
                shard.update(edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Keyword))
            self._shards[name] = shard
            self._record_schema(name, schema)

    async def existing_collections(self) -> set[str]:
        return self.collection_names()

    def collection_names(self) -> set[str]:
        return set(self._shards)

    # --- writes (ingestion) ------------------------------------------------------------------------
    async def upsert(self, collection: str, points: Sequence[StoredPoint]) -> None:
        def write(shard: edge.EdgeShard) -> None:
            batch = [
                edge.Point(id=p.id, vector=named_vectors(p, edge.SparseVector), payload=p.payload)
                for p in points
            ]
            shard.update(edge.UpdateOperation.upsert_points(batch))

        self._run(collection, write)

    async def existing_ids(self, collection: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        found = self._run(collection, lambda shard: shard.retrieve(list(ids), False, False))
        return {str(record.id) for record in found}

    async def count(self, collection: str) -> int:
        return int(self._run(collection, lambda shard: shard.count(edge.CountRequest(exact=True))))

    async def build_index(self, collection: str) -> None:
        """Build the HNSW index over what was written (the engine has no background optimizer)."""
        self._run(collection, lambda shard: shard.optimize())
        self._run(collection, lambda shard: shard.flush())

    # --- reads (request path) ----------------------------------------------------------------------
    async def authors(self, collections: Sequence[str]) -> set[str]:
        return self.author_names(collections)

    def author_names(self, collections: Sequence[str]) -> set[str]:
        """`authors`, synchronously (the engine's calls are; the async face is the store protocol's)."""
        request = edge.FacetRequest(key=AUTHOR_NAME_KEY, limit=MAX_FACET_VALUES, exact=True)
        names: set[str] = set()
        for name in collections:
            response = self._run(name, lambda shard: shard.facet(request))
            # a value whose points were all replaced or deleted stays listed with count 0
            names.update(str(hit.value) for hit in response.hits if hit.count > 0)
        return names

    def search(
        self, collection: str, vectors: Sequence[SearchVector], author: str | None, limit: int
    ) -> list[list[Hit]]:
        """One batched query per collection: a hit list per query vector, best first."""
        return self._search_batch(collection, self._query_batch(vectors, author, limit))

    def _query_batch(
        self, vectors: Sequence[SearchVector], author: str | None, limit: int
    ) -> edge.QueryBatchRequest:
        """The engine's request for ``vectors``: built once per request, sent to every collection."""
        query_filter = _author_filter(author)
        return edge.QueryBatchRequest(
            [
                edge.QueryRequest(
                    query=_query(vector),
                    filter=query_filter,
                    limit=limit,
                    with_payload=False,
                    with_vector=False,
                    params=self._params,
                )
                for vector in vectors
            ]
        )

    def _search_batch(self, collection: str, batch: edge.QueryBatchRequest) -> list[list[Hit]]:
        """The queries return ids and scores only; each distinct hit's payload is then read once: the same
        chunk is found by several queries, and the engine would turn its payload into Python objects for
        every list it is in. No vectors come back (the reranker's scores come from `dense_scores`)."""
        results = self._run(collection, lambda shard: shard.query_batch(batch))
        ids = list({point.id: None for points in results for point in points})
        records = self._run(collection, lambda shard: shard.retrieve(ids, True, False)) if ids else []
        # per distinct point, its id as text (the engine gives UUID objects) and its payload, made once
        found = {record.id: (str(record.id), record.payload or {}) for record in records}
        hits = []
        for points in results:
            ranked = []
            for point in points:
                text_id, payload = found.get(point.id) or (str(point.id), {})
                ranked.append(Hit(text_id, collection, float(point.score), payload))
            hits.append(ranked)
        return hits

    async def dense_scores(self, vector: Vector, ids: Mapping[str, Sequence[str]]) -> dict[str, float]:
        return self.exact_scores(vector, ids)

    async def sample_sparse_terms(self, collection: str, limit: int) -> list[tuple[int, ...]]:
        request = edge.ScrollRequest(limit=limit, with_payload=False, with_vector=[SPARSE_VECTOR])
        records, _ = self._run(collection, lambda shard: shard.scroll(request))
        return [sparse_term_ids(record.vector) for record in records]

    def exact_scores(self, vector: Vector, ids: Mapping[str, Sequence[str]]) -> dict[str, float]:
        """`dense_scores`, synchronously: one exact query per collection, filtered to the ids."""
        query = _query(vector)
        scores: dict[str, float] = {}
        for collection, point_ids in ids.items():
            if point_ids:
                found = self._run(collection, methodcaller("query_batch", _scoring_batch(query, point_ids)))
                scores.update((str(point.id), float(point.score)) for point in found[0])
        return scores

    async def search_collections(
        self, collections: Sequence[str], vectors: Sequence[SearchVector], author: str | None, limit: int
    ) -> dict[str, list[list[Hit]] | GatewayError]:
        batch = self._query_batch(vectors, author, limit)
        found: dict[str, list[list[Hit]] | GatewayError] = {}
        for name in collections:
            try:
                found[name] = self._search_batch(name, batch)
            except GatewayError as exc:
                found[name] = exc
        return found

    async def close(self) -> None:
        self._close_shards()

    def _close_shards(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()
        if self._lock is not None:
            self._lock.close()  # closing the file releases its lock
            self._lock = None


def _scoring_batch(query: Any, point_ids: Sequence[str]) -> edge.QueryBatchRequest:
    """One exact query restricted to ``point_ids``: their scores against ``query``."""
    return edge.QueryBatchRequest(
        [
            edge.QueryRequest(
                query=query,
                filter=edge.Filter(must=[edge.HasIdCondition(set(point_ids))]),
                limit=len(point_ids),
                with_payload=False,
                with_vector=False,
                params=EXACT_SEARCH,
            )
        ]
    )


def _author_filter(author: str | None) -> edge.Filter | None:
    if author is None:
        return None
    return edge.Filter(must=[edge.FieldCondition(key=AUTHOR_NAME_KEY, match=edge.MatchValue(author))])


def _read_layout(path: Path) -> dict[str, Any]:
    if not path.exists():
        return dict(LAYOUT)
    layout: dict[str, Any] = json.loads(path.read_text())
    return layout


def _query(vector: SearchVector) -> Any:
    if isinstance(vector, SparseVector):
        sparse = edge.SparseVector(indices=list(vector.indices), values=list(vector.values))
        return edge.Query.Nearest(sparse, using=SPARSE_VECTOR)
    return edge.Query.Nearest(vector.tolist(), using=DENSE_VECTOR)


def edge_collections(path: Path) -> dict[str, int]:
    """An engine folder's collections and their dense vector sizes (from each shard's own config)."""
    sizes: dict[str, int] = {}
    for shard_dir in sorted(path.iterdir()):
        config_file = shard_dir / "edge_config.json"
        if not config_file.is_file():
            continue
        vectors = json.loads(config_file.read_text()).get("vectors", {})
        dense = vectors.get(DENSE_VECTOR, vectors.get("")) if "size" not in vectors else vectors
        sizes[shard_dir.name] = int(dense["size"])
    return sizes


def recorded_schemas(path: Path) -> dict[str, dict[str, Any]]:
    """The index schema each collection of an engine folder was built with (empty when none)."""
    schemas: dict[str, dict[str, Any]] = _read_layout(path / LAYOUT_FILE).get("schemas", {})
    return schemas


def read_edge_folder(path: Path, page: int = 512) -> Iterator[tuple[str, list[StoredPoint]]]:
    """Every point of an engine folder, a page at a time: (collection, points), dense vectors only."""
    for name in edge_collections(path):
        try:
            shard = edge.EdgeShard.load(str(path / name))
        except Exception as exc:
            raise _engine_error(path / name, exc) from exc
        try:
            offset: Any = None
            while True:
                request = edge.ScrollRequest(
                    offset=offset, limit=page, filter=None, with_payload=True, with_vector=True
                )
                records, offset = shard.scroll(request)
                yield name, [_stored(record) for record in records]
                if offset is None:
                    break
        finally:
            shard.close()


def _stored(record: Any) -> StoredPoint:
    vector = record.vector.get(DENSE_VECTOR) if isinstance(record.vector, dict) else record.vector
    return StoredPoint(str(record.id), np.asarray(vector, dtype=np.float32), dict(record.payload or {}))
