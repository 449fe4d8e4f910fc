"""Copying an embedded store's folder without filling its holes.

The Qdrant engine sizes its write-ahead log, vector and payload files in 32 MB steps and leaves what it has
not written as holes: a store of a few hundred chunks takes a few MB of disk. ``shutil.copytree`` writes
those holes out as zeros (about 0.5 GB per store), so copies go through `copy_store_folder`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rag_gateway.rag.retrieval.stores.edge import LOCK_FILE

BLOCK_BYTES = 1 << 16


def copy_sparse(source: str, destination: str) -> str:
    """``shutil.copy2`` that seeks over all-zero blocks instead of writing them (a hole where the
    file system has them; plain zeros where it does not, so the content is the same either way)."""
    zero = bytes(BLOCK_BYTES)
    with Path(source).open("rb") as reader, Path(destination).open("wb") as writer:
        while block := reader.read(BLOCK_BYTES):
            if block == zero[: len(block)]:
                writer.seek(len(block), 1)
            else:
                writer.write(block)
        writer.truncate()  # the size, when the file ends in a hole
    shutil.copystat(source, destination)
    return destination


def copy_store_folder(source: Path, destination: Path) -> None:
    """A copy of the store in ``source`` at ``destination`` (new), without the source's lock file."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(LOCK_FILE), copy_function=copy_sparse)
