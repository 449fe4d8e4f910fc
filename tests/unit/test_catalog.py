"""CorpusCatalog: which collections hold points and which authors are indexed, reused for the TTL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from rag_gateway.rag.retrieval import catalog as catalog_module
from rag_gateway.rag.retrieval.catalog import CorpusCatalog, normalise_name

WANTED = ("posts", "articles", "repositories")


class FakeStore:
    """What the catalog calls on the vector store, counted."""

    def __init__(self, collections: set[str], authors: dict[str, set[str]]) -> None:
        self.present = collections
        self.by_collection = authors
        self.points = dict.fromkeys(collections, 10)
        self.collection_calls = 0
        self.author_calls: list[tuple[str, ...]] = []

    async def existing_collections(self) -> set[str]:
        self.collection_calls += 1
        await asyncio.sleep(0)  # yield, as a network call would
        return set(self.present)

    async def count(self, collection: str) -> int:
        return self.points.get(collection, 0)

    async def authors(self, collections: Sequence[str]) -> set[str]:
        self.author_calls.append(tuple(collections))
        await asyncio.sleep(0)
        return {name for c in collections for name in self.by_collection.get(c, set())}


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    # only the catalog's view of `time`; the event loop keeps the real clock
    monkeypatch.setattr(catalog_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(
        {"posts", "articles", "unrelated"},
        {"posts": {"Jane Doe", "Ada Lovelace"}, "articles": {"José Núñez"}, "unrelated": {"Not Wanted"}},
    )


def make(store: FakeStore, ttl_s: float = 60.0) -> CorpusCatalog:
    fake: Any = store  # duck-typed stand-in for VectorStore
    return CorpusCatalog(fake, WANTED, ttl_s)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Jane Doe", "jane doe"), ("  JANE \t  doe\n", "jane doe"), ("Straße", "strasse"), ("", "")],
)
def test_normalise_name(raw: str, normalised: str) -> None:
    assert normalise_name(raw) == normalised


@pytest.mark.parametrize("asked", ["Jane Doe", "jane doe", "  JANE   DOE ", "jane\tdoe"])
async def test_author_resolves_to_the_stored_spelling(asked: str, store: FakeStore, clock: FakeClock) -> None:
    assert await make(store).resolve_author(asked) == "Jane Doe"


async def test_non_ascii_author(store: FakeStore, clock: FakeClock) -> None:
    assert await make(store).resolve_author("josé NÚÑEZ") == "José Núñez"


@pytest.mark.parametrize("asked", ["John Smith", "Jane", "Not Wanted"])
async def test_unknown_author_is_none(asked: str, store: FakeStore, clock: FakeClock) -> None:
    # "Not Wanted" is only in a collection the gateway is not configured to search
    assert await make(store).resolve_author(asked) is None


@pytest.mark.parametrize("asked", [None, ""])
async def test_no_name_is_none_without_asking_the_store(
    asked: str | None, store: FakeStore, clock: FakeClock
) -> None:
    assert await make(store).resolve_author(asked) is None
    assert store.collection_calls == 0


async def test_collections_are_the_configured_ones_that_exist_in_order(
    store: FakeStore, clock: FakeClock
) -> None:
    catalog = make(store)
    assert await catalog.collections() == ("posts", "articles")
    assert store.author_calls == [("posts", "articles")]


async def test_an_empty_collection_is_not_searched_until_it_holds_points(
    store: FakeStore, clock: FakeClock
) -> None:
    store.points["posts"] = 0
    catalog = make(store, ttl_s=60.0)
    assert await catalog.collections() == ("articles",)
    assert await catalog.resolve_author("jane doe") is None  # its authors are not offered either
    store.points["posts"] = 3
    clock.now += 60.0
    assert await catalog.collections() == ("posts", "articles")
    assert await catalog.resolve_author("jane doe") == "Jane Doe"


async def test_no_collections_means_no_authors_lookup(clock: FakeClock) -> None:
    store = FakeStore({"unrelated"}, {"unrelated": {"Jane Doe"}})
    catalog = make(store)
    assert await catalog.collections() == ()
    assert await catalog.resolve_author("Jane Doe") is None
    assert store.author_calls == []


async def test_results_are_reused_within_the_ttl(store: FakeStore, clock: FakeClock) -> None:
    catalog = make(store, ttl_s=60.0)
    assert await catalog.resolve_author("jane doe") == "Jane Doe"
    store.by_collection["posts"].add("New Author")
    clock.now += 59.9
    assert await catalog.resolve_author("ada lovelace") == "Ada Lovelace"
    assert await catalog.resolve_author("new author") is None  # still the cached view
    assert await catalog.collections() == ("posts", "articles")
    assert store.collection_calls == 1
    assert len(store.author_calls) == 1


async def test_reloaded_after_the_ttl(store: FakeStore, clock: FakeClock) -> None:
    catalog = make(store, ttl_s=60.0)
    assert await catalog.resolve_author("new author") is None
    store.by_collection["posts"].add("New Author")
    store.present.add("repositories")
    store.points["repositories"] = 1
    store.by_collection["repositories"] = {"Repo Owner"}
    clock.now += 60.0
    assert await catalog.resolve_author("NEW AUTHOR") == "New Author"
    assert await catalog.collections() == ("posts", "articles", "repositories")
    assert await catalog.resolve_author("repo owner") == "Repo Owner"
    assert store.collection_calls == 2


async def test_author_removed_from_the_store_disappears_after_the_ttl(
    store: FakeStore, clock: FakeClock
) -> None:
    catalog = make(store, ttl_s=10.0)
    assert await catalog.resolve_author("jane doe") == "Jane Doe"
    store.by_collection["posts"].discard("Jane Doe")
    clock.now += 10.0
    assert await catalog.resolve_author("jane doe") is None


async def test_force_refresh_ignores_the_ttl(store: FakeStore, clock: FakeClock) -> None:
    catalog = make(store, ttl_s=3600.0)
    await catalog.refresh()
    store.by_collection["posts"].add("New Author")
    await catalog.refresh()
    assert store.collection_calls == 1
    await catalog.refresh(force=True)
    assert store.collection_calls == 2
    assert await catalog.resolve_author("new author") == "New Author"


async def test_concurrent_callers_share_one_refresh(store: FakeStore, clock: FakeClock) -> None:
    catalog = make(store)
    results = await asyncio.gather(*(catalog.resolve_author("jane doe") for _ in range(10)))
    assert results == ["Jane Doe"] * 10
    assert store.collection_calls == 1
    assert len(store.author_calls) == 1
