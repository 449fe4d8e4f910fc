"""The vector-store contract: what the gateway and ingestion rely on, held by both backends.

Every test taking ``backend`` runs once on the embedded engine (`EdgeStore`) and once on a Qdrant server
(`ServerStore` against the REST emulator). The data are deterministic unit vectors and BM25 vectors of
generated texts; the expected rankings are computed here by brute force (dot products in numpy, BM25 with
Qdrant's IDF over the collection), so a backend that drops, duplicates or misorders a hit fails. A few
clauses only concern the embedded folder (its lock, the old local-mode layout).
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as edge
from qdrant_client import QdrantClient, models

from rag_gateway.config import COLLECTIONS
from rag_gateway.errors import GatewayError, UpstreamBadResponseError
from rag_gateway.rag.retrieval.schema import IndexSchema
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores import (
    AUTHOR_ID_KEY,
    AUTHOR_NAME_KEY,
    Hit,
    StoredPoint,
    StoreUnavailableError,
    Vector,
    VectorStore,
)
from rag_gateway.rag.retrieval.stores.base import SearchVector, SparseVector
from rag_gateway.rag.retrieval.stores.edge import EdgeStore
from tests.contract.conftest import Backend, EmbeddedBackend, ServerBackend

DIM = 384
SCHEMA = IndexSchema(dim=DIM)
SEED = 20_240_611
POSTS, ARTICLES, REPOSITORIES = COLLECTIONS
AUTHORS = ("Ada Quill", "Ben Marsh", "Zoë Ångström", "Dmitri Oyelaran")
#: 200 points in all; the collections hold fewer and fewer of the authors, so facets differ per collection.
SIZES = {POSTS: 120, ARTICLES: 50, REPOSITORIES: 30}
AUTHORS_IN = {POSTS: AUTHORS, ARTICLES: AUTHORS[:3], REPOSITORIES: AUTHORS[:2]}
#: Only in POSTS: the author whose points get reassigned.
LEAVING = AUTHORS[3]
UNKNOWN_AUTHORS = ("Nobody Atall", "ada quill", "Ada")  # the filter is an exact keyword match
MISSING = "no_such_collection"
UPSERT_BATCH = 64
#: The words of the generated chunk texts (BM25 stems them; these keep distinct stems).
WORDS = [
    "qdrant",
    "vector",
    "engine",
    "python",
    "rust",
    "gateway",
    "cluster",
    "shard",
    "author",
    "article",
    "repository",
    "embedding",
    "kernel",
    "compiler",
    "database",
    "network",
    "protocol",
    "latency",
    "throughput",
    "benchmark",
    "encryption",
    "scheduler",
    "container",
    "pipeline",
    "tokenizer",
    "transformer",
    "gradient",
    "optimizer",
    "telemetry",
    "dashboard",
    "firmware",
    "bandwidth",
    "cache",
    "thread",
    "socket",
    "parser",
    "lexicon",
    "matrix",
    "tensor",
    "graph",
]
#: Every tenth chunk is stopwords only: no BM25 vector, so never a BM25 hit.
STOPWORDS_ONLY = "the and of a to in"
ENCODER = SparseEncoder(SCHEMA.bm25)


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.standard_normal((n, DIM))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def chunk_text(rng: np.random.Generator, i: int) -> str:
    if i % 10 == 9:
        return STOPWORDS_ONLY
    return " ".join(rng.choice(WORDS, size=int(rng.integers(4, 40))))


def make_dataset() -> dict[str, list[StoredPoint]]:
    """Deterministic points: unit vectors, BM25 vectors of their texts (as ingest computes them), a few
    authors, payloads with nulls, lists and nesting."""
    rng = np.random.default_rng(SEED)
    words = np.random.default_rng(SEED + 10)
    data: dict[str, list[StoredPoint]] = {}
    for collection in COLLECTIONS:
        authors = AUTHORS_IN[collection]
        vectors = unit_rows(rng, SIZES[collection])
        texts = [chunk_text(words, i) for i in range(SIZES[collection])]
        data[collection] = [
            StoredPoint(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"contract/{collection}/{i}")),
                vector=vectors[i],
                payload={
                    AUTHOR_NAME_KEY: authors[i % len(authors)],
                    AUTHOR_ID_KEY: f"author-{AUTHORS.index(authors[i % len(authors)])}",
                    "content": texts[i],
                    "chunk_index": i,
                    "title": None if i % 4 == 0 else f"Title {i}",
                    "meta": {"tags": ["x", "y"][: i % 3], "ratio": i / 7},
                },
                sparse=ENCODER.document(texts[i]),
            )
            for i in range(SIZES[collection])
        ]
    return data


DATA = make_dataset()
#: One stored point per collection whose vector is also a query: its exact match.
PROBES = {POSTS: DATA[POSTS][7], ARTICLES: DATA[ARTICLES][3], REPOSITORIES: DATA[REPOSITORIES][11]}
QUERIES: list[Vector] = [np.asarray(PROBES[c].vector) for c in COLLECTIONS] + list(
    unit_rows(np.random.default_rng(SEED + 1), 1)
)
#: BM25 queries: common words, rarer combinations, one word, and a word no chunk has.
BM25_QUERIES = [
    ENCODER.query(text) for text in ("qdrant vector", "compiler latency benchmark", "tensor", "zebra")
]


# --- expectations ------------------------------------------------------------------------------------------


def ranked(
    points: Sequence[StoredPoint], query: Vector, author: str | None = None
) -> list[tuple[StoredPoint, float]]:
    """Every point (of ``author``), best first, by exact dot product."""
    kept = [p for p in points if author is None or p.payload[AUTHOR_NAME_KEY] == author]
    if not kept:
        return []
    scores = np.stack([np.asarray(p.vector, dtype=np.float32) for p in kept]) @ query
    return [(kept[i], float(scores[i])) for i in np.argsort(-scores, kind="stable")]


def hit_lists(result: Mapping[str, list[list[Hit]] | GatewayError], collection: str) -> list[list[Hit]]:
    found = result[collection]
    assert isinstance(found, list), f"{collection} failed: {found!r}"
    return found


def assert_ranked(
    hits: Sequence[Sequence[Hit]],
    collection: str,
    author: str | None,
    limit: int,
    points: Sequence[StoredPoint] | None = None,
) -> None:
    """A hit list per query, each the exact top ``limit`` of ``points`` (by default the collection's data),
    carrying the stored payload."""
    points = DATA[collection] if points is None else points
    assert len(hits) == len(QUERIES)
    for query, per_query in zip(QUERIES, hits, strict=True):
        expected = ranked(points, query, author)[:limit]
        assert [h.id for h in per_query] == [p.id for p, _ in expected]
        scores = [h.score for h in per_query]
        assert scores == sorted(scores, reverse=True)
        assert scores == pytest.approx([s for _, s in expected], abs=1e-5)
        for hit, (point, _) in zip(per_query, expected, strict=True):
            assert hit.collection == collection
            assert isinstance(hit.score, float)
            assert dict(hit.payload) == point.payload


def moved_to(points: Sequence[StoredPoint], author: str) -> list[StoredPoint]:
    return [
        StoredPoint(
            p.id, p.vector, p.payload | {AUTHOR_NAME_KEY: author, AUTHOR_ID_KEY: "author-moved"}, p.sparse
        )
        for p in points
    ]


def bm25_scores(
    points: Sequence[StoredPoint], query: SparseVector, author: str | None = None
) -> dict[str, float]:
    """Qdrant's BM25 with the IDF modifier: sum over shared terms of query weight x IDF x document weight,
    IDF = ln((N - df + 0.5) / (df + 0.5) + 1) over the collection's points that have a BM25 vector (the
    author filter narrows the hits, not the IDF)."""
    corpus = [p for p in points if p.sparse is not None and p.sparse.indices]
    df = Counter(term for p in corpus for term in set(p.sparse.indices))  # type: ignore[union-attr]
    n = len(corpus)
    weights = {
        term: value * math.log((n - df[term] + 0.5) / (df[term] + 0.5) + 1)
        for term, value in zip(query.indices, query.values, strict=True)
    }
    scores = {}
    for p in corpus:
        if author is not None and p.payload[AUTHOR_NAME_KEY] != author:
            continue
        assert p.sparse is not None
        document = dict(zip(p.sparse.indices, p.sparse.values, strict=True))
        shared = weights.keys() & document.keys()
        if shared:
            scores[p.id] = sum(weights[term] * document[term] for term in shared)
    return scores


def assert_bm25_ranked(
    hits: Sequence[Hit], collection: str, query: SparseVector, author: str | None, limit: int
) -> None:
    """The top ``limit`` BM25 scores, each hit scored as computed here; among equal scores any order."""
    expected = bm25_scores(DATA[collection], query, author)
    best = sorted(expected.values(), reverse=True)[:limit]
    assert [h.score for h in hits] == pytest.approx(best, rel=1e-5, abs=1e-5)
    assert len({h.id for h in hits}) == len(hits)
    stored = {p.id: p for p in DATA[collection]}
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.id], rel=1e-5, abs=1e-5)
        assert hit.collection == collection
        assert dict(hit.payload) == stored[hit.id].payload


# --- fixtures ------------------------------------------------------------------------------------------------


async def seed(store: VectorStore) -> None:
    """What an ingest does: the collections, the points in batches, then the index."""
    await store.ensure_collections(SCHEMA, COLLECTIONS)
    for collection, points in DATA.items():
        for start in range(0, len(points), UPSERT_BATCH):
            await store.upsert(collection, points[start : start + UPSERT_BATCH])
        await store.build_index(collection)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[VectorStore]:
    opened = backend.open()
    yield opened
    await opened.close()


@pytest.fixture
async def seeded(store: VectorStore) -> VectorStore:
    await seed(store)
    return store


# --- schema --------------------------------------------------------------------------------------------------


async def test_ensure_collections_creates_what_is_missing_and_keeps_what_exists(store: VectorStore) -> None:
    assert await store.existing_collections() == set()
    await store.ensure_collections(SCHEMA, COLLECTIONS[:1])
    assert await store.existing_collections() == {POSTS}
    await store.upsert(POSTS, DATA[POSTS][:10])

    await store.ensure_collections(SCHEMA, COLLECTIONS)
    assert await store.existing_collections() == set(COLLECTIONS)
    await store.ensure_collections(SCHEMA, COLLECTIONS)  # idempotent
    assert await store.existing_collections() == set(COLLECTIONS)
    assert [await store.count(c) for c in COLLECTIONS] == [10, 0, 0]
    assert await store.authors(COLLECTIONS) == set(AUTHORS_IN[POSTS])

    # new, empty collections answer with nothing rather than failing
    result = await store.search_collections(COLLECTIONS[1:], QUERIES, None, 5)
    assert {c: hit_lists(result, c) for c in COLLECTIONS[1:]} == {
        c: [[]] * len(QUERIES) for c in COLLECTIONS[1:]
    }
    assert await store.authors(COLLECTIONS[1:]) == set()


# --- writes --------------------------------------------------------------------------------------------------


async def test_upsert_then_count(seeded: VectorStore) -> None:
    assert await seeded.existing_collections() == set(COLLECTIONS)
    assert {c: await seeded.count(c) for c in COLLECTIONS} == SIZES


async def test_upserting_again_adds_nothing_and_a_new_payload_replaces_the_old(seeded: VectorStore) -> None:
    await seeded.upsert(POSTS, DATA[POSTS])
    assert await seeded.count(POSTS) == SIZES[POSTS]
    assert_ranked(
        hit_lists(await seeded.search_collections([POSTS], QUERIES, None, 10), POSTS), POSTS, None, 10
    )

    # replaced, not merged: keys the new payload lacks are gone
    old = DATA[ARTICLES][:5]
    new = [
        StoredPoint(p.id, p.vector, {AUTHOR_NAME_KEY: AUTHORS[1], "content": "rewritten", "rev": 2})
        for p in old
    ]
    await seeded.upsert(ARTICLES, new)
    assert await seeded.count(ARTICLES) == SIZES[ARTICLES]
    result = await seeded.search_collections([ARTICLES], [np.asarray(p.vector) for p in old], None, 1)
    assert [[(h.id, dict(h.payload)) for h in hits] for hits in hit_lists(result, ARTICLES)] == [
        [(p.id, p.payload)] for p in new
    ]
    # a new vector replaces the old one too
    point = DATA[ARTICLES][20]
    fresh = unit_rows(np.random.default_rng(SEED + 2), 1)[0]
    await seeded.upsert(ARTICLES, [StoredPoint(point.id, fresh, point.payload)])
    result = await seeded.search_collections([ARTICLES], [fresh, np.asarray(point.vector)], None, 1)
    by_new, by_old = hit_lists(result, ARTICLES)
    assert by_new[0].id == point.id and by_new[0].score == pytest.approx(1.0, abs=1e-5)
    assert by_old[0].score < 0.5  # nothing is at the old place any more
    assert await seeded.count(ARTICLES) == SIZES[ARTICLES]


async def test_existing_ids(seeded: VectorStore) -> None:
    stored = [p.id for p in DATA[POSTS][::9]]
    unknown = str(uuid.uuid4())
    elsewhere = DATA[ARTICLES][0].id  # stored, but in another collection
    assert await seeded.existing_ids(POSTS, [*stored, unknown, elsewhere, stored[0]]) == set(stored)
    assert await seeded.existing_ids(POSTS, [unknown]) == set()
    assert await seeded.existing_ids(POSTS, []) == set()


# --- reads ---------------------------------------------------------------------------------------------------


async def test_batched_search_gives_a_ranked_hit_list_per_query_and_collection(seeded: VectorStore) -> None:
    result = await seeded.search_collections(COLLECTIONS, QUERIES, None, 5)
    assert set(result) == set(COLLECTIONS)
    for index, collection in enumerate(COLLECTIONS):
        hits = hit_lists(result, collection)
        assert_ranked(hits, collection, None, 5)
        exact = hits[index][0]  # the query that is this collection's probe finds the probe first
        assert exact.id == PROBES[collection].id
        assert exact.score == pytest.approx(1.0, abs=1e-5)
        assert all(h.score < 0.5 for h in hits[index][1:])


@pytest.mark.parametrize("limit", [1, 7, 64])
async def test_search_honours_the_limit(seeded: VectorStore, limit: int) -> None:
    result = await seeded.search_collections(COLLECTIONS, QUERIES, None, limit)
    for collection in COLLECTIONS:
        hits = hit_lists(result, collection)
        assert [len(h) for h in hits] == [min(limit, SIZES[collection])] * len(QUERIES)
        assert_ranked(hits, collection, None, limit)


async def test_dense_scores_are_the_exact_dot_products_with_the_stored_vectors(seeded: VectorStore) -> None:
    """The embedding reranker's scores: every listed point of every collection, exact (never the
    quantized copies), whatever its rank; ids that are not stored in that collection are left out."""
    query = QUERIES[-1]
    wanted = {c: [p.id for p in DATA[c][::3]] for c in COLLECTIONS}
    unknown = str(uuid.uuid4())
    elsewhere = DATA[ARTICLES][1].id  # stored, but not in posts
    scores = await seeded.dense_scores(query, {**wanted, POSTS: [*wanted[POSTS], unknown, elsewhere]})
    expected = {
        p.id: float(np.asarray(p.vector, dtype=np.float32) @ query) for c in COLLECTIONS for p in DATA[c][::3]
    }
    assert set(scores) == set(expected)
    for pid, score in expected.items():
        assert scores[pid] == pytest.approx(score, abs=1e-5)
    assert await seeded.dense_scores(query, {}) == {}
    assert await seeded.dense_scores(query, {POSTS: []}) == {}


async def test_the_author_filter_keeps_only_that_authors_points(seeded: VectorStore) -> None:
    for author in AUTHORS:
        result = await seeded.search_collections(COLLECTIONS, QUERIES, author, 10)
        for collection in COLLECTIONS:
            hits = hit_lists(result, collection)
            assert all(h.payload[AUTHOR_NAME_KEY] == author for per_query in hits for h in per_query)
            if author not in AUTHORS_IN[collection]:
                assert hits == [[]] * len(QUERIES)
            assert_ranked(hits, collection, author, 10)
    for author in UNKNOWN_AUTHORS:
        result = await seeded.search_collections(COLLECTIONS, QUERIES, author, 10)
        assert {c: hit_lists(result, c) for c in COLLECTIONS} == {c: [[]] * len(QUERIES) for c in COLLECTIONS}


async def test_authors_is_the_set_of_author_names(seeded: VectorStore) -> None:
    assert await seeded.authors(COLLECTIONS) == set(AUTHORS)
    for collection in COLLECTIONS:
        assert await seeded.authors([collection]) == set(AUTHORS_IN[collection])
    assert await seeded.authors([ARTICLES, REPOSITORIES]) == set(AUTHORS[:3])
    assert await seeded.authors([]) == set()


async def test_an_author_whose_points_all_changed_hands_leaves_the_authors(seeded: VectorStore) -> None:
    leaving = [p for p in DATA[POSTS] if p.payload[AUTHOR_NAME_KEY] == LEAVING]
    assert leaving
    moved = moved_to(leaving, AUTHORS[0])
    await seeded.upsert(POSTS, moved)

    assert await seeded.count(POSTS) == SIZES[POSTS]
    assert await seeded.authors(COLLECTIONS) == set(AUTHORS) - {LEAVING}
    assert await seeded.authors([POSTS]) == set(AUTHORS) - {LEAVING}
    result = await seeded.search_collections([POSTS], QUERIES, LEAVING, 10)
    assert hit_lists(result, POSTS) == [[]] * len(QUERIES)
    now = {p.id: p for p in DATA[POSTS]} | {p.id: p for p in moved}
    result = await seeded.search_collections([POSTS], QUERIES, AUTHORS[0], 10)
    assert_ranked(hit_lists(result, POSTS), POSTS, AUTHORS[0], 10, points=list(now.values()))


async def test_a_missing_collection_maps_to_its_error_while_the_others_answer(seeded: VectorStore) -> None:
    for author in (None, AUTHORS[0]):
        result = await seeded.search_collections([POSTS, MISSING, ARTICLES], QUERIES, author, 3)
        assert set(result) == {POSTS, MISSING, ARTICLES}
        error = result[MISSING]
        assert isinstance(error, UpstreamBadResponseError)  # a GatewayError: the API renders it as a 502
        assert not error.retryable
        assert_ranked(hit_lists(result, POSTS), POSTS, author, 3)
        assert_ranked(hit_lists(result, ARTICLES), ARTICLES, author, 3)

    # the other calls raise it
    with pytest.raises(UpstreamBadResponseError):
        await seeded.count(MISSING)
    with pytest.raises(UpstreamBadResponseError):
        await seeded.existing_ids(MISSING, [DATA[POSTS][0].id])
    with pytest.raises(UpstreamBadResponseError):
        await seeded.authors([POSTS, MISSING])
    with pytest.raises(UpstreamBadResponseError):
        await seeded.upsert(MISSING, DATA[POSTS][:1])
    assert await seeded.existing_collections() == set(COLLECTIONS)  # a failed write creates nothing


async def test_bm25_queries_rank_by_bm25_and_mix_with_dense_ones_in_one_batch(seeded: VectorStore) -> None:
    for author in (None, AUTHORS[1]):
        queries: list[SearchVector] = [*BM25_QUERIES, QUERIES[0]]
        result = await seeded.search_collections(COLLECTIONS, queries, author, 8)
        for collection in COLLECTIONS:
            *bm25_hits, dense_hits = hit_lists(result, collection)
            for query, hits in zip(BM25_QUERIES, bm25_hits, strict=True):
                assert_bm25_ranked(hits, collection, query, author, 8)
                assert all(h.payload["content"] != STOPWORDS_ONLY for h in hits)
            assert bm25_hits[0] and not bm25_hits[-1]  # common words are found; a word no chunk has is not
            expected = ranked(DATA[collection], QUERIES[0], author)[:8]
            assert [h.id for h in dense_hits] == [p.id for p, _ in expected]


# --- schema ----------------------------------------------------------------------------------------------------


async def test_collections_of_another_schema_are_refused(store: VectorStore) -> None:
    await store.check_schema(SCHEMA)  # nothing built yet: nothing to refuse
    await store.ensure_collections(SCHEMA, COLLECTIONS[:1])
    await store.check_schema(SCHEMA)
    for other, key in (
        (IndexSchema(dim=DIM, dense_text="title+content"), "dense_text"),
        (IndexSchema(dim=8), "dim"),
    ):
        with pytest.raises(StoreUnavailableError, match=key) as refused:
            await store.check_schema(other)
        assert "Nothing was changed" in str(refused.value)
        with pytest.raises(StoreUnavailableError, match=key):
            await store.ensure_collections(other, COLLECTIONS)
    assert await store.existing_collections() == {POSTS}  # the refused ensure created nothing
    await store.ensure_collections(SCHEMA, COLLECTIONS)
    assert await store.existing_collections() == set(COLLECTIONS)


# --- restarts ------------------------------------------------------------------------------------------------


async def test_data_and_author_index_survive_a_restart(restartable_backend: Backend) -> None:
    backend = restartable_backend
    store = backend.open()
    try:
        await seed(store)
    finally:
        await store.close()
    backend.restart()
    store = backend.open()
    try:
        assert await store.existing_collections() == set(COLLECTIONS)
        assert {c: await store.count(c) for c in COLLECTIONS} == SIZES
        assert await store.authors(COLLECTIONS) == set(AUTHORS)
        await store.check_schema(SCHEMA)  # the recorded schema survived too
        with pytest.raises(StoreUnavailableError):
            await store.check_schema(IndexSchema(dim=DIM, sparse_text="content"))
        for author in (None, AUTHORS[2]):
            result = await store.search_collections(COLLECTIONS, QUERIES, author, 5)
            for collection in COLLECTIONS:
                assert_ranked(hit_lists(result, collection), collection, author, 5)
            result = await store.search_collections(COLLECTIONS, BM25_QUERIES, author, 5)
            for collection in COLLECTIONS:
                for query, hits in zip(BM25_QUERIES, hit_lists(result, collection), strict=True):
                    assert_bm25_ranked(hits, collection, query, author, 5)
        # and it still takes writes
        extra = StoredPoint(
            str(uuid.uuid4()), unit_rows(np.random.default_rng(SEED + 3), 1)[0], {AUTHOR_NAME_KEY: "New One"}
        )
        await store.upsert(REPOSITORIES, [extra])
        assert await store.count(REPOSITORIES) == SIZES[REPOSITORIES] + 1
        assert await store.authors([REPOSITORIES]) == {*AUTHORS_IN[REPOSITORIES], "New One"}
    finally:
        await store.close()


# --- the two backends agree ----------------------------------------------------------------------------------


def above_the_last(hits: Sequence[Hit]) -> dict[str, float]:
    """The hits scored clearly above the last one (which any point tied with it could replace)."""
    return {h.id: h.score for h in hits if h.score > hits[-1].score + 1e-4}


def comparable(hits: Sequence[Sequence[Hit]]) -> list[list[tuple[str, str, dict[str, Any]]]]:
    return [[(h.id, h.collection, dict(h.payload)) for h in per_query] for per_query in hits]


async def test_both_backends_answer_alike(
    embedded_backend: EmbeddedBackend, server_backend: ServerBackend
) -> None:
    embedded, server = embedded_backend.open(), server_backend.open()
    try:
        await seed(embedded)
        await seed(server)
        assert await embedded.existing_collections() == await server.existing_collections()
        for collection in COLLECTIONS:
            assert await embedded.count(collection) == await server.count(collection)
            ids = [p.id for p in DATA[collection][::5]] + [str(uuid.uuid4())]
            assert await embedded.existing_ids(collection, ids) == await server.existing_ids(collection, ids)
        assert await embedded.authors(COLLECTIONS) == await server.authors(COLLECTIONS)

        queries: list[SearchVector] = [*QUERIES, *BM25_QUERIES]
        dense = len(QUERIES)
        for author in (None, *AUTHORS, UNKNOWN_AUTHORS[0]):
            for limit in (1, 10):
                mine = await embedded.search_collections([*COLLECTIONS, MISSING], queries, author, limit)
                theirs = await server.search_collections([*COLLECTIONS, MISSING], queries, author, limit)
                assert type(mine[MISSING]) is type(theirs[MISSING])
                for collection in COLLECTIONS:
                    a, b = hit_lists(mine, collection), hit_lists(theirs, collection)
                    # dense scores never tie here: the same points in the same order
                    assert comparable(a[:dense]) == comparable(b[:dense])
                    # BM25 scores do tie (same words, same length): which of the points tied at the limit
                    # are kept, and in what order, is each engine's own; the scores are the same
                    for x, y in zip(a[dense:], b[dense:], strict=True):
                        assert [h.score for h in x] == pytest.approx([h.score for h in y], rel=1e-5, abs=1e-5)
                        assert above_the_last(x) == pytest.approx(above_the_last(y), rel=1e-5, abs=1e-5)
                    assert [h.score for q in a for h in q] == pytest.approx(
                        [h.score for q in b for h in q], rel=1e-5, abs=1e-5
                    )
                    for x, y in zip(a[:dense], b[:dense], strict=True):
                        for hx, hy in zip(x, y, strict=True):
                            assert hx.payload == hy.payload
    finally:
        await embedded.close()
        await server.close()


# --- the embedded folder -------------------------------------------------------------------------------------


async def test_edge_keeps_a_vanished_author_at_count_zero_which_authors_leaves_out(
    embedded_backend: EmbeddedBackend,
) -> None:
    """Why `EdgeStore.authors` filters counts: the engine's facet still lists a value no point has."""
    store = embedded_backend.open()
    assert isinstance(store, EdgeStore)
    try:
        await seed(store)
        leaving = [p for p in DATA[POSTS] if p.payload[AUTHOR_NAME_KEY] == LEAVING]
        await store.upsert(POSTS, moved_to(leaving, AUTHORS[0]))
        request = edge.FacetRequest(key=AUTHOR_NAME_KEY, limit=100, exact=True)
        raw = {str(hit.value): hit.count for hit in store._shards[POSTS].facet(request).hits}
        assert raw[LEAVING] == 0
        assert LEAVING not in await store.authors([POSTS])
    finally:
        await store.close()


