"""What the corpus holds right now: which collections hold points and which authors are indexed.

Used on the read path to decide where to search and whether a self-queried name may become a filter: an
author the corpus does not know must never become a filter (it would return nothing). Names match case- and
whitespace-insensitively and come back spelled as stored. Read from the store (no writes) and reused for
``AUTHOR_CACHE_TTL_S`` seconds. An empty collection is left out of the searches: querying it finds nothing
and still costs a batched call per request (a third of the search stage on a corpus of articles only).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from rag_gateway.rag.retrieval.stores import VectorStore


def normalise_name(name: str) -> str:
    """How author names are matched: case and runs of whitespace do not count."""
    return " ".join(name.split()).casefold()


class CorpusCatalog:
    def __init__(self, store: VectorStore, collections: Sequence[str], ttl_s: float) -> None:
        self._store = store
        self._wanted = tuple(collections)
        self._ttl_s = ttl_s
        self._collections: tuple[str, ...] = ()
        self._authors: dict[str, str] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._loaded_at is not None and time.monotonic() - self._loaded_at < self._ttl_s

    async def refresh(self, *, force: bool = False) -> None:
        if self._fresh() and not force:
            return
        async with self._lock:  # one refresh at a time; concurrent callers reuse its result
            if self._fresh() and not force:
                return
            present = await self._store.existing_collections()
            collections = tuple([c for c in self._wanted if c in present and await self._store.count(c) > 0])
            names = await self._store.authors(collections) if collections else set()
            self._collections = collections
            self._authors = {normalise_name(name): name for name in names}
            self._loaded_at = time.monotonic()

    async def collections(self) -> tuple[str, ...]:
        """The configured collections that exist in the store and hold points."""
        await self.refresh()
        return self._collections

    async def resolve_author(self, name: str | None) -> str | None:
        """The indexed spelling of ``name``, or None when the corpus has no such author."""
        if not name:
            return None
        await self.refresh()
        return self._authors.get(normalise_name(name))
