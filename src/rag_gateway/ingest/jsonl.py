"""Bulk import of chunks embedded elsewhere: ``rag-gateway ingest FILE.jsonl``.

One chunk per line::

    {"id": "<uuid>", "collection": "embedded_articles", "vector": [384 numbers],
     "payload": {"content", "title", "link", "platform", "author_id", "author_full_name",
                 "document_id", "chunk_index", "type", ...}}

The file is read line by line twice, so memory stays flat whatever its size: a validation pass over the
whole file first (nothing is written when any line is bad), then an import pass that upserts
``batch_size`` points per call and collection. Rules, checked per line (errors name ``FILE:LINE``):

* a line is one JSON object (orjson); blank lines are skipped; other top-level keys are ignored;
* ``id`` is a UUID string, stored in its canonical form (lower case, hyphenated);
* ``collection`` is one of :data:`rag_gateway.config.COLLECTIONS`;
* ``vector`` is a list of exactly :data:`EMBEDDING_DIM` finite numbers (no strings, booleans, nulls, NaN or
  Infinity), not all zero; it is normalised to unit length on import, since the store ranks by dot
  product, which is the cosine only on unit vectors. It must embed the chunk the way the gateway embeds
  queries (its model, over the text the index schema's ``dense_text`` names), which cannot be checked;
  the BM25 vector is computed here from the payload's ``title`` and ``content``, like document ingestion;
* ``payload`` is an object with every key of :data:`PAYLOAD_KEYS` (extra keys are kept): ``content``,
  ``platform``, ``author_id``, ``author_full_name``, ``document_id`` and ``type`` strings, ``title`` and
  ``link`` strings or null, ``chunk_index`` a non-negative integer;
* an id repeated within the file is allowed: the last line wins (like re-importing, an upsert replaces the
  point), and it is counted once in the store (the report's ``read`` counts lines, ``new`` the points added).

Re-importing a file therefore adds nothing. Collections are created when missing, and each collection the
file touches gets its index built once, after its last batch.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.errors import UpstreamTimeoutError, UpstreamUnavailableError
from rag_gateway.ingest.errors import IngestError
from rag_gateway.ingest.ingest import open_store
from rag_gateway.rag.retrieval.embedding import EMBEDDING_DIM
from rag_gateway.rag.retrieval.schema import IndexSchema, chunk_texts, index_schema
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores import StoredPoint, StoreUnavailableError, Vector, VectorStore

#: The suffix that routes a path of ``rag-gateway ingest`` here.
JSONL_SUFFIX = ".jsonl"
#: Points upserted per call and collection.
DEFAULT_BATCH_SIZE = 1000
#: Keys every line's object must have.
LINE_KEYS = ("id", "collection", "vector", "payload")
#: Keys every payload must have (the request path reads them).
PAYLOAD_KEYS = (
    "content",
    "title",
    "link",
    "platform",
    "author_id",
    "author_full_name",
    "document_id",
    "chunk_index",
    "type",
)
_STRING_KEYS = ("content", "platform", "author_id", "author_full_name", "document_id", "type")
_OPTIONAL_STRING_KEYS = ("title", "link")
_NUMBER_TYPES = {int, float}
_UTF8_BOM = b"\xef\xbb\xbf"


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() == JSONL_SUFFIX


# --- reports ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollectionImport:
    collection: str
    #: Lines read for this collection (a repeated id counts each time).
    read: int
    #: Points added: the collection's count after minus before.
    new: int
    count_before: int
    count_after: int

    def describe(self) -> str:
        noun = "point" if self.read == 1 else "points"
        return f"{self.read} {noun} ({self.new} new, {self.count_after} stored) into {self.collection}"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What importing one JSONL file did, per collection."""

    path: Path
    collections: tuple[CollectionImport, ...]
    #: Validation and import, the index build included.
    seconds: float

    @property
    def read(self) -> int:
        return sum(c.read for c in self.collections)

    @property
    def new(self) -> int:
        return sum(c.new for c in self.collections)

    @property
    def points_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def get(self, collection: str) -> CollectionImport | None:
        return next((c for c in self.collections if c.collection == collection), None)

    def summary(self) -> str:
        """E.g. ``imported a.jsonl: 2 points (2 new, 2 stored) into embedded_posts in 0.1 s (20 points/s)``"""
        if not self.collections:
            return f"imported nothing: {self.path} holds no points ({self.seconds:.1f} s)"
        parts = "; ".join(c.describe() for c in self.collections)
        return (
            f"imported {self.path.name}: {parts} in {self.seconds:.1f} s "
            f"({self.points_per_second:,.0f} points/s)"
        )


@dataclass(frozen=True, slots=True)
class JsonlFile:
    """A file that passed validation: its points per collection, in the order collections first appear."""

    path: Path
    points: dict[str, int]
    #: Seconds the validation pass took (counted in the import report).
    seconds: float


