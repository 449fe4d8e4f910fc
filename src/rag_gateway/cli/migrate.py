"""``rag-gateway migrate-store OLD_FOLDER NEW_FOLDER``: rebuild an earlier version's store in today's shape.

Earlier versions kept the embedded store in qdrant-client's local mode, or built engine collections of an
older index shape (dense vectors only, or other BM25 parameters); this version serves only the current
shape from the Qdrant engine in-process (`EdgeStore`). The command reads every point of
OLD_FOLDER (ids, vectors and payloads, a page at a time), writes them into a new engine store at
NEW_FOLDER, builds each collection's index once at the end and checks the counts. OLD_FOLDER is only read,
so it is left as it was; NEW_FOLDER must be new or empty, and whatever the command wrote there is removed
again when it fails, so it can simply be run again. The old store held dense vectors only; each point also
gets its BM25 vector, computed from its payload's title and content as document ingestion does, and the
new collections record the current index schema.

Only what the gateway wrote is supported: one unnamed dense vector per point (dot product or cosine, whose
stored vectors local mode has already normalised) and UUID ids; anything else is refused before writing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
import uuid
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from rag_gateway.config import Settings
from rag_gateway.rag.retrieval.schema import IndexSchema, chunk_texts, index_schema
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores import StoredPoint, StoreUnavailableError
from rag_gateway.rag.retrieval.stores.edge import (
    LAYOUT_FILE,
    EdgeStore,
    edge_collections,
    read_edge_folder,
    recorded_schemas,
)
from rag_gateway.rag.retrieval.stores.local import read_local_folder

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: What qdrant-client's local mode keeps its collections' configuration in.
LOCAL_META = "meta.json"
#: Distances whose stored vectors rank the same under the engine's dot product.
SUPPORTED_DISTANCES = ("Dot", "Cosine")


class MigrateError(Exception):
    """A folder that cannot be migrated as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class CollectionMigration:
    collection: str
    #: Points read from the old folder.
    points: int
    #: Points the new store counts after the migration.
    stored: int

    def describe(self) -> str:
        noun = "point" if self.points == 1 else "points"
        return f"{self.points} {noun} into {self.collection} ({self.stored} stored)"


@dataclass(frozen=True, slots=True)
class MigrationReport:
    source: Path
    target: Path
    collections: tuple[CollectionMigration, ...]
    seconds: float

    @property
    def points(self) -> int:
        return sum(c.points for c in self.collections)

    def get(self, collection: str) -> CollectionMigration | None:
        return next((c for c in self.collections if c.collection == collection), None)

    def summary(self) -> str:
        """E.g. ``migrated old -> new: 812 points into embedded_articles (812 stored) in 3.1 s; ...``."""
        parts = "; ".join(c.describe() for c in self.collections) or "no collections"
        return (
            f"migrated {self.source} -> {self.target}: {parts} in {self.seconds:.1f} s. "
            f"{self.source} is unchanged; serve the new store with QDRANT_PATH={self.target}"
        )


# --- checks before anything is written ------------------------------------------------------------


def local_collections(old: Path) -> dict[str, int]:
    """The old folder's collections and their vector sizes, from local mode's ``meta.json``.

    Raises MigrateError for a folder that is not a local-mode store or holds what the gateway never wrote.
    """
    if not old.is_dir():
        raise MigrateError(f"{old}: no such folder")
    meta_file = old / LOCAL_META
    if not meta_file.is_file():
        raise MigrateError(f"{old} is not a qdrant-client local-mode store (no {LOCAL_META})")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        configs: dict[str, Any] = meta["collections"]
        if not isinstance(configs, dict):
            raise TypeError("collections is not an object")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MigrateError(f"cannot read {meta_file}: {error}") from error
    return {name: _vector_size(name, config) for name, config in configs.items()}


