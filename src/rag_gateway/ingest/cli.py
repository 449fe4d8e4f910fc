"""``rag-gateway ingest PATH...``: the command-line face of :func:`ingest_paths` and :func:`import_jsonl`.

A ``.jsonl`` path holds chunks embedded elsewhere (:mod:`rag_gateway.ingest.jsonl`); any other path is a
document export. Every ``.jsonl`` file is validated before anything is written, then the exports are
ingested (they too are validated first), then the ``.jsonl`` files are imported.

Input problems and an unusable store are the user's to fix, so they print ``error: ...`` and exit with
status 2 instead of a traceback; anything else is a bug and is left to raise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from rag_gateway.cli.arguments import positive_int
from rag_gateway.config import Settings
from rag_gateway.ingest.errors import IngestError
from rag_gateway.ingest.ingest import ingest_paths
from rag_gateway.ingest.jsonl import DEFAULT_BATCH_SIZE, import_validated, is_jsonl, validate_jsonl

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Load Handbook data-warehouse exports (JSON arrays of articles, posts or repositories), or chunks "
        "embedded elsewhere (.jsonl: one {id, collection, vector, payload} object per line), into the "
        "vector store. Re-ingesting a file adds nothing. Store location: QDRANT_URL, else QDRANT_PATH."
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="JSON export files, directories (their *.json files), or .jsonl files of embedded chunks",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (it is shown only on a terminal anyway)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f".jsonl points written per call (default {DEFAULT_BATCH_SIZE})",
    )


async def _ingest_all(paths: list[Path], settings: Settings, *, progress: bool, batch_size: int) -> list[str]:
    """Validate every .jsonl file, ingest the exports, import the .jsonl files; the summaries to print."""
    jsonl_paths = [path for path in paths if is_jsonl(path)]
    export_paths = [path for path in paths if not is_jsonl(path)]
    files = [await asyncio.to_thread(validate_jsonl, path, progress=progress) for path in jsonl_paths]
    summaries = []
    if export_paths:
        report = await ingest_paths(export_paths, settings, progress=progress)
        summaries.append(report.summary())
    imports = await import_validated(files, settings, progress=progress, batch_size=batch_size)
    summaries.extend(imported.summary() for imported in imports)
    return summaries


def run_ingest(args: argparse.Namespace) -> int:
    """Run the ingest; 0 on success, 2 on bad input, bad settings or a busy store."""
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return EXIT_USAGE
    paths: list[Path] = list(args.paths)
    try:
        summaries = asyncio.run(
            _ingest_all(
                paths,
                settings,
                progress=not args.no_progress,
                batch_size=getattr(args, "batch_size", DEFAULT_BATCH_SIZE),
            )
        )
    except IngestError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Batches already upserted stay; their ids are skipped (or, from .jsonl, replaced) next time, so a
        # re-run resumes.
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    for summary in summaries:
        print(summary)
    return 0