async def test_a_second_store_on_an_open_folder_is_refused_until_the_first_closes(
    embedded_backend: EmbeddedBackend,
) -> None:
    first = embedded_backend.open()
    try:
        await seed(first)
        with pytest.raises(StoreUnavailableError) as refused:
            embedded_backend.open()
        message = str(refused.value)
        assert "in use by another process" in message
        assert str(embedded_backend.folder) in message
        assert await first.count(POSTS) == SIZES[POSTS]  # the refused open left the first alone
        result = await first.search_collections([POSTS], QUERIES, None, 3)
        assert_ranked(hit_lists(result, POSTS), POSTS, None, 3)
    finally:
        await first.close()
    second = embedded_backend.open()
    try:
        assert {c: await second.count(c) for c in COLLECTIONS} == SIZES
        assert await second.authors(COLLECTIONS) == set(AUTHORS)
    finally:
        await second.close()


async def test_a_second_store_on_a_folder_without_collections_is_told_the_folder_is_in_use(
    embedded_backend: EmbeddedBackend,
) -> None:
    first = embedded_backend.open()
    second: VectorStore | None = None
    try:
        with pytest.raises(StoreUnavailableError) as refused:
            second = embedded_backend.open()
            await first.ensure_collections(SCHEMA, COLLECTIONS)
            await second.ensure_collections(SCHEMA, COLLECTIONS)
        assert "in use by another process" in str(refused.value)
    finally:
        await first.close()
        if second is not None:
            await second.close()