def _vector_size(collection: str, config: Any) -> int:
    vectors = config.get("vectors") if isinstance(config, dict) else None
    if not isinstance(vectors, dict) or not isinstance(vectors.get("size"), int):
        raise MigrateError(
            f"collection {collection} does not hold one unnamed vector per point (named vectors?); "
            "the gateway never wrote such a collection, so it is not migrated"
        )
    if vectors.get("distance") not in SUPPORTED_DISTANCES:
        raise MigrateError(
            f"collection {collection} ranks by {vectors.get('distance')} distance; the gateway's store "
            f"ranks by dot product, so only {' or '.join(SUPPORTED_DISTANCES)} collections are migrated"
        )
    if vectors.get("multivector_config") is not None or config.get("sparse_vectors"):
        raise MigrateError(f"collection {collection} holds multi-vectors or sparse vectors: not migrated")
    return int(vectors["size"])


def check_target(old: Path, new: Path) -> None:
    """NEW must be a new or empty folder, apart from OLD."""
    old_real, new_real = old.resolve(), new.resolve()
    if new_real == old_real or old_real in new_real.parents or new_real in old_real.parents:
        raise MigrateError(f"{new} and {old} overlap: choose a NEW_FOLDER outside the old store")
    if new.exists() and not new.is_dir():
        raise MigrateError(f"{new} exists and is not a folder")
    if new.is_dir() and any(new.iterdir()):
        raise MigrateError(f"{new} already holds data: choose a new or empty folder (nothing was changed)")


# --- the migration ------------------------------------------------------------------------------------


def engine_collections(old: Path, current: str) -> dict[str, int]:
    """An engine folder of another index shape: its collections and vector sizes.

    Its dense vectors are reused, so they must embed what the current schema's dense vector embeds;
    otherwise only a re-ingest (which re-embeds) can rebuild it.
    """
    for name, schema in recorded_schemas(old).items():
        if schema.get("dense_text", "content") != current:
            raise MigrateError(
                f"collection {name} of {old} holds dense vectors of {schema.get('dense_text')!r}, not "
                f"{current!r}: re-ingest your documents into a new QDRANT_PATH to re-embed them"
            )
    return edge_collections(old)


def _is_engine_folder(old: Path) -> bool:
    return (old / LAYOUT_FILE).exists()


def _pages(old: Path) -> Generator[tuple[str, list[StoredPoint]], None, None]:
    """The old folder's points, with a folder that cannot be opened turned into a MigrateError."""
    pages = read_edge_folder(old) if _is_engine_folder(old) else read_local_folder(old)
    try:
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except Exception as error:  # local mode raises RuntimeError for a folder in use, and others
                raise MigrateError(
                    f"cannot read {old}: {error} (is a gateway of an earlier version still running on it?)"
                ) from error
            yield page
    finally:
        if isinstance(pages, Generator):
            pages.close()  # closes the local-mode client (and its lock) now, not at garbage collection


def _check_page(collection: str, dim: int, points: list[StoredPoint]) -> None:
    for point in points:
        try:
            uuid.UUID(point.id)
        except ValueError:
            raise MigrateError(
                f"point id {point.id} in collection {collection} is not a UUID; the gateway only writes "
                "UUID ids, and the Qdrant-engine store takes no others"
            ) from None
        shape = getattr(point.vector, "shape", None)
        if shape != (dim,):
            raise MigrateError(
                f"point {point.id} in collection {collection} has no {dim}-value vector ({shape})"
            )


def _discard(new: Path, created: bool) -> None:
    """Remove what a failed migration wrote (NEW was new or empty before)."""
    if created:
        shutil.rmtree(new, ignore_errors=True)
        return
    if new.is_dir():
        for child in new.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def _prepare(old: Path, new: Path, dense_text: str) -> tuple[dict[str, int], bool]:
    """Every check that needs no writing: the old collections' vector sizes, and whether NEW is new."""
    dims = engine_collections(old, dense_text) if _is_engine_folder(old) else local_collections(old)
    if len(set(dims.values())) > 1:
        sizes = ", ".join(f"{name}: {dim}" for name, dim in dims.items())
        raise MigrateError(
            f"the collections of {old} have vectors of different sizes ({sizes}); the gateway's store "
            "holds one index shape, so they are not migrated together"
        )
    check_target(old, new)
    return dims, not new.exists()


