"""Rerankers: re-score retrieved chunks against the original query and keep the best k.

No cross-encoder ships on a registry reachable offline, so the default scores with the embedding model:
the cosine of the query vector and each chunk's vector stored at ingest, which the store computes where
the vectors live (`VectorStore.dense_scores`: one exact, id-filtered query per collection) instead of
shipping 384 floats per hit to the gateway. A fastembed ``TextCrossEncoder`` is one setting away; its model
work runs in the CPU pool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from rag_gateway.config import EMBEDDING_RERANKER_ID, Settings
from rag_gateway.rag.retrieval.embedding import Vector
from rag_gateway.rag.retrieval.stores import Hit, VectorStore
from rag_gateway.runtime.cpu_pool import CpuPool


class Reranker(Protocol):
    name: str

    async def score(self, query: str, query_vector: Vector, hits: Sequence[Hit]) -> list[float]:
        """One relevance score per hit, in input order; higher is better."""
        ...


class EmbeddingReranker:
    name = "embedding"

    def __init__(self, store: VectorStore) -> None:
        self._store = store

    async def score(self, query: str, query_vector: Vector, hits: Sequence[Hit]) -> list[float]:
        if not hits:
            return []
        scores = await self._store.dense_scores(query_vector, ids_by_collection(hits))
        return scores_in_order(hits, scores)


def ids_by_collection(hits: Sequence[Hit]) -> dict[str, list[str]]:
    """The hits' point ids per collection: what `VectorStore.dense_scores` takes."""
    ids: dict[str, list[str]] = {}
    for hit in hits:
        ids.setdefault(hit.collection, []).append(hit.id)
    return ids


def scores_in_order(hits: Sequence[Hit], scores: Mapping[str, float]) -> list[float]:
    """``scores`` by point id as a list in hit order; a point deleted since the search keeps the score it
    was found with."""
    return [scores.get(hit.id, hit.score) for hit in hits]


class CrossEncoderReranker:
    """fastembed ``TextCrossEncoder`` by model id, or from a local folder (model.onnx + tokenizer files)."""

    def __init__(
        self,
        model_id: str,
        model_path: str | None,
        cache_dir: str | None,
        threads: int | None,
        pool: CpuPool | None = None,
    ) -> None:
        from fastembed.common.model_description import ModelSource
        from fastembed.rerank.cross_encoder import TextCrossEncoder

        if model_path is not None:
            known = {m["model"].lower() for m in TextCrossEncoder.list_supported_models()}
            if model_id.lower() not in known:
                TextCrossEncoder.add_custom_model(
                    model=model_id,
                    sources=ModelSource(hf=model_id),
                    model_file="model.onnx",
                    license="unknown",
                )
        self.name = model_id
        self._pool = pool
        self._model = TextCrossEncoder(
            model_name=model_id, specific_model_path=model_path, cache_dir=cache_dir, threads=threads
        )

    async def score(self, query: str, query_vector: Vector, hits: Sequence[Hit]) -> list[float]:
        if not hits:
            return []
        if self._pool is None:
            return self.score_now(query, hits)
        return await self._pool.run(self.score_now, query, hits)

    def score_now(self, query: str, hits: Sequence[Hit]) -> list[float]:
        """The model's scores, in the calling thread (the pool's, or a synchronous caller's)."""
        documents = [str(hit.payload.get("content", "")) for hit in hits]
        return [float(s) for s in self._model.rerank(query, documents, batch_size=8)]


def build_reranker(settings: Settings, store: VectorStore, pool: CpuPool | None = None) -> Reranker:
    """The configured reranker; a cross-encoder's model work goes to ``pool`` when one is given."""
    if settings.reranking_cross_encoder_model_id == EMBEDDING_RERANKER_ID:
        return EmbeddingReranker(store)
    path = settings.reranking_cross_encoder_model_path
    return CrossEncoderReranker(
        settings.reranking_cross_encoder_model_id,
        str(path) if path else None,
        str(settings.model_cache_dir) if settings.model_cache_dir else None,
        settings.effective_onnx_threads,
        pool,
    )


def top_k(hits: Sequence[Hit], scores: Sequence[float], k: int) -> list[tuple[Hit, float]]:
    """The k best hits by score; ties keep retrieval order."""
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [(hits[i], scores[i]) for i in order[:k]]
