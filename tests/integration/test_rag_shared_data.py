"""With the Handbook's real articles ingested, a question about one of them cites that article."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag_gateway.app import create_app
from rag_gateway.ingest import IngestReport
from rag_gateway_emulators.server import RunningEmulators
from tests.conftest import SHARED_DATA, gateway_settings
from tests.servers import GatewayThread

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def shared_gateway(
    emulators: RunningEmulators, shared_articles_ingest: tuple[Path, IngestReport]
) -> Iterator[str]:
    qdrant_path, _ = shared_articles_ingest
    server = GatewayThread(create_app(gateway_settings(emulators, qdrant_path, openai_timeout_s=10)))
    yield server.start()
    server.stop()


def _article(title_fragment: str) -> dict[str, object]:
    articles = json.loads((SHARED_DATA / "articles.json").read_text())
    return next(a for a in articles if title_fragment.lower() in str(a["content"]["Title"]).lower())


@pytest.mark.parametrize(
    ("title_fragment", "question"),
    [
        ("Uncensor any LLM with abliteration", "How does abliteration uncensor an LLM?"),
        ("Quantize Llama models with GGML", "How do I quantize Llama models with GGML and llama.cpp?"),
        ("Graph Attention Networks", "How does self-attention work in graph attention networks?"),
        ("The new king of Infrastructure as Code", "Which tool is the new king of infrastructure as code?"),
    ],
)
async def test_a_question_about_an_article_cites_it(
    shared_gateway: str, title_fragment: str, question: str
) -> None:
    article = _article(title_fragment)
    async with httpx.AsyncClient(base_url=shared_gateway, timeout=30) as client:
        response = await client.post("/rag", json={"query": question, "k": 5})
    assert response.status_code == 200, response.text
    links = [source["link"] for source in response.json()["sources"]]
    assert article["link"] in links


async def test_an_author_scoped_question_only_cites_that_author(shared_gateway: str) -> None:
    users = json.loads((SHARED_DATA / "users.json").read_text())
    name = f"{users[0]['first_name']} {users[0]['last_name']}"
    async with httpx.AsyncClient(base_url=shared_gateway, timeout=30) as client:
        response = await client.post(
            "/rag", json={"query": f"What did {name} write about fine-tuning?", "k": 5}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["author_filter"] is not None and body["author_filter"].casefold() == name.casefold()
    assert body["sources"] and {s["author"].casefold() for s in body["sources"]} == {name.casefold()}
