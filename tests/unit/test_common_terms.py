"""Common BM25 terms: estimated from a sample of stored vectors, left out of a large collection's queries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from rag_gateway.config import Settings
from rag_gateway.errors import UpstreamUnavailableError
from rag_gateway.rag.retrieval.catalog import CommonTermPolicy, CorpusCatalog, common_term_policy
from rag_gateway.rag.retrieval.common_terms import (
    SAMPLE_POINTS,
    CommonTerms,
    term_shares,
    without_common_terms,
)
from rag_gateway.rag.retrieval.options import LARGE_CORPUS_SETTINGS, RetrievalProfiles
from rag_gateway.rag.retrieval.stores.base import SparseVector
from tests.conftest import PROJECT_ROOT


def test_a_terms_share_is_of_the_sampled_points_holding_it() -> None:
    samples = [(1, 2), (1, 3), (1, 2, 2), (4,)]  # 1 in 3/4 points, 2 in 2/4 (counted once per point)
    assert term_shares(samples, 0.4) == {1: 0.75, 2: 0.5}
    assert term_shares(samples, 0.5) == {1: 0.75}
    assert term_shares(samples, 0.75) == {}
    assert term_shares([], 0.1) == {}


def test_common_terms_leave_the_query_with_their_weights_aligned() -> None:
    query = SparseVector((10, 20, 30), (1.0, 2.0, 3.0))
    assert without_common_terms(query, frozenset({20})) == SparseVector((10, 30), (1.0, 3.0))
    assert without_common_terms(query, frozenset({99})) == query


def test_a_query_of_common_terms_only_is_kept_whole() -> None:
    query = SparseVector((10, 20), (1.0, 1.0))
    assert without_common_terms(query, frozenset({10, 20, 30})) == query


def test_only_the_named_collections_bm25_queries_change() -> None:
    dense = np.ones(4, dtype=np.float32)
    sparse = SparseVector((1, 2), (1.0, 1.0))
    common = CommonTerms({"articles": frozenset({1})})
    searched = common.queries_for("articles", [dense, sparse])
    assert searched[0] is dense and searched[1] == SparseVector((2,), (1.0,))
    assert common.queries_for("posts", [dense, sparse]) == (dense, sparse)


class SampledStore:
    """The catalog's calls on a store with one big and one small collection; samples are counted."""

    def __init__(self) -> None:
        self.sizes = {"big": 50_000, "small": 500}
        self.sampled: list[tuple[str, int]] = []

    async def existing_collections(self) -> set[str]:
        return set(self.sizes)

    async def count(self, collection: str) -> int:
        return self.sizes[collection]

    async def authors(self, collections: Sequence[str]) -> set[str]:
        return set()

    async def sample_sparse_terms(self, collection: str, limit: int) -> list[tuple[int, ...]]:
        self.sampled.append((collection, limit))
        await asyncio.sleep(0)
        return [(7, i) for i in range(100)]  # term 7 in every point, the others in one each


def _catalog(store: SampledStore, policy: CommonTermPolicy) -> CorpusCatalog:
    fake: Any = store
    return CorpusCatalog(fake, ("big", "small"), ttl_s=0.0, common_terms=policy)


async def test_only_large_collections_are_sampled_and_get_common_terms() -> None:
    store = SampledStore()
    catalog = _catalog(store, CommonTermPolicy(min_share=0.2, min_points=20_000))
    assert catalog.common_terms(0.2).by_collection == {}  # nothing read yet
    await catalog.collections()  # what a request asks first refreshes the catalogue
    assert store.sampled == [("big", SAMPLE_POINTS)]
    assert catalog.common_terms(0.2).by_collection == {"big": frozenset({7})}
    assert catalog.points() == 50_500
    assert catalog.common_terms(0.1).by_collection == {}  # below what the policy keeps: nothing
    assert catalog.common_terms(1.0).by_collection == {}


