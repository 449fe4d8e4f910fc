"""The ingest pipeline: validate everything, then clean, chunk, embed and upsert.

Order matters for safety: every file and record is validated before the store is even opened, so bad input
never leaves a half-written collection. Chunks whose deterministic id is already stored are not embedded
again, which makes re-running an ingest cheap and lets an interrupted run resume. Embedding runs in the CPU
pool (it is CPU-bound and would otherwise block the event loop), one batch at a time, each batch upserted as
soon as it is embedded.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.errors import UpstreamTimeoutError, UpstreamUnavailableError
from rag_gateway.ingest.documents import COLLECTION_BY_KIND, Document, load_documents
from rag_gateway.ingest.errors import IngestError
from rag_gateway.ingest.records import ChunkRecord, chunk_documents
from rag_gateway.ingest.report import CollectionReport, IngestReport
from rag_gateway.rag.retrieval.embedding import Embedder, ModelFilesMissingError
from rag_gateway.rag.retrieval.schema import IndexSchema, chunk_texts, index_schema
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores import (
    StoredPoint,
    StoreUnavailableError,
    VectorStore,
    open_vector_store,
)
from rag_gateway.runtime.cpu_pool import CpuPool

#: Chunks embedded (and then upserted) per call: large enough to amortise ONNX overhead, small enough for
#: a lively progress bar and a cheap resume after an interruption.
EMBED_BATCH_SIZE = 32
#: Ids looked up per ``retrieve`` call when checking what is already stored.
LOOKUP_BATCH_SIZE = 256

T = TypeVar("T")


def _batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def open_store(settings: Settings) -> VectorStore:
    """The vector store, with a folder another process holds (or an old layout) turned into advice."""
    try:
        return open_vector_store(settings)
    except StoreUnavailableError as error:
        raise IngestError(str(error)) from error


async def _stored_ids(store: VectorStore, collection: str, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for batch in _batches(ids, LOOKUP_BATCH_SIZE):
        found |= await store.existing_ids(collection, batch)
    return found


def _progress_bar(total: int, enabled: bool) -> tqdm:
    return tqdm(
        total=total,
        desc="embedding",
        unit="chunk",
        file=sys.stderr,
        disable=not (enabled and sys.stderr.isatty()),
        dynamic_ncols=True,
    )


async def _embed_and_upsert(
    store: VectorStore,
    pool: CpuPool,
    embedder: Embedder,
    todo: dict[str, list[ChunkRecord]],
    progress: bool,
    schema: IndexSchema,
) -> None:
    sparse = SparseEncoder(schema.bm25)
    with _progress_bar(sum(len(records) for records in todo.values()), progress) as bar:
        for collection, records in todo.items():
            for batch in _batches(records, EMBED_BATCH_SIZE):
                texts = [chunk_texts(schema, record.payload.get("title"), record.content) for record in batch]
                vectors = await pool.run(embedder.embed, [dense for dense, _ in texts])
                points = [
                    StoredPoint(record.id, vector, record.payload, sparse.document(sparse_text))
                    for record, vector, (_, sparse_text) in zip(batch, vectors, texts, strict=True)
                ]
                await store.upsert(collection, points)
                bar.update(len(batch))


async def _ingest(
    documents: list[Document], records: list[ChunkRecord], settings: Settings, pool: CpuPool, progress: bool
) -> list[CollectionReport]:
    store = open_store(settings)
    try:
        try:
            embedder = await pool.run(Embedder, settings)
        except ModelFilesMissingError as error:
            raise IngestError(str(error)) from error
        try:
            await store.ensure_collections(index_schema(settings, embedder.dim), COLLECTIONS)
        except (UpstreamUnavailableError, UpstreamTimeoutError) as error:
            raise IngestError(f"cannot reach Qdrant at {store.location}: {error.message}") from error
        except StoreUnavailableError as error:
            raise IngestError(str(error)) from error

        documents_per_collection = Counter(document.collection for document in documents)
        chunked_documents = {(record.collection, record.document_id) for record in records}
        by_collection: dict[str, list[ChunkRecord]] = defaultdict(list)
        for record in records:
            by_collection[record.collection].append(record)
        collections = [c for c in COLLECTION_BY_KIND.values() if documents_per_collection[c]]

        before: dict[str, int] = {}
        skipped: dict[str, int] = {}
        todo: dict[str, list[ChunkRecord]] = {}
        for collection in collections:
            wanted = by_collection[collection]
            before[collection] = await store.count(collection)
            stored = await _stored_ids(store, collection, [record.id for record in wanted])
            skipped[collection] = len(stored)
            todo[collection] = [record for record in wanted if record.id not in stored]

        await _embed_and_upsert(store, pool, embedder, todo, progress, index_schema(settings, embedder.dim))
        for collection, added in todo.items():
            if added:
                await store.build_index(collection)  # once, after every batch is in

        reports = []
        for collection in collections:
            after = await store.count(collection)
            empty = sum(
                1
                for document in documents
                if document.collection == collection and (collection, document.id) not in chunked_documents
            )
            reports.append(
                CollectionReport(
                    collection=collection,
                    documents=documents_per_collection[collection],
                    chunks=len(by_collection[collection]),
                    new=after - before[collection],
                    skipped=skipped[collection],
                    empty_documents=empty,
                    count_before=before[collection],
                    count_after=after,
                )
            )
        return reports
    finally:
        await store.close()


async def ingest_paths(paths: Sequence[Path], settings: Settings, *, progress: bool = True) -> IngestReport:
    """Ingest export files (or directories of ``*.json``) into their collections; see the module doc.

    Raises IngestError, with nothing written, when any input is invalid or the store cannot be opened.
    """
    started = time.perf_counter()
    documents = await asyncio.to_thread(load_documents, paths)
    pool = CpuPool(settings.cpu_pool_workers, name="rag-ingest")
    try:
        records = await pool.run(chunk_documents, documents)
        reports = await _ingest(documents, records, settings, pool, progress) if documents else []
    finally:
        pool.shutdown()
    return IngestReport(collections=tuple(reports), seconds=time.perf_counter() - started)
