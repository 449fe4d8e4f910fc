"""Rerankers order candidates by relevance to the original query."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag_gateway.config import Settings
from rag_gateway.rag.retrieval.embedding import Embedder
from rag_gateway.rag.retrieval.reranking import CrossEncoderReranker, EmbeddingReranker, build_reranker, top_k
from rag_gateway.rag.retrieval.schema import index_schema
from rag_gateway.rag.retrieval.stores import Hit, StoredPoint
from rag_gateway.rag.retrieval.stores.edge import EdgeStore
from rag_gateway.runtime.cpu_pool import CpuPool
from tests.standin_models import build_keyword_cross_encoder

POSTS = "embedded_posts"


def _hit(id_: str, content: str) -> Hit:
    return Hit(id=id_, collection=POSTS, score=0.0, payload={"content": content})


@pytest.fixture(scope="module")
def embedder(model_settings: Settings) -> Embedder:
    return Embedder(model_settings)


async def test_embedding_reranker_puts_the_relevant_chunk_first(embedder: Embedder, tmp_path: Path) -> None:
    """Scored by the store against the vectors stored at ingest: the chunk that answers wins."""
    query = "how do I rotate the API keys of the gateway?"
    texts = ["The cat sat on the mat.", "To rotate API keys, open the admin console and click regenerate."]
    ids = [str(uuid.uuid4()) for _ in texts]
    store = EdgeStore(Settings(qdrant_path=tmp_path / "store"))
    try:
        await store.ensure_collections(index_schema(Settings(), embedder.dim), [POSTS])
        vectors = embedder.embed(texts)
        await store.upsert(
            POSTS, [StoredPoint(i, v, {"content": t}) for i, v, t in zip(ids, vectors, texts, strict=True)]
        )
        hits = [_hit(i, t) for i, t in zip(ids, texts, strict=True)]
        query_vector = embedder.embed([query])[0]
        scores = await EmbeddingReranker(store).score(query, query_vector, hits)
        assert scores == pytest.approx([float(v @ query_vector) for v in vectors], abs=1e-5)
        assert [hit.id for hit, _ in top_k(hits, scores, 2)] == [ids[1], ids[0]]
        # a point deleted since the search keeps the score it was found with
        gone = Hit(id=str(uuid.uuid4()), collection=POSTS, score=0.25, payload={})
        assert (await EmbeddingReranker(store).score(query, query_vector, [gone])) == [0.25]
    finally:
        await store.close()


def test_top_k_keeps_k_best_and_retrieval_order_on_ties() -> None:
    hits = [_hit(str(i), "x") for i in range(4)]
    ranked = top_k(hits, [0.5, 0.9, 0.5, 0.1], 3)
    assert [hit.id for hit, _ in ranked] == ["1", "0", "2"]


async def test_cross_encoder_from_a_local_folder_scores_with_the_onnx_model(
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
    pool = CpuPool(1)
    try:
        reranker = build_reranker(settings, store=None, pool=pool)  # type: ignore[arg-type]
        assert isinstance(reranker, CrossEncoderReranker)
        hits = [
            _hit("none", "Nothing relevant here."),
            _hit("two", "a vector index and a vector cache"),
            _hit("one", "a vector server"),
        ]
        scores = await reranker.score("where is the vector kept?", np.zeros(384, dtype=np.float32), hits)
    finally:
        pool.shutdown()
    # query has 1 keyword; documents add 0, 2 and 1
    assert scores == [1.0, 3.0, 2.0]
    assert [hit.id for hit, _ in top_k(hits, scores, 3)] == ["two", "one", "none"]


def test_settings_reject_a_cross_encoder_path_without_a_model_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RERANKING_CROSS_ENCODER_MODEL_ID"):
        Settings(reranking_cross_encoder_model_path=tmp_path)
