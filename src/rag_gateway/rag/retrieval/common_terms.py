"""Common BM25 terms: the query terms a large collection's BM25 search leaves out.

A BM25 query costs the length of its terms' posting lists, and a term found in a large share of a
collection's chunks has the longest list while its IDF (and so its weight in every score) is the smallest.
At 10^5-10^6 chunks such terms are most of a query's cost (Lucene's "common terms" cut-off rests on the same
observation). Which terms are common is estimated from a sample of the collection's stored BM25 vectors,
read from the store itself, so the embedded engine and a Qdrant server behave alike and no extra state is
written at ingest.

The cut applies only to collections of at least ``min_points`` chunks: below that a BM25 query is cheap and
the estimate from a small collection is noisy. A query made only of common terms is kept whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rag_gateway.rag.retrieval.stores.base import SearchVector, SparseVector

#: Points read per collection to estimate document frequencies: the share of a term found in 10% of the
#: chunks comes out within about +-0.6 percentage points (two standard errors).
SAMPLE_POINTS = 10_000
#: A collection is sampled again once its size moved by more than this share since its last sample.
RESAMPLE_GROWTH = 0.1


def term_shares(samples: Iterable[Sequence[int]], min_share: float) -> dict[int, float]:
    """The share of the sampled points holding each term (once per point), for the terms above
    ``min_share``."""
    frequency: Counter[int] = Counter()
    points = 0
    for term_ids in samples:
        points += 1
        frequency.update(set(term_ids))
    if points == 0:
        return {}
    return {term: found / points for term, found in frequency.items() if found / points > min_share}


def without_common_terms(query: SparseVector, common: frozenset[int]) -> SparseVector:
    """``query`` minus the ``common`` terms; the query itself when nothing else would remain."""
    kept = [(i, v) for i, v in zip(query.indices, query.values, strict=True) if i not in common]
    if not kept or len(kept) == len(query.indices):
        return query
    indices, values = zip(*kept, strict=True)
    return SparseVector(tuple(indices), tuple(values))


@dataclass(frozen=True)
class CommonTerms:
    """Per collection, the BM25 term ids its queries leave out (empty sets: nothing is left out)."""

    by_collection: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def queries_for(self, collection: str, searches: Sequence[SearchVector]) -> tuple[SearchVector, ...]:
        """The searches as ``collection`` runs them: BM25 queries without its common terms."""
        common = self.by_collection.get(collection)
        if not common:
            return tuple(searches)
        return tuple(
            without_common_terms(search, common) if isinstance(search, SparseVector) else search
            for search in searches
        )


NO_COMMON_TERMS = CommonTerms()
