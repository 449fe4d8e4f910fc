"""``rag-gateway ingest PATH...``: the command-line face of :func:`ingest_paths`.

Input problems and an unusable store are the user's to fix, so they print ``error: ...`` and exit with
status 2 instead of a traceback; anything else is a bug and is left to raise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from rag_gateway.config import Settings
from rag_gateway.ingest.errors import IngestError
from rag_gateway.ingest.ingest import ingest_paths

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Load Handbook data-warehouse exports (JSON arrays of articles, posts or repositories) into the "
        "vector store. Re-ingesting a file adds nothing. Store location: QDRANT_URL, else QDRANT_PATH."
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="JSON export files, or directories (their *.json files)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (it is shown only on a terminal anyway)"
    )


def run_ingest(args: argparse.Namespace) -> int:
    """Run the ingest; 0 on success, 2 on bad input, bad settings or a busy store."""
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return EXIT_USAGE
    paths: list[Path] = list(args.paths)
    try:
        report = asyncio.run(ingest_paths(paths, settings, progress=not args.no_progress))
    except IngestError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Batches already upserted stay; their ids are skipped next time, so a re-run resumes.
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(report.summary())
    return 0