async def test_a_collection_is_sampled_again_only_once_its_size_moved_by_a_tenth() -> None:
    store = SampledStore()
    catalog = _catalog(store, CommonTermPolicy(min_share=0.2, min_points=20_000))
    await catalog.collections()
    store.sizes["big"] = 54_000  # +8%: the estimate still holds
    await catalog.collections()
    assert len(store.sampled) == 1
    store.sizes["big"] = 56_000  # +12% since the sample
    await catalog.collections()
    assert len(store.sampled) == 2 and catalog.common_terms(0.2).by_collection == {"big": frozenset({7})}


async def test_with_the_cut_off_nothing_is_sampled() -> None:
    store = SampledStore()
    catalog = _catalog(store, CommonTermPolicy(min_share=1.0))
    await catalog.collections()
    assert store.sampled == [] and catalog.common_terms(0.2).by_collection == {}


class FailingSampleStore(SampledStore):
    def __init__(self, failing: bool = False) -> None:
        super().__init__()
        self.failing = failing

    async def sample_sparse_terms(self, collection: str, limit: int) -> list[tuple[int, ...]]:
        if self.failing:
            raise UpstreamUnavailableError("the vector store is unreachable", upstream="qdrant")
        return await super().sample_sparse_terms(collection, limit)


async def test_a_failed_sample_keeps_the_last_estimate_and_the_rest_of_the_catalogue() -> None:
    """The estimate only saves CPU: a store that fails to give a sample costs neither the author
    catalogue nor the collections, and the last estimate stays in use."""
    store = FailingSampleStore()
    catalog = _catalog(store, CommonTermPolicy(min_share=0.2, min_points=20_000))
    await catalog.collections()
    store.failing, store.sizes["big"] = True, 80_000  # due for a new sample, which fails
    assert await catalog.collections() == ("big", "small")
    assert catalog.common_terms(0.2).by_collection == {"big": frozenset({7})}
    fresh = _catalog(FailingSampleStore(failing=True), CommonTermPolicy(min_share=0.2, min_points=20_000))
    assert await fresh.collections() == ("big", "small") and fresh.common_terms(0.2).by_collection == {}


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.mark.parametrize(("profile", "min_share"), [("auto", 0.1), ("large", 0.1), ("standard", 0.2)])
def test_the_catalogue_keeps_the_shares_the_profiles_in_use_need(profile: str, min_share: float) -> None:
    policy = common_term_policy(_settings(retrieval_profile=profile, hybrid_common_term_min_points=5))
    assert policy == CommonTermPolicy(min_share, 5)
    assert not common_term_policy(_settings(retrieval_mode="dense")).enabled  # dense search has no terms


@pytest.mark.parametrize(
    ("profile", "points", "chosen"),
    [
        ("auto", 99_999, "standard"),
        ("auto", 100_000, "large"),
        ("standard", 10**7, "standard"),
        ("large", 0, "large"),
    ],
)
def test_the_profile_follows_the_corpus_size_on_auto(profile: str, points: int, chosen: str) -> None:
    profiles = RetrievalProfiles.from_settings(_settings(retrieval_profile=profile))
    assert profiles.options_for(points).profile == chosen


def test_the_large_profile_changes_only_what_is_still_at_its_default() -> None:
    default = RetrievalProfiles.from_settings(_settings()).large
    assert default.sparse_queries == LARGE_CORPUS_SETTINGS["hybrid_sparse_queries"]
    assert default.weights.sparse == LARGE_CORPUS_SETTINGS["hybrid_sparse_weight"]
    assert default.common_term_share == LARGE_CORPUS_SETTINGS["hybrid_common_term_share"]
    mine = RetrievalProfiles.from_settings(_settings(hybrid_sparse_weight=4.0, hybrid_common_term_share=0.3))
    assert mine.large.weights.sparse == 4.0 and mine.large.common_term_share == 0.3
    assert mine.large.sparse_queries == "original"
    assert mine.standard.weights.sparse == 4.0 and mine.standard.sparse_queries == "all"
    # a copied .env.example spells out the defaults: the large profile still applies in full
    example = Settings(_env_file=PROJECT_ROOT / ".env.example")  # type: ignore[call-arg]
    assert RetrievalProfiles.from_settings(example).large == default
