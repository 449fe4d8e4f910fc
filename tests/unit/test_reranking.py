"""Rerankers order candidates by relevance to the original query."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag_gateway.config import Settings
from rag_gateway.rag.retrieval.embedding import Embedder
from rag_gateway.rag.retrieval.reranking import CrossEncoderReranker, EmbeddingReranker, build_reranker, top_k
from rag_gateway.rag.retrieval.stores import Hit
from tests.standin_models import build_keyword_cross_encoder


def _hit(id_: str, content: str, vector: np.ndarray | None = None) -> Hit:
    return Hit(id=id_, collection="embedded_posts", score=0.0, payload={"content": content}, vector=vector)


@pytest.fixture(scope="module")
def embedder(model_settings: Settings) -> Embedder:
    return Embedder(model_settings)


def test_embedding_reranker_puts_the_relevant_chunk_first(embedder: Embedder) -> None:
    query = "how do I rotate the API keys of the gateway?"
    texts = ["The cat sat on the mat.", "To rotate API keys, open the admin console and click regenerate."]
    vectors = embedder.embed(texts)
    hits = [_hit(str(i), t, v) for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    reranker = EmbeddingReranker(embedder)
    scores = reranker.score(query, embedder.embed([query])[0], hits)
    assert [hit.id for hit, _ in top_k(hits, scores, 2)] == ["1", "0"]


def test_embedding_reranker_embeds_chunks_stored_without_vectors(embedder: Embedder) -> None:
    query = "kubernetes pod keeps restarting"
    hits = [
        _hit("a", "Pie recipes for autumn."),
        _hit("b", "A pod restarts when it is OOMKilled by kubernetes."),
    ]
    scores = EmbeddingReranker(embedder).score(query, embedder.embed([query])[0], hits)
    assert scores[1] > scores[0]


def test_embedding_reranker_runs_inline_only_when_every_hit_has_its_vector(embedder: Embedder) -> None:
    reranker = EmbeddingReranker(embedder)
    stored = _hit("a", "x", np.ones(384, dtype=np.float32))
    assert reranker.is_cheap([stored, stored])
    assert not reranker.is_cheap([stored, _hit("b", "no vector: needs the model")])


def test_top_k_keeps_k_best_and_retrieval_order_on_ties() -> None:
    hits = [_hit(str(i), "x") for i in range(4)]
    ranked = top_k(hits, [0.5, 0.9, 0.5, 0.1], 3)
    assert [hit.id for hit, _ in ranked] == ["1", "0", "2"]


def test_cross_encoder_from_a_local_folder_scores_with_the_onnx_model(
    tmp_path: Path, model_settings: Settings
) -> None:
    vocab = json.loads((model_settings.embedding_tokenizer_dir / "tokenizer.json").read_text())["model"][
        "vocab"
    ]
    model_dir = build_keyword_cross_encoder(
        tmp_path / "ce", model_settings.embedding_tokenizer_dir, vocab["vector"]
    )
    settings = model_settings.model_copy(
        update={
            "reranking_cross_encoder_model_id": "local/keyword-cross-encoder",
            "reranking_cross_encoder_model_path": model_dir,
        }
    )
    reranker = build_reranker(settings, embedder=None)  # type: ignore[arg-type]
    assert isinstance(reranker, CrossEncoderReranker)
    hits = [
        _hit("none", "Nothing relevant here."),
        _hit("two", "a vector index and a vector cache"),
        _hit("one", "a vector server"),
    ]
    assert not reranker.is_cheap(hits)  # a cross-encoder is model work: always in the pool
    scores = reranker.score("where is the vector kept?", np.zeros(384, dtype=np.float32), hits)
    # query has 1 keyword; documents add 0, 2 and 1
    assert scores == [1.0, 3.0, 2.0]
    assert [hit.id for hit, _ in top_k(hits, scores, 3)] == ["two", "one", "none"]


def test_settings_reject_a_cross_encoder_path_without_a_model_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RERANKING_CROSS_ENCODER_MODEL_ID"):
        Settings(reranking_cross_encoder_model_path=tmp_path)
