"""Retrieval as a user sees it: hybrid search finds exact words, the trace explains, shapes never mix."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag_gateway.app import create_app
from rag_gateway.config import Settings
from rag_gateway.ingest import ingest_paths
from rag_gateway.observability.metrics import Metrics
from rag_gateway.rag.retrieval.stores import StoreUnavailableError
from rag_gateway.rag.retrieval.stores.folder_copy import copy_store_folder
from rag_gateway.state import open_app_state
from rag_gateway_emulators import RunningEmulators
from tests.conftest import gateway_settings
from tests.servers import GatewayThread

AUTHOR = {"author_id": "7c0e2a1e-0000-4000-8000-0000000000c1", "author_full_name": "Cleo Vance"}


def article(n: int, title: str, content: str) -> dict[str, object]:
    return {
        "_id": f"c3000000-0000-4000-8000-00000000000{n}",
        "content": {"Title": title, "Subtitle": "", "Content": (content + " ") * 5, "language": "en"},
        "platform": "medium",
        "link": f"https://blog.example.com/cleo/{n}",
        **AUTHOR,
    }


#: The target's title word names a dessert; the article is about autoscaling, and its neighbours are
#: about desserts without ever naming that one.
TARGET_TITLE = "Tiramisu"
ARTICLES = [
    article(
        1,
        TARGET_TITLE,
        "How the cluster autoscaler adds nodes when pods stay pending, and how the horizontal pod "
        "autoscaler sizes a deployment from CPU utilisation and custom metrics. Scale-down waits for a "
        "cool-down period, drains the node and respects pod disruption budgets so that replicas survive.",
    ),
    article(2, "Italian desserts", "Tira mi su: mascarpone, espresso-soaked savoiardi and cocoa in layers."),
    article(3, "Layered coffee dessert", "Savoiardi dipped in espresso, layered with mascarpone and cocoa."),
    article(4, "Mascarpone cream", "Whisk egg yolks, sugar and mascarpone for the classic Italian layers."),
]


@pytest.fixture(scope="module")
def title_corpus(tmp_path_factory: pytest.TempPathFactory, model_settings: Settings) -> Path:
    folder = tmp_path_factory.mktemp("title-corpus")
    (folder / "articles.json").write_text(json.dumps(ARTICLES))
    store = tmp_path_factory.mktemp("title-store")
    import asyncio

    asyncio.run(
        ingest_paths([folder / "articles.json"], model_settings.model_copy(update={"qdrant_path": store}))
    )
    return store


@pytest.fixture
def gateway_on(emulators: RunningEmulators, tmp_path: Path) -> Iterator[object]:
    started: list[GatewayThread] = []

    def start(store: Path, **overrides: object) -> str:
        copy = tmp_path / f"store-{len(started)}"
        copy_store_folder(store, copy)
        server = GatewayThread(create_app(gateway_settings(emulators, copy, **overrides)))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


async def _titles(url: str, query: str) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/rag", json={"query": query, "k": 3})
    assert response.status_code == 200
    return [source["title"] for source in response.json()["sources"]]


async def test_an_exact_title_query_that_dense_alone_misses(gateway_on, title_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    dense = await _titles(gateway_on(title_corpus, retrieval_mode="dense"), TARGET_TITLE)
    hybrid = await _titles(gateway_on(title_corpus, retrieval_mode="hybrid"), TARGET_TITLE)
    assert dense[0] != TARGET_TITLE  # the embedding finds what the word means, not the article named so
    assert hybrid[0] == TARGET_TITLE  # BM25 matches the title's exact word


async def test_the_retrieval_trace_explains_each_source_only_when_asked(client: httpx.AsyncClient) -> None:
    question = {"query": "How do punched cards encode operations?", "k": 2}
    plain = (await client.post("/rag", json=question)).json()
    assert plain["trace"] is None
    body = (await client.post("/rag", json={**question, "debug": True})).json()
    trace = body["trace"]
    assert trace["mode"] == "hybrid" and trace["queries"] == body["queries"]
    assert trace["profile"] == "standard"  # a corpus of a few chunks
    assert [s["id"] for s in trace["sources"]] == [s["id"] for s in body["sources"]]
    first = trace["sources"][0]
    assert first["dense_rank"] >= 1 and first["fused_score"] > 0 and first["rerank_score"] is not None
    assert any(s["sparse_rank"] for s in trace["sources"])  # BM25 found at least one cited chunk
    assert all(s["fused_score"] <= first["fused_score"] for s in trace["sources"] + trace["runners_up"])
    cited = {s["document_id"] for s in trace["sources"]}
    assert len(cited) == len(trace["sources"])  # one source per document


async def test_the_large_corpus_profile_answers_from_the_same_store(start_gateway) -> None:  # type: ignore[no-untyped-def]
    """RETRIEVAL_PROFILE=large (what a corpus past LARGE_CORPUS_POINTS gets): the question's BM25 query
    without the corpus's common terms, read from the engine's stored vectors at start-up."""
    url = start_gateway(retrieval_profile="large", hybrid_common_term_min_points=0)
    question = {"query": "How do punched cards encode operations?", "k": 2, "debug": True}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = (await http.post("/rag", json=question)).json()
    assert body["trace"]["profile"] == "large" and body["degraded"] == []
    assert body["sources"] and any(s["sparse_rank"] for s in body["trace"]["sources"])


async def test_sources_come_one_per_document(client: httpx.AsyncClient) -> None:
    body = (await client.post("/rag", json={"query": "punched cards analytical engine", "k": 5})).json()
    titles = [(s["title"], s["link"]) for s in body["sources"]]
    assert len(titles) == len(set(titles))


async def _start(settings: Settings) -> None:
    async with open_app_state(settings, Metrics()):
        pass


async def test_an_index_of_another_shape_is_refused_with_the_rebuild_command(
    emulators: RunningEmulators, ingested_qdrant: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "older"
    copy_store_folder(ingested_qdrant, copy)
    layout = json.loads((copy / "store.json").read_text())
    for schema in layout["schemas"].values():
        schema["bm25"]["k"] = 0.9  # built with other BM25 parameters
    (copy / "store.json").write_text(json.dumps(layout))
    with pytest.raises(StoreUnavailableError, match=r"another index shape.*bm25.*migrate-store"):
        await _start(gateway_settings(emulators, copy))
    del layout["schemas"]  # built before collections recorded a schema
    (copy / "store.json").write_text(json.dumps(layout))
    with pytest.raises(StoreUnavailableError, match="records no schema"):
        await _start(gateway_settings(emulators, copy))


async def test_the_gateway_hands_the_gil_back_sooner_while_it_serves(
    emulators: RunningEmulators, ingested_qdrant: Path, tmp_path: Path
) -> None:
    """GIL_SWITCH_INTERVAL_MS holds while the services are up and Python's own value comes back after."""
    copy = tmp_path / "store"
    copy_store_folder(ingested_qdrant, copy)  # the session's gateway holds the original's lock
    before = sys.getswitchinterval()
    async with open_app_state(gateway_settings(emulators, copy, gil_switch_interval_ms=0.25), Metrics()):
        assert sys.getswitchinterval() == pytest.approx(0.00025)
    assert sys.getswitchinterval() == before
