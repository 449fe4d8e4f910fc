"""Rerankers: re-score retrieved chunks against the original query and keep the best k.

No cross-encoder ships on a registry reachable offline, so the default scores with the embedding model:
the cosine of the query vector and the chunk vector stored at ingest (a dot product of unit vectors, about
a few microseconds). A fastembed ``TextCrossEncoder`` is one setting away. Real model work runs in the
CPU pool; a reranker says through ``is_cheap`` when its work is smaller than a pool hop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rag_gateway.config import EMBEDDING_RERANKER_ID, Settings
from rag_gateway.rag.retrieval.embedding import Embedder, Vector
from rag_gateway.rag.retrieval.stores import Hit


class Reranker(Protocol):
    name: str

    def score(self, query: str, query_vector: Vector, hits: Sequence[Hit]) -> list[float]:
        """One relevance score per hit, in input order; higher is better."""
        ...

    def is_cheap(self, hits: Sequence[Hit]) -> bool:
        """True when scoring these hits costs less than a trip through the CPU pool (run it inline)."""
        ...


class EmbeddingReranker:
    name = "embedding"

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def is_cheap(self, hits: Sequence[Hit]) -> bool:
        # One small matrix-vector product (tens of hits x 384) takes microseconds; queued behind embedding
        # jobs in the pool it would wait far longer than it runs under load (docs/performance.md). Hits
        # without a stored vector need the model, which is pool work.
        return all(hit.vector is not None for hit in hits)

    def score(self, query: str, query_vector: Vector, hits: Sequence[Hit]) -> list[float]:
        if not hits:
            return []
        missing = [i for i, hit in enumerate(hits) if hit.vector is None]
        vectors = [hit.vector for hit in hits]
        if missing:  # points stored without vectors: embed their text once
            fresh = self._embedder.embed([str(hits[i].payload.get("content", "")) for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                vectors[i] = vector
        matrix = np.vstack([v for v in vectors if v is not None])
        return [float(s) for s in matrix @ query_vector]


class CrossEncoderReranker:
    """fastembed ``TextCrossEncoder`` by model id, or from a local folder (model.onnx + tokenizer files)."""

    def __init__(
        self, model_id: str, model_path: str | None, cache_dir: str | None, threads: int | None
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
        self._model = TextCrossEncoder(
            model_name=model_id, specific_model_path=model_path, cache_dir=cache_dir, threads=threads
        )

    def is_cheap(self, hits: Sequence[Hit]) -> bool:
        return not hits

    def score(self, query: str, query_vector: Vector, hits: Sequence[Hit]) -> list[float]:
        if not hits:
            return []
        documents = [str(hit.payload.get("content", "")) for hit in hits]
        return [float(s) for s in self._model.rerank(query, documents, batch_size=8)]


def build_reranker(settings: Settings, embedder: Embedder) -> Reranker:
    if settings.reranking_cross_encoder_model_id == EMBEDDING_RERANKER_ID:
        return EmbeddingReranker(embedder)
    path = settings.reranking_cross_encoder_model_path
    return CrossEncoderReranker(
        settings.reranking_cross_encoder_model_id,
        str(path) if path else None,
        str(settings.model_cache_dir) if settings.model_cache_dir else None,
        settings.effective_onnx_threads,
    )


def top_k(hits: Sequence[Hit], scores: Sequence[float], k: int) -> list[tuple[Hit, float]]:
    """The k best hits by score; ties keep retrieval order."""
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [(hits[i], scores[i]) for i in order[:k]]
