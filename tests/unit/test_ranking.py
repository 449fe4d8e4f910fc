"""Fusion of ranked lists and one source per document."""

from __future__ import annotations

from rag_gateway.rag.retrieval.fusion import RRF_K, RankedList, reciprocal_rank_fusion
from rag_gateway.rag.retrieval.ranking import (
    Candidate,
    FusionWeights,
    one_per_document,
    rank_by_fusion,
    rank_by_reranker,
)
from rag_gateway.rag.retrieval.stores import Hit


def hit(id_: str, document: str | None = None, score: float = 0.0) -> Hit:
    payload = {"document_id": document} if document else {}
    return Hit(id=id_, collection="embedded_articles", score=score, payload=payload)


def test_rrf_adds_weighted_reciprocal_ranks_and_keeps_each_lists_best_rank() -> None:
    a, b, c = hit("a"), hit("b"), hit("c")
    fused = reciprocal_rank_fusion(
        [
            RankedList("dense", 0, [a, b]),
            RankedList("dense", 1, [b, a]),
            RankedList("sparse", 0, [c, b], weight=2.0),
        ]
    )
    scores = {entry.hit.id: entry.score for entry in fused}
    assert scores["b"] == 1 / (RRF_K + 2) + 1 / (RRF_K + 1) + 2 / (RRF_K + 2)
    assert scores["c"] == 2 / (RRF_K + 1)
    assert [entry.hit.id for entry in fused] == ["b", "c", "a"]  # 2/61 > 1/61 + 1/62
    ranks = {entry.hit.id: entry.ranks for entry in fused}
    assert (
        ranks["b"] == {"dense": 1, "sparse": 2} and ranks["a"] == {"dense": 1} and ranks["c"] == {"sparse": 1}
    )


def test_a_heavier_sparse_list_lifts_an_exact_word_match_over_a_dense_near_miss() -> None:
    near_miss, exact = hit("near"), hit("exact")
    lists = [RankedList("dense", 0, [near_miss, exact]), RankedList("sparse", 0, [exact])]
    balanced = rank_by_fusion([near_miss, exact], [0.9, 0.8], lists, FusionWeights(sparse=1.0, rerank=1.0))
    assert [c.hit.id for c in balanced] == ["exact", "near"]
    without_sparse = rank_by_fusion([near_miss, exact], [0.9, 0.8], lists, FusionWeights(sparse=0.0))
    assert [c.hit.id for c in without_sparse] == ["near", "exact"]
    assert balanced[0].rerank_score == 0.8 and balanced[0].fused_score == balanced[0].score


def test_dense_mode_orders_by_the_reranker_and_still_reports_search_ranks() -> None:
    a, b = hit("a"), hit("b")
    ranked = rank_by_reranker([a, b], [0.1, 0.7], [RankedList("dense", 0, [a, b])])
    assert [(c.hit.id, c.score, c.ranks) for c in ranked] == [
        ("b", 0.7, {"dense": 2}),
        ("a", 0.1, {"dense": 1}),
    ]


def _candidates(*pairs: tuple[str, str | None]) -> list[Candidate]:
    return [Candidate(hit(id_, doc), 1.0 - i / 10, 0.0) for i, (id_, doc) in enumerate(pairs)]


def test_one_source_per_document_and_k_counts_documents() -> None:
    ranked = _candidates(("a1", "A"), ("a2", "A"), ("b1", "B"), ("c1", "C"), ("b2", "B"), ("d1", "D"))
    kept, runners_up = one_per_document(ranked, k=3, per_document=1)
    assert [c.hit.id for c in kept] == ["a1", "b1", "c1"]
    assert [c.hit.id for c in runners_up] == ["a2", "b2", "d1"]


def test_several_chunks_per_document_when_asked() -> None:
    ranked = _candidates(("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("c1", "C"))
    kept, _ = one_per_document(ranked, k=2, per_document=2)
    assert [c.hit.id for c in kept] == ["a1", "a2", "b1"]


def test_a_chunk_without_a_document_id_is_its_own_document() -> None:
    kept, _ = one_per_document(_candidates(("x", None), ("y", None)), k=2, per_document=1)
    assert [c.hit.id for c in kept] == ["x", "y"]