def _with_bm25(points: list[StoredPoint], schema: IndexSchema, sparse: SparseEncoder) -> list[StoredPoint]:
    """The old store held dense vectors only: add each chunk's BM25 vector, as ingestion computes it."""
    completed = []
    for point in points:
        title = point.payload.get("title")
        content = point.payload.get("content")
        _, sparse_text = chunk_texts(
            schema, title if isinstance(title, str) else None, content if isinstance(content, str) else ""
        )
        completed.append(StoredPoint(point.id, point.vector, point.payload, sparse.document(sparse_text)))
    return completed


async def migrate_store(
    old: Path, new: Path, settings: Settings, *, progress: bool = True
) -> MigrationReport:
    """Copy a local-mode folder into a new Qdrant-engine store at NEW; see the module doc.

    Raises MigrateError, with OLD unchanged and nothing left in NEW, when it cannot be done.
    """
    started = time.perf_counter()
    dims, created = _prepare(old, new, settings.index_dense_text)
    # the old gateway embedded each chunk's content alone, which is what the schema's dense vector holds
    schema = index_schema(settings, next(iter(dims.values()), 0))
    sparse = SparseEncoder(schema.bm25)
    target = settings.model_copy(update={"qdrant_path": new, "qdrant_url": None})
    store: EdgeStore | None = None
    try:
        try:
            store = EdgeStore(target)
            if dims:
                await store.ensure_collections(schema, list(dims))
        except StoreUnavailableError as error:
            raise MigrateError(str(error)) from error
        read = dict.fromkeys(dims, 0)
        with (
            tqdm(
                desc="migrating",
                unit="point",
                file=sys.stderr,
                disable=not (progress and sys.stderr.isatty()),
                dynamic_ncols=True,
            ) as bar,
            closing(_pages(old)) as pages,
        ):
            for collection, points in pages:
                if collection not in dims:
                    raise MigrateError(f"collection {collection} of {old} is not in its {LOCAL_META}")
                _check_page(collection, dims[collection], points)
                if points:
                    await store.upsert(collection, _with_bm25(points, schema, sparse))
                read[collection] += len(points)
                bar.update(len(points))
        reports = []
        for collection in dims:
            await store.build_index(collection)
            stored = await store.count(collection)
            if stored != read[collection]:
                raise MigrateError(
                    f"collection {collection}: read {read[collection]} points but the new store counts "
                    f"{stored}; nothing was kept in {new}"
                )
            reports.append(CollectionMigration(collection, read[collection], stored))
    except BaseException:
        if store is not None:
            await store.close()
            store = None
        _discard(new, created)
        raise
    finally:
        if store is not None:
            await store.close()
    return MigrationReport(old, new, tuple(reports), time.perf_counter() - started)


# --- command line -------------------------------------------------------------------------------------


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Copy the vector store of an earlier version (a qdrant-client local-mode folder, or an engine "
        "folder of an older index shape) into a new folder in this version's embedded Qdrant engine and "
        "index shape, then serve it with QDRANT_PATH=NEW_FOLDER. "
        "OLD_FOLDER is only read; NEW_FOLDER must be new or empty."
    )
    parser.add_argument("old", type=Path, metavar="OLD_FOLDER", help="the old store folder")
    parser.add_argument("new", type=Path, metavar="NEW_FOLDER", help="where to create the new store")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (it is shown only on a terminal anyway)"
    )


def run_migrate(args: argparse.Namespace) -> int:
    """0 on success, 2 for a folder that cannot be migrated (or bad settings), 130 when interrupted."""
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = asyncio.run(migrate_store(args.old, args.new, settings, progress=not args.no_progress))
    except MigrateError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"interrupted: {args.new} was cleared; run the same command again", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(report.summary())
    return 0
