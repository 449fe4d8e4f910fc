"""How retrieval turns queries into sources, and which of two profiles a corpus of its size gets.

The standard profile is the HYBRID_* settings as they are: three BM25 queries (the question and its
expansions), weighted 2 each. On 10^5-10^6 chunks a BM25 query costs in proportion to the corpus, so the
large-corpus profile sends one (the question's), weighted 10, without the terms found in more than a tenth
of a collection's chunks (docs/performance.md has the eval and the cost of each). RETRIEVAL_PROFILE picks one,
or ``auto``: the large profile once the searched collections hold LARGE_CORPUS_POINTS chunks. A HYBRID_*
setting changed from its default is kept in both profiles (a copied .env.example, which spells out the
defaults, changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rag_gateway.config import Settings
from rag_gateway.rag.retrieval.ranking import FusionWeights

#: What the large-corpus profile changes, each unless the setting was changed from its default.
LARGE_CORPUS_SETTINGS: dict[str, Any] = {
    "hybrid_sparse_queries": "original",
    "hybrid_sparse_weight": 10.0,
    "hybrid_common_term_share": 0.1,
}


@dataclass(frozen=True, slots=True)
class RetrievalOptions:
    """How candidates become sources (settings RETRIEVAL_MODE, HYBRID_*, SOURCES_PER_DOCUMENT)."""

    mode: str = "dense"
    weights: FusionWeights = field(default_factory=FusionWeights)
    per_document: int = 1
    #: Hybrid: "all" query texts get a BM25 query, or the "original" question only.
    sparse_queries: str = "all"
    #: Hybrid: BM25 query terms in more than this share of a large collection's chunks are left out.
    common_term_share: float = 1.0
    #: Which profile these options are ("standard" or "large").
    profile: str = "standard"

    @classmethod
    def from_settings(cls, settings: Settings, profile: str = "standard") -> RetrievalOptions:
        return cls(
            mode=settings.retrieval_mode,
            weights=FusionWeights(sparse=settings.hybrid_sparse_weight, rerank=settings.hybrid_rerank_weight),
            per_document=settings.sources_per_document,
            sparse_queries=settings.hybrid_sparse_queries,
            common_term_share=settings.hybrid_common_term_share if settings.retrieval_mode == "hybrid" else 1,
            profile=profile,
        )

    def sparse_texts(self, queries: Sequence[str]) -> Sequence[str]:
        """The query texts that get a BM25 query (hybrid mode): all of them, or the question only."""
        return queries if self.sparse_queries == "all" else queries[:1]


@dataclass(frozen=True, slots=True)
class RetrievalProfiles:
    """The standard and the large-corpus options, and from how many chunks the large ones apply."""

    standard: RetrievalOptions
    large: RetrievalOptions
    #: Searched chunks from which the large profile applies; None: never.
    large_from_points: int | None = None

    @classmethod
    def single(cls, options: RetrievalOptions) -> RetrievalProfiles:
        """Always the same options, whatever the corpus."""
        return cls(options, options, None)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrievalProfiles:
        defaults = {key: type(settings).model_fields[key].default for key in LARGE_CORPUS_SETTINGS}
        large = settings.model_copy(
            update={
                key: value
                for key, value in LARGE_CORPUS_SETTINGS.items()
                if getattr(settings, key) == defaults[key]  # one the user changed stays theirs
            }
        )
        threshold = {"standard": None, "large": 0, "auto": settings.large_corpus_points}
        return cls(
            RetrievalOptions.from_settings(settings),
            RetrievalOptions.from_settings(large, "large"),
            threshold[settings.retrieval_profile],
        )

    def options_for(self, points: int) -> RetrievalOptions:
        """The options for searched collections holding ``points`` chunks in all."""
        if self.large_from_points is not None and points >= self.large_from_points:
            return self.large
        return self.standard

    @property
    def lowest_common_term_share(self) -> float:
        """The smallest common-term share either profile in use may ask for (1: none asks)."""
        shares = [self.standard.common_term_share]
        if self.large_from_points is not None:
            shares.append(self.large.common_term_share)
        return min(shares)
