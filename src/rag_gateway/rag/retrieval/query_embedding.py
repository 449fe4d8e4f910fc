"""The query-embedding path as one object: cache, then micro-batcher, then the model in the CPU pool."""

from __future__ import annotations

from collections.abc import Sequence

from rag_gateway.rag.caches import EmbeddingCache
from rag_gateway.rag.retrieval.batching import MicroBatcher
from rag_gateway.rag.retrieval.embedding import Embedder, Vector
from rag_gateway.runtime.cpu_pool import CpuPool


class QueryEmbedder:
    """Embeds a request's queries: texts seen before come from the cache; the rest share a model run
    with other requests' texts when micro-batching is on (``batch_window_s`` > 0)."""

    def __init__(
        self,
        embedder: Embedder,
        pool: CpuPool,
        cache: EmbeddingCache | None = None,
        *,
        batch_window_s: float = 0.0,
        batches_in_flight: int = 1,
        batch_max_texts: int = 64,
    ) -> None:
        self._embedder = embedder
        self._pool = pool
        self._cache = cache or EmbeddingCache(0)
        self._batcher = (
            MicroBatcher(
                self._embed_in_pool,
                batch_window_s,
                max_texts=batch_max_texts,
                max_in_flight=batches_in_flight,
            )
            if batch_window_s > 0
            else None
        )

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return await self._cache.embed(texts, self._compute)

    async def _compute(self, texts: list[str]) -> list[Vector]:
        if self._batcher is not None:
            return await self._batcher.embed(texts)
        return await self._embed_in_pool(texts)

    async def _embed_in_pool(self, texts: list[str]) -> list[Vector]:
        return await self._pool.run(self._embedder.embed, texts)