# --- parsing and validation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Chunk:
    id: str
    collection: str
    vector: Vector
    payload: dict[str, Any]


class _LineError(ValueError):
    """What is wrong with one line; the caller adds ``FILE:LINE``."""


def _describe_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _check_id(value: Any) -> str:
    if not isinstance(value, str):
        raise _LineError(f"id must be a UUID string, got {_describe_value(value)}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _LineError(f"id {value[:60]!r} is not a UUID") from None


def _check_collection(value: Any) -> str:
    if not isinstance(value, str) or value not in COLLECTIONS:
        shown = repr(value[:60]) if isinstance(value, str) else _describe_value(value)
        raise _LineError(f"unknown collection {shown} (expected one of {', '.join(COLLECTIONS)})")
    return value


def _unit_vector(value: Any) -> Vector:
    if not isinstance(value, list):
        raise _LineError(f"vector must be a list of numbers, got {_describe_value(value)}")
    if len(value) != EMBEDDING_DIM:
        raise _LineError(f"vector has {len(value)} values, expected {EMBEDDING_DIM}")
    if not set(map(type, value)) <= _NUMBER_TYPES:  # bool is not int here: type(True) is bool
        index, bad = next((i, v) for i, v in enumerate(value) if type(v) not in _NUMBER_TYPES)
        raise _LineError(f"vector[{index}] is {_describe_value(bad)}, expected a number")
    array = np.asarray(value, dtype=np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        raise _LineError(f"vector[{index}] is {array[index]}, expected a finite number")
    # Scale by the largest magnitude first, so the norm neither overflows nor underflows.
    largest = float(np.max(np.abs(array)))
    if largest == 0.0:
        raise _LineError("vector is all zeros: it has no direction to normalise to unit length")
    array /= largest
    array /= np.linalg.norm(array)
    return array.astype(np.float32)


def _check_payload(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _LineError(f"payload must be a JSON object, got {_describe_value(value)}")
    missing = [key for key in PAYLOAD_KEYS if key not in value]
    if missing:
        raise _LineError(f"payload is missing {', '.join(missing)}")
    for key in _STRING_KEYS:
        if not isinstance(value[key], str):
            raise _LineError(f"payload.{key} must be a string, got {_describe_value(value[key])}")
    for key in _OPTIONAL_STRING_KEYS:
        if value[key] is not None and not isinstance(value[key], str):
            raise _LineError(f"payload.{key} must be a string or null, got {_describe_value(value[key])}")
    index = value["chunk_index"]
    if type(index) is not int or index < 0:
        raise _LineError(f"payload.chunk_index must be a non-negative integer, got {_describe_value(index)}")
    return value


def _chunk(record: Any) -> _Chunk:
    if not isinstance(record, dict):
        raise _LineError(f"expected a JSON object, got {_describe_value(record)}")
    missing = [key for key in LINE_KEYS if key not in record]
    if missing:
        raise _LineError(f"missing {', '.join(missing)}")
    return _Chunk(
        id=_check_id(record["id"]),
        collection=_check_collection(record["collection"]),
        vector=_unit_vector(record["vector"]),
        payload=_check_payload(record["payload"]),
    )


def _parse(raw: bytes) -> _Chunk:
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        # NaN, Infinity and 1e999 are not JSON, but Python's json module writes and reads them: say where.
        try:
            lenient = json.loads(raw)
        except ValueError:
            raise _LineError(f"not valid JSON: {error}") from None
        _chunk(lenient)  # names a non-finite vector value; otherwise it sits elsewhere in the line
        raise _LineError(f"not valid JSON (NaN and Infinity are not JSON numbers): {error}") from None
    return _chunk(record)


def _lines(path: Path, bar: tqdm | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, content) of each non-blank line, streamed; `bar` advances by the bytes read."""
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if bar is not None:
                    bar.update(len(raw))
                if number == 1 and raw.startswith(_UTF8_BOM):
                    raw = raw[len(_UTF8_BOM) :]
                if raw.strip():
                    yield number, raw
    except OSError as error:
        raise IngestError(f"cannot read {path}: {error.strerror or error}") from error


def _chunks(path: Path, bar: tqdm | None = None) -> Iterator[tuple[int, _Chunk]]:
    for number, raw in _lines(path, bar):
        try:
            yield number, _parse(raw)
        except _LineError as error:
            raise IngestError(f"{path}:{number}: {error}") from None


def _progress_bar(total: int, enabled: bool, *, desc: str, unit: str) -> tqdm:
    """On stderr, and only on a terminal; shows the rate (points/s while importing)."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "B",
        file=sys.stderr,
        disable=not (enabled and sys.stderr.isatty()),
        dynamic_ncols=True,
    )


def validate_jsonl(path: Path, *, progress: bool = False) -> JsonlFile:
    """The validation pass: every line checked, only the counts kept. Raises IngestError naming the line."""
    started = time.perf_counter()
    if not path.is_file():
        raise IngestError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    points: Counter[str] = Counter()
    with _progress_bar(path.stat().st_size, progress, desc=f"validating {path.name}", unit="B") as bar:
        for _, chunk in _chunks(path, bar):
            points[chunk.collection] += 1
    return JsonlFile(path=path, points=dict(points), seconds=time.perf_counter() - started)


# --- import -------------------------------------------------------------------------------------------


@contextmanager
def _store_errors(store: VectorStore) -> Iterator[None]:
    """An unreachable server or an unusable folder is the user's to fix: IngestError, not a traceback."""
    try:
        yield
    except StoreUnavailableError as error:
        raise IngestError(str(error)) from error
    except (UpstreamUnavailableError, UpstreamTimeoutError) as error:
        raise IngestError(
            f"cannot reach Qdrant at {store.location}: {error.message}; points already written stay, and "
            "running the same command again finishes the import (it replaces them)"
        ) from error


async def _import_points(
    store: VectorStore, file: JsonlFile, schema: IndexSchema, bar: tqdm, batch_size: int
) -> None:
    """The import pass: per collection, batches of distinct ids (the last line of an id wins).

    Each point also gets its BM25 vector, computed from its payload's text as the schema says (the same
    as document ingestion), so hybrid search finds imported chunks too.
    """
    sparse = SparseEncoder(schema.bm25)
    pending: dict[str, dict[str, StoredPoint]] = {collection: {} for collection in file.points}
    unreported = 0

    async def flush(collection: str) -> None:
        nonlocal unreported
        batch = pending[collection]
        if batch:
            await store.upsert(collection, list(batch.values()))
            pending[collection] = {}
        bar.update(unreported)
        unreported = 0

    for _, chunk in _chunks(file.path):
        batch = pending.setdefault(chunk.collection, {})
        batch.pop(chunk.id, None)  # a repeated id moves to the end: last wins, within and across batches
        _, sparse_text = chunk_texts(schema, chunk.payload["title"], chunk.payload["content"])
        batch[chunk.id] = StoredPoint(chunk.id, chunk.vector, chunk.payload, sparse.document(sparse_text))
        unreported += 1
        if len(batch) >= batch_size:
            await flush(chunk.collection)
    for collection in list(pending):
        await flush(collection)


async def _import_file(
    store: VectorStore, file: JsonlFile, schema: IndexSchema, progress: bool, batch_size: int
) -> ImportReport:
    started = time.perf_counter()
    collections = list(file.points)
    with _store_errors(store):
        before = {collection: await store.count(collection) for collection in collections}
        total = sum(file.points.values())
        with _progress_bar(total, progress, desc=f"importing {file.path.name}", unit="point") as bar:
            await _import_points(store, file, schema, bar, batch_size)
        for collection in collections:
            await store.build_index(collection)  # once, after the collection's last batch
        after = {collection: await store.count(collection) for collection in collections}
    reports = tuple(
        CollectionImport(
            collection=collection,
            read=file.points[collection],
            new=after[collection] - before[collection],
            count_before=before[collection],
            count_after=after[collection],
        )
        for collection in collections
    )
    seconds = file.seconds + time.perf_counter() - started
    return ImportReport(path=file.path, collections=reports, seconds=seconds)


async def import_validated(
    files: Sequence[JsonlFile],
    settings: Settings,
    *,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[ImportReport]:
    """Import files :func:`validate_jsonl` passed, in order, into the configured store.

    Raises IngestError when the store cannot be opened (another process holds the folder, an old
    layout, an unreachable server): then nothing is written.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not any(file.points for file in files):
        return [ImportReport(path=file.path, collections=(), seconds=file.seconds) for file in files]
    schema = index_schema(settings, EMBEDDING_DIM)
    store = open_store(settings)
    try:
        with _store_errors(store):  # a store built with another index shape is refused here
            await store.ensure_collections(schema, COLLECTIONS)
        return [await _import_file(store, file, schema, progress, batch_size) for file in files]
    finally:
        await store.close()


async def import_jsonl(
    path: Path, settings: Settings, *, progress: bool = True, batch_size: int = DEFAULT_BATCH_SIZE
) -> ImportReport:
    """Validate the whole file, then import it in batches; see the module doc for the rules.

    Raises IngestError (its message names ``FILE:LINE`` for bad input) with nothing written when a line
    is invalid or the store cannot be opened.
    """
    file = await asyncio.to_thread(validate_jsonl, path, progress=progress)
    [report] = await import_validated([file], settings, progress=progress, batch_size=batch_size)
    return report
