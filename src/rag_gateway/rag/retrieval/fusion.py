"""Fusing ranked lists (dense and BM25, one per query and collection) into one ranking.

Fusion runs in the gateway rather than in the store's query API, for two reasons: the retrieval trace can
show each source's rank in every list (what a user needs to see why an answer cited what it did), and the
fusion behaves identically over the embedded engine and a Qdrant server.

Weighted reciprocal rank fusion: score(d) = sum over lists L of weight(L) / (k + rank_L(d)), ranks from 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rag_gateway.rag.retrieval.stores import Hit

#: RRF's damping constant; 60 is the value of the original paper and of Qdrant's own fusion.
RRF_K = 60


@dataclass(frozen=True, slots=True)
class RankedList:
    """One search's hits, best first, with what it was (for weights and the trace)."""

    kind: str  # "dense" or "sparse"
    query_index: int  # 0 = the user's question, then the expansions
    hits: Sequence[Hit]
    weight: float = 1.0


@dataclass
class Fused:
    """One chunk's fused score and its 1-based rank in each kind of list (the best over queries)."""

    hit: Hit
    score: float = 0.0
    ranks: dict[str, int] = field(default_factory=dict)


def best_ranks(lists: Sequence[RankedList]) -> dict[str, dict[str, int]]:
    """Per chunk id, its best 1-based rank in each kind of list (over every query)."""
    ranks: dict[str, dict[str, int]] = {}
    for ranked in lists:
        for position, hit in enumerate(ranked.hits, start=1):
            known = ranks.setdefault(hit.id, {})
            if position < known.get(ranked.kind, position + 1):
                known[ranked.kind] = position
    return ranks


def reciprocal_rank_fusion(lists: Sequence[RankedList], k: int = RRF_K) -> list[Fused]:
    """Every chunk of every list, best fused score first (ties: first seen first)."""
    fused: dict[str, Fused] = {}
    for ranked in lists:
        for position, hit in enumerate(ranked.hits, start=1):
            entry = fused.get(hit.id)
            if entry is None:
                entry = fused[hit.id] = Fused(hit)
            entry.score += ranked.weight / (k + position)
    ranks = best_ranks(lists)
    for entry in fused.values():
        entry.ranks = ranks[entry.hit.id]
    return sorted(fused.values(), key=lambda entry: entry.score, reverse=True)
