"""The Qdrant REST emulator, driven by the real ``AsyncQdrantClient`` through ``ServerStore`` and ingest.

Results over REST are compared with the embedded store (``EdgeStore``, the product's default) fed the same
points: the same hits in the same order, with the same payloads, and scores equal to float32
precision (two engines compute them). Faults check what each upstream misbehaviour becomes once
``ServerStore`` has translated it into the gateway's error vocabulary. The store contract itself, held by
both backends, is ``tests/contract``.
"""

from __future__ import annotations

import importlib.metadata
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import pytest_asyncio
import qdrant_edge as edge
from pydantic import ValidationError
from qdrant_client import AsyncQdrantClient, QdrantClient, models
from qdrant_client.common.version_check import get_server_version, is_compatible
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.errors import (
    GatewayError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from rag_gateway.ingest import IngestError, ingest_paths
from rag_gateway.rag.retrieval.schema import IndexSchema
from rag_gateway.rag.retrieval.stores import (
    AUTHOR_ID_KEY,
    AUTHOR_NAME_KEY,
    Hit,
    StoredPoint,
    Vector,
    VectorStore,
    open_vector_store,
)
from rag_gateway.rag.retrieval.stores.base import DENSE_VECTOR, SPARSE_VECTOR
from rag_gateway.rag.retrieval.stores.edge import EdgeStore
from rag_gateway.rag.retrieval.stores.server import SCHEMA_KEY, ServerStore
from rag_gateway_emulators.faults import Fault, FaultPlan
from rag_gateway_emulators.qdrant_emulator import (
    QDRANT_TARGETS,
    QdrantEmulatorThread,
    RunningQdrantEmulator,
    running_qdrant_emulator,
)
from tests.corpus import write_corpus

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = PROJECT_ROOT / "models" / "all-MiniLM-L6-v2"
DIM = 16
SCHEMA = IndexSchema(dim=DIM)
AUTHORS = ("Ada Quill", "Ben Marsh")
API_KEY = "emulator-key-0123"
READ_ONLY_KEY = "emulator-read-only-key"
#: AsyncQdrantClient checks the server version from a background thread; when a test's emulator is gone
#: before that thread connects, it warns (harmless, and not about the code under test).
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")
INSECURE = pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection:UserWarning")


def remote_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_url": url,
        "qdrant_api_key": None,
        "qdrant_timeout_s": 1,
        "embedding_tokenizer_dir": MODEL_DIR,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def edge_settings(path: Path) -> Settings:
    """The embedded store (the default) in ``path``."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, qdrant_url=None, qdrant_path=path, embedding_tokenizer_dir=MODEL_DIR
    )


def make_points(collection: str, n: int) -> list[StoredPoint]:
    """Deterministic points: random unit vectors, two authors, payloads with nulls, lists and nesting."""
    rng = np.random.default_rng(sum(collection.encode()) * 7919 + n)
    points = []
    for i in range(n):
        vector = rng.standard_normal(DIM)
        points.append(
            StoredPoint(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{collection}/{i}")),
                vector=(vector / np.linalg.norm(vector)).astype(np.float32),
                payload={
                    AUTHOR_NAME_KEY: AUTHORS[i % 2],
                    AUTHOR_ID_KEY: f"author-{i % 2}",
                    "content": f"chunk {i} of {collection}",
                    "title": None if i % 3 == 0 else f"Title {i}",
                    "chunk_index": i,
                    "meta": {"tags": ["a", "b"][: i % 3], "score": i / 7},
                },
            )
        )
    return points


def query_vectors(count: int, seed: int = 11) -> list[Vector]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(DIM).astype(np.float32) for _ in range(count)]


async def seed(store: VectorStore, n: int = 12) -> dict[str, list[StoredPoint]]:
    await store.ensure_collections(SCHEMA, COLLECTIONS)
    data = {collection: make_points(collection, n) for collection in COLLECTIONS}
    for collection, points in data.items():
        await store.upsert(collection, points)
    return data


def hit_rows(hits: Sequence[Sequence[Hit]]) -> list[list[tuple[Any, ...]]]:
    return [[(h.id, h.collection, dict(h.payload)) for h in per_query] for per_query in hits]


def assert_same_hits(remote: Sequence[Sequence[Hit]], embedded: Sequence[Sequence[Hit]]) -> None:
    """The same points in the same order, payloads equal, scores to float32 precision."""
    assert hit_rows(remote) == hit_rows(embedded)
    for remote_hits, embedded_hits in zip(remote, embedded, strict=True):
        assert [h.score for h in remote_hits] == pytest.approx([h.score for h in embedded_hits], abs=1e-5)


def hit_lists(found: list[list[Hit]] | GatewayError) -> list[list[Hit]]:
    assert isinstance(found, list), f"the collection failed: {found!r}"
    return found


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[RunningQdrantEmulator]:
    async with running_qdrant_emulator() as running:
        yield running


@pytest_asyncio.fixture
async def store(emu: RunningQdrantEmulator) -> AsyncIterator[ServerStore]:
    """No guard: every fault reaches the test as the one error it becomes, without retries."""
    vector_store = ServerStore(remote_settings(emu.url))
    yield vector_store
    await vector_store.close()


@pytest_asyncio.fixture
async def seeded(store: ServerStore, emu: RunningQdrantEmulator) -> ServerStore:
    await seed(store)
    await emu.control.clear_requests()
    return store


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[AsyncQdrantClient]:
    """The real async client, bypassing ServerStore (it has no ``async with`` of its own)."""
    client = AsyncQdrantClient(url=url, timeout=2)
    try:
        yield client
    finally:
        await client.close()


async def last_request(emu: RunningQdrantEmulator) -> dict[str, Any]:
    requests = await emu.control.requests()
    assert requests, "the emulator logged no request"
    return requests[-1]


# --- ServerStore over REST equals the embedded store --------------------------------------------------------


async def test_server_store_over_rest_matches_the_embedded_store(
    emu: RunningQdrantEmulator, store: ServerStore, tmp_path: Path
) -> None:
    embedded = EdgeStore(edge_settings(tmp_path / "edge"))
    try:
        assert await store.existing_collections() == set()
        remote_data = await seed(store)
        await seed(embedded)  # the same points: make_points is deterministic

        # ensure_collections is idempotent: the second run only reads (each collection's schema, whether it
        # exists) and writes nothing
        await emu.control.clear_requests()
        await store.ensure_collections(SCHEMA, COLLECTIONS)
        targets = [r["target"] for r in await emu.control.requests()]
        assert targets.count("qdrant_exists") == len(COLLECTIONS)
        assert not {"qdrant_create", "qdrant_index", "qdrant_upsert", "qdrant_delete"} & set(targets)

        assert await store.existing_collections() == set(COLLECTIONS) == await embedded.existing_collections()
        for collection, points in remote_data.items():
            assert await store.count(collection) == len(points) == await embedded.count(collection)
            wanted = [str(p.id) for p in points[:5]] + [str(uuid.uuid4())]
            assert await store.existing_ids(collection, wanted) == set(wanted[:5])
            assert await store.existing_ids(collection, wanted) == await embedded.existing_ids(
                collection, wanted
            )
        assert await store.existing_ids(COLLECTIONS[0], []) == set()

        assert await store.authors(COLLECTIONS) == set(AUTHORS) == await embedded.authors(COLLECTIONS)

        vectors = query_vectors(3)
        for author in (None, "Ada Quill", "Nobody Atall"):
            remote_all = await store.search_collections(COLLECTIONS, vectors, author, limit=5)
            embedded_all = await embedded.search_collections(COLLECTIONS, vectors, author, limit=5)
            assert set(remote_all) == set(embedded_all) == set(COLLECTIONS)
            for collection in COLLECTIONS:
                remote_hits = hit_lists(remote_all[collection])
                assert_same_hits(remote_hits, hit_lists(embedded_all[collection]))
                # the concurrent search of every collection answers what one collection's search does
                one = await store.search_collection(collection, vectors, author, limit=5)
                assert hit_rows(one) == hit_rows(remote_hits)
                assert [h.score for q in one for h in q] == [h.score for q in remote_hits for h in q]
                if author == "Ada Quill":
                    assert all(h.payload[AUTHOR_NAME_KEY] == author for hits in remote_hits for h in hits)
                    assert all(len(hits) == 5 for hits in remote_hits)
                if author == "Nobody Atall":
                    assert remote_hits == [[], [], []]
    finally:
        await embedded.close()


async def test_remote_collections_get_the_author_indexes_facets_and_filters_need(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    async with raw_client(emu.url) as client:
        info = await client.get_collection(COLLECTIONS[0])
    assert info.points_count == 12
    assert info.config.params.vectors == {
        DENSE_VECTOR: models.VectorParams(size=DIM, distance=models.Distance.DOT)
    }
    assert info.config.params.sparse_vectors == {
        SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
    }
    assert info.config.metadata == {SCHEMA_KEY: SCHEMA.as_dict()}
    assert set(info.payload_schema) == {AUTHOR_NAME_KEY, AUTHOR_ID_KEY}
    for key in (AUTHOR_NAME_KEY, AUTHOR_ID_KEY):
        index = info.payload_schema[key]
        assert index.data_type == models.PayloadSchemaType.KEYWORD
        assert index.points == 12


async def test_request_log_records_target_path_and_status(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    await seeded.search_collection(COLLECTIONS[1], query_vectors(2), None, limit=3)
    await seeded.count(COLLECTIONS[1])
    log = await emu.control.requests()
    assert [(r["target"], r["method"], r["path"], r["status"], r["endpoint"]) for r in log] == [
        ("qdrant_search", "POST", f"/collections/{COLLECTIONS[1]}/points/query/batch", 200, COLLECTIONS[1]),
        ("qdrant_count", "POST", f"/collections/{COLLECTIONS[1]}/points/count", 200, COLLECTIONS[1]),
    ]
    assert len(log[0]["payload"]["searches"]) == 2


# --- ingest over REST --------------------------------------------------------------------------------------


#: A stored point as compared across stores: payload, dense vector, BM25 weights by token id (or None).
Stored = tuple[Any, list[float], dict[int, float] | None]


async def remote_points(url: str, collection: str) -> dict[str, Stored]:
    async with raw_client(url) as client:
        points, _ = await client.scroll(collection, limit=10_000, with_payload=True, with_vectors=True)
    found: dict[str, Stored] = {}
    for p in points:
        assert isinstance(p.vector, dict)
        dense, sparse = p.vector[DENSE_VECTOR], p.vector.get(SPARSE_VECTOR)
        assert isinstance(dense, list) and (sparse is None or isinstance(sparse, models.SparseVector))
        weights = None if sparse is None else dict(zip(sparse.indices, sparse.values, strict=True))
        found[str(p.id)] = (p.payload, dense, weights)  # type: ignore[assignment]
    return found


def embedded_points(folder: Path, collection: str) -> dict[str, Stored]:
    """Every point of one collection of a closed embedded store, read with the engine itself."""
    shard = edge.EdgeShard.load(str(folder / collection))
    try:
        records, next_offset = shard.scroll(
            edge.ScrollRequest(limit=10_000, with_payload=True, with_vector=True)
        )
    finally:
        shard.close()
    assert next_offset is None
    found: dict[str, Stored] = {}
    for r in records:
        sparse = r.vector.get(SPARSE_VECTOR)
        weights = None if sparse is None else dict(zip(sparse.indices, sparse.values, strict=True))
        found[str(r.id)] = (r.payload, r.vector[DENSE_VECTOR], weights)
    return found


async def test_ingest_over_rest_is_idempotent_and_equals_embedded_ingest(
    emu: RunningQdrantEmulator, tmp_path: Path
) -> None:
    paths = write_corpus(tmp_path / "corpus")
    settings = remote_settings(emu.url, cpu_pool_workers=2)

    first = await ingest_paths(paths, settings, progress=False)
    assert {c.collection for c in first.collections} == set(COLLECTIONS)
    assert first.chunks > 0
    assert first.new == first.chunks
    assert first.skipped == 0

    second = await ingest_paths(paths, settings, progress=False)
    assert second.new == 0
    assert second.skipped == first.chunks
    assert [c.count_after for c in second.collections] == [c.count_after for c in first.collections]

    store = open_vector_store(remote_settings(emu.url))
    assert isinstance(store, ServerStore)
    try:
        assert await store.authors(COLLECTIONS) == set(AUTHORS)
    finally:
        await store.close()

    # The same corpus ingested into the embedded store stores exactly the same points.
    edge_path = tmp_path / "edge"
    embedded = await ingest_paths(paths, edge_settings(edge_path), progress=False)
    assert [(c.collection, c.new) for c in embedded.collections] == [
        (c.collection, c.new) for c in first.collections
    ]
    for collection in COLLECTIONS:
        remote = await remote_points(emu.url, collection)
        stored = embedded_points(edge_path, collection)
        assert remote.keys() == stored.keys()
        assert all(weights for _, _, weights in remote.values())  # every chunk has words, so a BM25 vector
        for point_id, (payload, vector, weights) in remote.items():
            assert payload == stored[point_id][0]
            # embedded twice (two ingest runs): equal up to the model's float noise
            np.testing.assert_allclose(vector, stored[point_id][1], rtol=0, atol=1e-6)
            assert weights == pytest.approx(stored[point_id][2])


async def test_ingest_into_an_unreachable_store_is_an_ingest_error(
    emu: RunningQdrantEmulator, tmp_path: Path
) -> None:
    paths = write_corpus(tmp_path / "corpus")
    await emu.control.add_fault(target="qdrant_exists", kind="drop")
    with pytest.raises(IngestError, match="cannot reach Qdrant"):
        await ingest_paths(paths, remote_settings(emu.url), progress=False)


# --- faults, as ServerStore reports them ---------------------------------------------------------------------


async def search(store: ServerStore) -> list[list[Hit]]:
    return await store.search_collection(COLLECTIONS[0], query_vectors(2), None, limit=3)


def client_error(error: pytest.ExceptionInfo[Exception]) -> BaseException | None:
    """What qdrant-client raised under the gateway error: the httpx error a ResponseHandlingException
    wraps, else the exception itself (e.g. UnexpectedResponse)."""
    cause = error.value.__cause__
    return cause.source if isinstance(cause, ResponseHandlingException) else cause


E = TypeVar("E", bound=Exception)


async def failing_search(
    emu: RunningQdrantEmulator, seeded: ServerStore, error: type[E], **fault: Any
) -> pytest.ExceptionInfo[E]:
    """Queue ``fault`` on ``qdrant_search``; the next search must raise ``error``, returned to check more."""
    await emu.control.add_fault(target="qdrant_search", **fault)
    with pytest.raises(error) as caught:
        await search(seeded)
    return caught


async def test_status_503_on_search_is_upstream_unavailable(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    caught = await failing_search(
        emu, seeded, UpstreamUnavailableError, kind="status", status=503, retry_after=1.5
    )
    cause = client_error(caught)
    assert isinstance(cause, UnexpectedResponse) and cause.status_code == 503
    assert cause.headers["retry-after"] == "2"  # whole seconds, rounded up, as Qdrant sends it
    assert cause.structured()["status"]["error"] == "Service unavailable: emulated fault"
    record = await last_request(emu)
    assert (record["target"], record["fault"], record["status"]) == ("qdrant_search", "status", 503)
    assert len((await search(seeded))[0]) == 3  # the fault was used up


async def test_a_fault_on_one_collections_search_fails_only_that_collection(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    """The pipeline's call: the collection whose request was faulted maps to its error, the others answer."""
    await emu.control.add_fault(target="qdrant_search", kind="status", status=503)
    result = await seeded.search_collections(COLLECTIONS, query_vectors(2), None, limit=3)
    faulted = [r["endpoint"] for r in await emu.control.requests() if r["fault"] == "status"]
    assert len(faulted) == 1  # the concurrent requests race for the one fault
    assert isinstance(result[faulted[0]], UpstreamUnavailableError)
    for collection in set(COLLECTIONS) - set(faulted):
        assert [len(hits) for hits in hit_lists(result[collection])] == [3, 3]


@pytest.mark.parametrize(
    ("fault", "error", "cause"),
    [
        pytest.param({"kind": "status", "status": 500}, UpstreamBadResponseError, None, id="status_500"),
        # "disconnected without response"
        pytest.param({"kind": "drop"}, UpstreamUnavailableError, httpx.RemoteProtocolError, id="drop"),
        # body shorter than Content-Length
        pytest.param(
            {"kind": "truncated"}, UpstreamUnavailableError, httpx.RemoteProtocolError, id="truncated"
        ),
        # '{"status": "ok", "partial": tru'
        pytest.param({"kind": "malformed"}, UpstreamBadResponseError, None, id="malformed_json"),
        pytest.param(
            {"kind": "malformed", "body": '{"status": "ok", "time": 0.0, "result": null}'},
            UpstreamBadResponseError,
            None,
            id="ok_envelope_without_result",
        ),
        pytest.param(
            {"kind": "status", "status": 429}, UpstreamUnavailableError, None, id="429_without_retry_after"
        ),
    ],
)
async def test_search_fault_becomes_a_gateway_error(
    emu: RunningQdrantEmulator,
    seeded: ServerStore,
    fault: dict[str, Any],
    error: type[Exception],
    cause: type[BaseException] | None,
) -> None:
    """A fault on search, as ServerStore reports it: ``error``, raised from qdrant-client's ``cause``."""
    caught = await failing_search(emu, seeded, error, **fault)
    if cause is not None:
        assert isinstance(client_error(caught), cause)


async def test_hang_beyond_the_timeout_is_upstream_timeout(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    # beyond qdrant_timeout_s=1
    caught = await failing_search(emu, seeded, UpstreamTimeoutError, kind="hang", seconds=30)
    assert isinstance(client_error(caught), httpx.ReadTimeout)
    record = await last_request(emu)
    assert (record["fault"], record["status"]) == ("hang", None)


async def test_wrongly_shaped_body_is_upstream_bad_response(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    body = '{"status": "ok", "time": 0.0, "result": [{"points": "not a list"}]}'
    caught = await failing_search(emu, seeded, UpstreamBadResponseError, kind="malformed", body=body)
    assert isinstance(client_error(caught), ValidationError)
    await emu.control.add_fault(target="qdrant_facet", kind="malformed", body='{"result": {"hits": 7}}')
    with pytest.raises(UpstreamBadResponseError):
        await seeded.authors(COLLECTIONS[:1])


async def test_rate_limit_with_retry_after_is_upstream_unavailable(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    caught = await failing_search(
        emu, seeded, UpstreamUnavailableError, kind="status", status=429, retry_after=2
    )
    assert caught.value.retry_after == 2


async def test_latency_within_the_timeout_is_absorbed(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    await emu.control.add_fault(target="qdrant_search", kind="latency", seconds=0.05)
    assert len((await search(seeded))[1]) == 3
    assert (await last_request(emu))["fault"] == "latency"


async def test_the_qdrant_target_hits_any_operation(emu: RunningQdrantEmulator, seeded: ServerStore) -> None:
    await emu.control.add_fault(target="qdrant", kind="status", status=503, times=2)
    with pytest.raises(UpstreamUnavailableError):
        await seeded.count(COLLECTIONS[0])
    with pytest.raises(UpstreamUnavailableError):
        await seeded.existing_collections()
    assert await seeded.count(COLLECTIONS[0]) == 12
    log = await emu.control.requests()
    assert [(r["target"], r["status"]) for r in log] == [
        ("qdrant_count", 503),
        ("qdrant_list", 503),
        ("qdrant_count", 200),
    ]


async def test_a_dropped_upsert_answer_still_stored_the_points(
    emu: RunningQdrantEmulator, seeded: ServerStore
) -> None:
    points = make_points("extra", 4)
    await emu.control.add_fault(target="qdrant_upsert", kind="drop")
    with pytest.raises(UpstreamUnavailableError):
        await seeded.upsert(COLLECTIONS[2], points)
    # the write happened, only its acknowledgement was lost: a retry is safe because ids are deterministic
    assert await seeded.count(COLLECTIONS[2]) == 12 + 4
    logged = (await emu.control.requests())[0]
    assert (logged["target"], logged["fault"], logged["status"]) == ("qdrant_upsert", "drop", None)
    # the log keeps an upsert's payloads but only the length of its vectors
    assert [p["vector"] for p in logged["payload"]["points"]] == [{DENSE_VECTOR: DIM}] * 4
    assert logged["payload"]["points"][0]["payload"] == points[0].payload
    await seeded.upsert(COLLECTIONS[2], points)
    assert await seeded.count(COLLECTIONS[2]) == 12 + 4


async def test_facet_fault_reaches_authors(emu: RunningQdrantEmulator, seeded: ServerStore) -> None:
    await emu.control.add_fault(target="qdrant_facet", kind="status", status=503)
    with pytest.raises(UpstreamUnavailableError):
        await seeded.authors(COLLECTIONS)
    assert await seeded.authors(COLLECTIONS) == set(AUTHORS)


async def test_a_sub_second_timeout_still_allows_calls(emu: RunningQdrantEmulator) -> None:
    store = ServerStore(remote_settings(emu.url, qdrant_timeout_s=0.5))
    try:
        assert await store.existing_collections() == set()
    finally:
        await store.close()


# --- API key -----------------------------------------------------------------------------------------------


@INSECURE
async def test_api_key_is_required_and_checked() -> None:
    async with running_qdrant_emulator(api_key=API_KEY, read_only_api_key=READ_ONLY_KEY) as emu:
        good = ServerStore(remote_settings(emu.url, qdrant_api_key=API_KEY))
        missing = ServerStore(remote_settings(emu.url))
        wrong = ServerStore(remote_settings(emu.url, qdrant_api_key="not-the-key"))
        read_only = ServerStore(remote_settings(emu.url, qdrant_api_key=READ_ONLY_KEY))
        try:
            await good.ensure_collections(SCHEMA, COLLECTIONS[:1])
            assert await good.existing_collections() == {COLLECTIONS[0]}

            await emu.control.clear_requests()
            with pytest.raises(UpstreamBadResponseError):
                await missing.existing_collections()
            with pytest.raises(UpstreamBadResponseError):
                await wrong.existing_collections()
            assert await read_only.existing_collections() == {COLLECTIONS[0]}
            with pytest.raises(UpstreamBadResponseError):
                await read_only.ensure_collections(SCHEMA, COLLECTIONS[1:2])
            log = await emu.control.requests()
            assert [(r["target"], r["status"]) for r in log] == [
                ("qdrant_list", 401),
                ("qdrant_list", 401),
                ("qdrant_list", 200),
                # ensure_collections: the schema check reads, then the create is refused
                ("qdrant_list", 200),
                ("qdrant_info", 200),
                ("qdrant_exists", 200),
                ("qdrant_create", 403),
            ]

            async with httpx.AsyncClient(base_url=emu.url, trust_env=False) as http:
                no_key = await http.get("/collections")
                assert (no_key.status_code, no_key.text) == (
                    401,
                    "Must provide an API key or an Authorization bearer token",
                )
                bad_key = await http.get("/collections", headers={"api-key": "nope"})
                assert (bad_key.status_code, bad_key.text) == (401, "Invalid API key or JWT")
                bearer = await http.get("/collections", headers={"Authorization": f"Bearer {API_KEY}"})
                assert bearer.status_code == 200
                # service endpoints are open, as on Qdrant
                assert (await http.get("/healthz")).text == "healthz check passed"
                assert (await http.get("/")).json()["title"] == "qdrant - vector search engine"
        finally:
            for vector_store in (good, missing, wrong, read_only):
                await vector_store.close()


# --- the REST surface itself ---------------------------------------------------------------------------------


async def test_errors_have_qdrant_status_codes_and_bodies(emu: RunningQdrantEmulator) -> None:
    async with raw_client(emu.url) as client:
        with pytest.raises(UnexpectedResponse) as missing:
            await client.count("nope")
        assert missing.value.status_code == 404
        assert missing.value.structured()["status"]["error"] == "Not found: Collection `nope` doesn't exist!"

        params = models.VectorParams(size=4, distance=models.Distance.COSINE)
        assert await client.create_collection("c", vectors_config=params)
        with pytest.raises(UnexpectedResponse) as exists:
            await client.create_collection("c", vectors_config=params)
        assert exists.value.status_code == 409

        # faceting needs a keyword index, as on a Qdrant server (local mode would not care)
        await client.upsert("c", [models.PointStruct(id=1, vector=[1, 0, 0, 0], payload={"k": "v"})])
        with pytest.raises(UnexpectedResponse) as no_index:
            await client.facet("c", key="k")
        assert no_index.value.status_code == 400
        assert "No appropriate index for faceting: `k`" in no_index.value.structured()["status"]["error"]
        await client.create_payload_index("c", "k", field_schema=models.PayloadSchemaType.KEYWORD)
        assert (await client.facet("c", key="k")).hits == [models.FacetValueHit(value="v", count=1)]

        with pytest.raises(UnexpectedResponse) as wrong_dim:
            await client.upsert("c", [models.PointStruct(id=2, vector=[1, 0], payload={})])
        assert wrong_dim.value.status_code == 400

        records, next_offset = await client.scroll("c", with_vectors=True)
        assert [(r.id, r.payload, r.vector) for r in records] == [(1, {"k": "v"}, [1.0, 0.0, 0.0, 0.0])]
        assert next_offset is None
        single = await client.query_points("c", query=[1, 0, 0, 0], limit=1)
        assert [p.id for p in single.points] == [1]
        assert await client.delete_collection("c")
        assert not await client.collection_exists("c")
        assert await client.create_collection("c", vectors_config=params)  # again, and without an index
        assert (await client.get_collection("c")).payload_schema == {}

    async with httpx.AsyncClient(base_url=emu.url, trust_env=False) as http:
        bad_json = await http.post("/collections/c/points/count", content=b"{not json")
        assert bad_json.status_code == 400
        assert bad_json.json()["status"]["error"].startswith("Format error in JSON body")
        bad_shape = await http.post("/collections/c/points", json={"ids": "one"})
        assert bad_shape.status_code == 400
        ok = (await http.get("/collections/c/exists")).json()
        assert ok["status"] == "ok" and ok["result"] == {"exists": True} and isinstance(ok["time"], float)


async def test_control_api_refuses_faults_it_cannot_serve(emu: RunningQdrantEmulator) -> None:
    with pytest.raises(ValidationError):
        await emu.control.add_fault(target="chat", kind="drop")
    async with httpx.AsyncClient(base_url=emu.url, trust_env=False) as http:
        for fault in (
            {"target": "invocations", "kind": "drop"},
            {"target": "qdrant_search", "kind": "content", "body": "x"},
            {"target": "qdrant_search", "kind": "latency"},
        ):
            response = await http.post("/_emulator/faults", json=fault)
            assert response.status_code == 400, fault
        assert (await http.post("/_emulator/faults", content=b"[]")).status_code == 400
    added = await emu.control.add_fault(target="qdrant_facet", kind="status", status=503, times=None)
    assert added["fault"]["target"] == "qdrant_facet"
    assert [f["target"] for f in await emu.control.faults()] == ["qdrant_facet"]
    await emu.control.set_latency("qdrant", 0.01)
    await emu.control.set_latency("qdrant_search", 0.0)
    async with httpx.AsyncClient(base_url=emu.url, trust_env=False) as http:
        assert (await http.get("/_emulator/faults")).json()["latency"] == {
            "qdrant": 0.01,
            "qdrant_search": 0.0,
        }
        await emu.control.reset()
        assert (await http.get("/_emulator/faults")).json() == {"faults": [], "latency": {"qdrant": 0.0}}


def test_the_qdrant_latency_is_the_default_of_every_target() -> None:
    plan = FaultPlan(QDRANT_TARGETS, {"qdrant": 0.25})
    plan.set_latency("qdrant_search", 0.0)
    assert plan.latency_for("qdrant_count") == 0.25
    assert plan.latency_for("qdrant_search") == 0.0
    everything = Fault(target="qdrant", kind="drop", times=None)
    assert all(everything.matches(target) for target in QDRANT_TARGETS)
    assert not Fault(target="qdrant_facet", kind="drop").matches("qdrant_search")


async def test_on_disk_store_keeps_points_and_indexes_across_restarts(tmp_path: Path) -> None:
    folder = str(tmp_path / "qdrant")
    async with running_qdrant_emulator(path=folder) as emu:
        store = ServerStore(remote_settings(emu.url))
        await seed(store, n=6)
        await store.close()
    assert json.loads((Path(folder) / "emulator_payload_indexes.json").read_text())
    async with running_qdrant_emulator(path=folder) as emu:
        store = ServerStore(remote_settings(emu.url))
        try:
            assert await store.count(COLLECTIONS[0]) == 6
            assert await store.authors(COLLECTIONS) == set(AUTHORS)  # the facet index survived
        finally:
            await store.close()


def test_emulator_thread_serves_a_synchronous_client() -> None:
    thread = QdrantEmulatorThread()
    url = thread.start()
    try:
        assert url == thread.url and thread.control.base_url == url
        # the version qdrant-client checks at start-up is served, and compatible
        assert is_compatible(
            importlib.metadata.version("qdrant-client"), get_server_version(url, {}, None, 2)
        )
        client = QdrantClient(url=url, timeout=2, check_compatibility=False)
        try:
            assert client.get_collections().collections == []
            assert client.create_collection("t", vectors_config=models.VectorParams(size=2, distance="Dot"))
            assert client.collection_exists("t")
        finally:
            client.close()
    finally:
        thread.stop()
    thread.stop()  # a second stop is a no-op
    with pytest.raises(RuntimeError):
        _ = thread.url
