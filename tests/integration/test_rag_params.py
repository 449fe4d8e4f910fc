"""``POST /rag`` with the generation parameters, citations and usage; and ``k`` meaning what it says."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag_gateway.app import create_app
from rag_gateway.config import Settings
from rag_gateway.ingest import ingest_paths
from rag_gateway_emulators.server import RunningEmulators
from tests.conftest import gateway_settings
from tests.corpus import ADA
from tests.integration.test_streaming import sse_events
from tests.servers import GatewayThread

QUESTION = "What did Ada Quill write about punched cards?"


async def _tgi_parameters(emulators: RunningEmulators) -> dict[str, Any]:
    (call,) = [c for c in await emulators.sagemaker.requests() if c["target"].startswith("invocations")]
    parameters: dict[str, Any] = call["payload"]["parameters"]
    return parameters


async def test_rag_takes_the_sampling_parameters(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    response = await client.post(
        "/rag",
        json={"query": QUESTION, "max_tokens": 3, "temperature": 0, "stop": "zzz", "seed": 5},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "According to Ada" and body["finish_reason"] == "length"
    usage = body["usage"]
    assert usage["completion_tokens"] == 3 and usage["prompt_tokens"] > 100
    assert usage["prompt_tokens"] + usage["completion_tokens"] == usage["total_tokens"]
    parameters = await _tgi_parameters(emulators)
    assert parameters["max_new_tokens"] == 3 and parameters["do_sample"] is False
    assert parameters["stop"] == ["zzz"] and parameters["seed"] == 5 and "temperature" not in parameters


async def test_rag_appends_numbered_citations_on_request(client: httpx.AsyncClient) -> None:
    body = (await client.post("/rag", json={"query": QUESTION, "k": 2, "citations": True})).json()
    answer, _, listed = body["answer"].partition("\n\nSources:\n")
    assert "[1]" in answer
    lines = listed.splitlines()
    assert len(lines) == len(body["sources"]) == 2
    for number, (line, source) in enumerate(zip(lines, body["sources"], strict=True), start=1):
        assert line == f"[{number}] {source['title']} — {source['link']}"
    plain = (await client.post("/rag", json={"query": QUESTION, "k": 2})).json()
    assert "Sources:" not in plain["answer"]


async def test_rag_streams_citations_and_usage(client: httpx.AsyncClient) -> None:
    payload = {"query": QUESTION, "stream": True, "citations": True}
    async with client.stream("POST", "/rag", json=payload) as response:
        events = [item async for item in sse_events(response)]
    tokens = [data["text"] for name, data in events if name == "token"]
    assert tokens[-1].startswith("\n\nSources:\n[1] ")
    done = events[-1][1]
    usage = done["usage"]
    assert (
        usage["completion_tokens"] == done["generated_tokens"] == len(tokens) - 1
    )  # citations are not generated
    assert usage["prompt_tokens"] + usage["completion_tokens"] == usage["total_tokens"]


@pytest.mark.parametrize(
    ("payload", "status", "param"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
        ({"top_p": 0}, 422, "top_p"),
        ({"temperature": -0.5}, 422, "temperature"),
        ({"max_tokens": 0}, 422, "max_tokens"),
        ({"seed": "7"}, 422, "seed"),
    ],
)
async def test_rag_refuses_parameters_out_of_range(
    client: httpx.AsyncClient, emulators: RunningEmulators, payload: dict[str, Any], status: int, param: str
) -> None:
    response = await client.post("/rag", json={"query": QUESTION, **payload})
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert await emulators.sagemaker.requests() == []


# --- k means what it says --------------------------------------------------------------------------------

DOCUMENTS = 24


def _wide_corpus(folder: Path) -> Path:
    """24 short articles by one author, each its own document, all about sourdough."""
    articles = [
        {
            "_id": f"d4000000-0000-4000-8000-{index:012d}",
            "content": {
                "Title": f"Sourdough note {index}",
                "Content": f"Sourdough note {index}: a sourdough starter fed with flour and water rises "
                f"within {index + 2} hours in a warm kitchen, and the loaf proofs slowly in the fridge.",
            },
            "platform": "medium",
            "link": f"https://blog.example.com/notes/{index}",
            **ADA,
        }
        for index in range(DOCUMENTS)
    ]
    path = folder / "articles.json"
    path.write_text(json.dumps(articles))
    return path


@pytest.fixture(scope="module")
def wide_gateway(
    emulators: RunningEmulators, tmp_path_factory: pytest.TempPathFactory, model_settings: Settings
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("wide-corpus")
    store = tmp_path_factory.mktemp("qdrant-wide")
    asyncio.run(
        ingest_paths(
            [_wide_corpus(folder)], model_settings.model_copy(update={"qdrant_path": store}), progress=False
        )
    )
    server = GatewayThread(create_app(gateway_settings(emulators, store)))
    yield server.start()
    server.stop()


@pytest.mark.parametrize("k", [1, 7, 20])
async def test_k_sources_come_back_when_the_corpus_has_them(wide_gateway: str, k: int) -> None:
    async with httpx.AsyncClient(base_url=wide_gateway, timeout=30) as http:
        response = await http.post(
            "/rag", json={"query": "How long does a sourdough starter take to rise?", "k": k}
        )
    assert response.status_code == 200, response.text
    sources = response.json()["sources"]
    assert len(sources) == k
    assert len({s["link"] for s in sources}) == k  # k documents, not k chunks of fewer documents
