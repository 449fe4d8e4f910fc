"""What the corpus holds right now: which collections hold points, which authors are indexed, and which
BM25 terms are common in each large collection (see `common_terms`).

Used on the read path to decide where to search and whether a self-queried name may become a filter: an
author the corpus does not know must never become a filter (it would return nothing). Names match case- and
whitespace-insensitively and come back spelled as stored. Read from the store (no writes) and reused for
``AUTHOR_CACHE_TTL_S`` seconds. An empty collection is left out of the searches: querying it finds nothing
and still costs a batched call per request (a third of the search stage on a corpus of articles only).
A collection's common terms are estimated again only when its size moved by more than a tenth, since a
sample costs a scroll of thousands of points.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rag_gateway.config import Settings
from rag_gateway.errors import GatewayError
from rag_gateway.rag.retrieval.common_terms import (
    NO_COMMON_TERMS,
    RESAMPLE_GROWTH,
    SAMPLE_POINTS,
    CommonTerms,
    term_shares,
)
from rag_gateway.rag.retrieval.options import RetrievalProfiles
from rag_gateway.rag.retrieval.stores import VectorStore

logger = logging.getLogger(__name__)


def normalise_name(name: str) -> str:
    """How author names are matched: case and runs of whitespace do not count."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class CommonTermPolicy:
    """Which BM25 term shares the catalogue keeps: those above ``min_share`` (the lowest
    HYBRID_COMMON_TERM_SHARE a retrieval profile in use asks for), in collections of at least ``min_points``
    chunks (HYBRID_COMMON_TERM_MIN_POINTS)."""

    min_share: float = 1.0
    min_points: int = 20_000

    @property
    def enabled(self) -> bool:
        return self.min_share < 1.0


def common_term_policy(settings: Settings, profiles: RetrievalProfiles | None = None) -> CommonTermPolicy:
    """The policy the retrieval profiles (default: the settings') need; none in dense mode."""
    profiles = profiles or RetrievalProfiles.from_settings(settings)
    return CommonTermPolicy(profiles.lowest_common_term_share, settings.hybrid_common_term_min_points)


@dataclass(frozen=True)
class _Sample:
    points: int  #: the collection's size when it was sampled
    shares: dict[int, float]  #: the share of the sampled chunks holding each term above the policy's


class CorpusCatalog:
    def __init__(
        self,
        store: VectorStore,
        collections: Sequence[str],
        ttl_s: float,
        common_terms: CommonTermPolicy | None = None,
    ) -> None:
        self._store = store
        self._wanted = tuple(collections)
        self._ttl_s = ttl_s
        self._policy = common_terms or CommonTermPolicy()
        self._collections: tuple[str, ...] = ()
        self._authors: dict[str, str] = {}
        self._samples: dict[str, _Sample] = {}
        self._common_terms: dict[float, CommonTerms] = {}  # by share, from the current samples
        self._points = 0
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._loaded_at is not None and time.monotonic() - self._loaded_at < self._ttl_s

    async def refresh(self, *, force: bool = False) -> None:
        if self._fresh() and not force:
            return
        async with self._lock:  # one refresh at a time; concurrent callers reuse its result
            if self._fresh() and not force:
                return
            present = await self._store.existing_collections()
            sizes = {c: await self._store.count(c) for c in self._wanted if c in present}
            collections = tuple(c for c, size in sizes.items() if size > 0)
            names = await self._store.authors(collections) if collections else set()
            if self._policy.enabled:
                await self._sample_common_terms(sizes)
            self._collections = collections
            self._points = sum(sizes.values())
            self._authors = {normalise_name(name): name for name in names}
            self._loaded_at = time.monotonic()

    async def _sample_common_terms(self, sizes: dict[str, int]) -> None:
        """Estimate the common terms of each large collection whose size moved since its last sample."""
        samples: dict[str, _Sample] = {}
        for name, size in sizes.items():
            if size < self._policy.min_points:
                continue
            previous = self._samples.get(name)
            if previous is not None and abs(size - previous.points) <= RESAMPLE_GROWTH * previous.points:
                samples[name] = previous
                continue
            try:
                terms = await self._store.sample_sparse_terms(name, SAMPLE_POINTS)
            except GatewayError as exc:  # the estimate is an optimisation: keep the last one, or none
                logger.warning("common BM25 terms of %s not estimated: %s", name, exc.error_type)
                if previous is not None:
                    samples[name] = previous
                continue
            samples[name] = _Sample(size, term_shares(terms, self._policy.min_share))
        self._samples = samples
        self._common_terms = {}

    async def collections(self) -> tuple[str, ...]:
        """The configured collections that exist in the store and hold points."""
        await self.refresh()
        return self._collections

    def points(self) -> int:
        """The chunks the configured collections held at the last refresh (`collections` and
        `resolve_author` refresh; a request calls them first)."""
        return self._points

    def common_terms(self, max_share: float) -> CommonTerms:
        """The BM25 terms in more than ``max_share`` of each large collection's chunks, as of the last
        refresh; none for a share below what the policy keeps (or 1)."""
        if max_share >= 1.0 or max_share < self._policy.min_share:
            return NO_COMMON_TERMS
        common = self._common_terms.get(max_share)
        if common is None:
            common = CommonTerms(
                {
                    name: frozenset(term for term, share in sample.shares.items() if share > max_share)
                    for name, sample in self._samples.items()
                }
            )
            self._common_terms[max_share] = common
        return common

    async def resolve_author(self, name: str | None) -> str | None:
        """The indexed spelling of ``name``, or None when the corpus has no such author."""
        if not name:
            return None
        await self.refresh()
        return self._authors.get(normalise_name(name))
