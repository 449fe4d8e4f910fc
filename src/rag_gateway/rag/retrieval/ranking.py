"""From the searches' hit lists to the sources an answer cites: score, fuse, one source per document.

Dense mode ranks the merged candidates by the reranker alone. Hybrid mode fuses, by weighted reciprocal
rank, every dense list (one per query), every BM25 list (one per query) and the reranker's ordering, so a
chunk that matches the question's exact words (a title, a rare term) rises even when its embedding is a
near miss, while the reranker keeps paraphrases that share no word with their chunk in reach.
Then candidates are grouped by document: ``k`` counts documents, each cited by its best chunk(s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rag_gateway.rag.retrieval.fusion import RankedList, best_ranks, reciprocal_rank_fusion
from rag_gateway.rag.retrieval.stores import Hit

DOCUMENT_ID_KEY = "document_id"


@dataclass(frozen=True, slots=True)
class FusionWeights:
    dense: float = 1.0
    sparse: float = 1.0
    rerank: float = 1.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A chunk with its final score and, for the retrieval trace, how each signal ranked it."""

    hit: Hit
    score: float
    rerank_score: float
    ranks: dict[str, int] = field(default_factory=dict)
    fused_score: float | None = None


def ranked_lists(hit_lists: Sequence[list[Hit]], dense_count: int) -> list[RankedList]:
    """One collection's batched search answer as ranked lists: the first ``dense_count`` answer the dense
    query vectors (query 0 is the question), the rest the BM25 queries, in the same order."""
    return [
        RankedList("dense", index, hits)
        if index < dense_count
        else RankedList("sparse", index - dense_count, hits)
        for index, hits in enumerate(hit_lists)
    ]


def deduplicate(result_lists: Sequence[Sequence[Hit]]) -> list[Hit]:
    """Merge hit lists; a chunk found several times keeps its best score and its first position."""
    best: dict[str, Hit] = {}
    for hits in result_lists:
        for hit in hits:
            kept = best.get(hit.id)
            if kept is None or hit.score > kept.score:
                best[hit.id] = hit  # re-assigning an existing key keeps its insertion position
    return list(best.values())


def rank_by_reranker(
    candidates: Sequence[Hit], rerank_scores: Sequence[float], lists: Sequence[RankedList]
) -> list[Candidate]:
    """Dense mode: the reranker's order (ties keep retrieval order)."""
    ranks = best_ranks(lists)
    order = sorted(range(len(candidates)), key=lambda i: -rerank_scores[i])
    return [
        Candidate(candidates[i], rerank_scores[i], rerank_scores[i], ranks.get(candidates[i].id, {}))
        for i in order
    ]


def rank_by_fusion(
    candidates: Sequence[Hit],
    rerank_scores: Sequence[float],
    lists: Sequence[RankedList],
    weights: FusionWeights,
) -> list[Candidate]:
    """Hybrid mode: weighted RRF of the search lists and the reranker's ordering."""
    score_of = {hit.id: score for hit, score in zip(candidates, rerank_scores, strict=True)}
    by_reranker = [candidates[i] for i in sorted(range(len(candidates)), key=lambda i: -rerank_scores[i])]
    weighted = [
        RankedList(r.kind, r.query_index, r.hits, weights.dense if r.kind == "dense" else weights.sparse)
        for r in lists
    ]
    if weights.rerank > 0:
        weighted.append(RankedList("rerank", 0, by_reranker, weights.rerank))
    return [
        Candidate(entry.hit, entry.score, score_of[entry.hit.id], entry.ranks, entry.score)
        for entry in reciprocal_rank_fusion(weighted)
    ]


def one_per_document(
    ranked: Sequence[Candidate], k: int, per_document: int
) -> tuple[list[Candidate], list[Candidate]]:
    """The best ``per_document`` chunks of each of the ``k`` best documents, and the runners-up.

    A chunk without a document id counts as a document of its own.
    """
    kept: list[Candidate] = []
    runners_up: list[Candidate] = []
    taken: dict[str, int] = {}
    for candidate in ranked:
        document = str(candidate.hit.payload.get(DOCUMENT_ID_KEY) or candidate.hit.id)
        if (document not in taken and len(taken) >= k) or taken.get(document, 0) >= per_document:
            runners_up.append(candidate)
            continue
        taken[document] = taken.get(document, 0) + 1
        kept.append(candidate)
    return kept, runners_up
