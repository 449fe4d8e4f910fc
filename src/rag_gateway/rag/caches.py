"""Request-path caches: a repeated question skips the OpenAI round trips and the embedding work.

Both live on the event loop (only looked up and filled there, never from pool threads), so they need no
locks. A size of 0 turns a cache off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from cachetools import LRUCache, TTLCache

from rag_gateway.rag.retrieval.embedding import Vector


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


class UnderstandingCache:
    """Self-query + expansion results per query, for ``ttl_s`` (only complete, non-degraded results)."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self._cache: TTLCache[str, tuple[str | None, list[str]]] | None = (
            TTLCache(maxsize=size, ttl=ttl_s) if size > 0 else None
        )

    def get(self, query: str) -> tuple[str | None, list[str]] | None:
        return self._cache.get(_key(query)) if self._cache is not None else None

    def put(self, query: str, author: str | None, queries: list[str]) -> None:
        if self._cache is not None:
            self._cache[_key(query)] = (author, list(queries))


class EmbeddingCache:
    """Query vectors by text (LRU); only the texts not seen before are sent to the model."""

    def __init__(self, size: int) -> None:
        self._cache: LRUCache[str, Vector] | None = LRUCache(maxsize=size) if size > 0 else None

    async def embed(
        self, texts: Sequence[str], compute: Callable[[list[str]], Awaitable[list[Vector]]]
    ) -> list[Vector]:
        if self._cache is None:
            return await compute(list(texts))
        cache = self._cache
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            for text, vector in zip(missing, await compute(missing), strict=True):
                cache[text] = vector
        return [cache[t] for t in texts]
