"""The query-embedding path as one object: cache, then the micro-batcher's threads, then the model."""

from __future__ import annotations

from collections.abc import Sequence

from rag_gateway.rag.caches import EmbeddingCache
from rag_gateway.rag.retrieval.batching import MicroBatcher
from rag_gateway.rag.retrieval.embedding import Embedder, Vector


class QueryEmbedder:
    """Embeds a request's queries: texts seen before come from the cache; the rest share a model run with
    other requests' texts on the embedding threads (``workers`` batches at once)."""

    def __init__(
        self,
        embedder: Embedder,
        cache: EmbeddingCache | None = None,
        *,
        batch_window_s: float = 0.0,
        workers: int = 1,
        batch_max_texts: int = 64,
        nice: int = 0,
    ) -> None:
        self._cache = cache or EmbeddingCache(0)
        self._batcher = MicroBatcher(
            embedder.embed, batch_window_s, max_texts=batch_max_texts, workers=workers, nice=nice
        )

    @property
    def pending(self) -> int:
        """Requests whose texts wait for an embedding thread."""
        return self._batcher.pending

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return await self._cache.embed(texts, self._batcher.embed)

    def close(self) -> None:
        """Stop the embedding threads (after their current batch)."""
        self._batcher.close()