async def test_a_folder_reopened_with_another_search_pool_answers_the_same_and_records_it(
    embedded_backend: EmbeddedBackend,
) -> None:
    """EDGE_SEARCH_THREADS is a load-time setting: no rebuild, same answers, kept in each shard's config."""
    store = embedded_backend.open()
    try:
        await seed(store)
        before = await store.search_collections(COLLECTIONS, QUERIES, None, 5)
    finally:
        await store.close()
    reopened = EdgeStore(embedded_backend.settings.model_copy(update={"edge_search_threads": 3}))
    try:
        after = await reopened.search_collections(COLLECTIONS, QUERIES, None, 5)
    finally:
        await reopened.close()
    for name in COLLECTIONS:
        assert [[h.id for h in q] for q in hit_lists(after, name)] == [
            [h.id for h in q] for q in hit_lists(before, name)
        ]
        recorded = json.loads((embedded_backend.folder / name / "edge_config.json").read_text())
        assert recorded["max_search_threads"] == 3


def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_local_mode_folder_is_refused_with_the_migration_command(embedded_backend: EmbeddedBackend) -> None:
    folder = embedded_backend.folder
    client = QdrantClient(path=str(folder))
    try:
        client.create_collection(
            POSTS, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
        )
        point = DATA[POSTS][0]
        client.upsert(
            POSTS,
            [models.PointStruct(id=point.id, vector=list(map(float, point.vector)), payload=point.payload)],
        )
    finally:
        client.close()
    before = tree(folder)

    with pytest.raises(StoreUnavailableError) as refused:
        embedded_backend.open()
    message = str(refused.value)
    assert f"rag-gateway migrate-store {folder} NEW_FOLDER" in message
    assert tree(folder) == before  # nothing written, not even the layout file


async def test_a_sample_of_bm25_terms_is_the_stored_points_term_ids(seeded: VectorStore) -> None:
    """What common-term estimates read: each sampled point's BM25 term ids as ingest wrote them (none for a
    chunk without terms), at most ``limit`` points, all of them when the collection is smaller."""
    stored = {tuple(sorted(p.sparse.indices if p.sparse else ())) for p in DATA[ARTICLES]}
    everything = await seeded.sample_sparse_terms(ARTICLES, SIZES[ARTICLES] + 10)
    assert len(everything) == SIZES[ARTICLES] and {tuple(sorted(ids)) for ids in everything} == stored
    some = await seeded.sample_sparse_terms(ARTICLES, 5)
    assert len(some) == 5 and {tuple(sorted(ids)) for ids in some} <= stored
