"""POST /rag end to end: real uvicorn, real openai and aioboto3 clients, wire-level emulators."""

from __future__ import annotations

import httpx
import pytest

from rag_gateway_emulators.server import RunningEmulators
from tests.corpus import ADA, BEN


async def _targets(emulators: RunningEmulators) -> list[str]:
    calls = await emulators.openai.requests() + await emulators.sagemaker.requests()
    return sorted(call["target"] for call in calls)


async def test_answer_with_sources_best_first(client: httpx.AsyncClient, emulators: RunningEmulators) -> None:
    response = await client.post(
        "/rag", json={"query": "What does the poke test tell you about sourdough dough?", "k": 2}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    sources = body["sources"]
    assert len(sources) == 2
    assert set(sources[0]) == {"id", "collection", "title", "link", "author", "platform", "score"}
    assert sources[0]["link"] == "https://blog.example.com/ben/sourdough-proofing"
    assert sources[0]["title"] == "Sourdough proofing times"
    assert sources[0]["author"] == "Ben Marsh" and sources[0]["collection"] == "embedded_articles"
    assert [s["score"] for s in sources] == sorted((s["score"] for s in sources), reverse=True)
    # the emulated LLM answers from the context it was given: the best chunk's author is in it
    assert "Ben Marsh" in body["answer"]
    assert body["author_filter"] is None
    assert (
        body["queries"][0] == "What does the poke test tell you about sourdough dough?"
        and len(body["queries"]) == 3
    )
    assert {"self_query", "expand", "embed", "search", "rerank", "llm", "total"} <= set(body["timings_ms"])
    assert await _targets(emulators) == ["expansion", "invocations", "self_query"]


async def test_the_llm_gets_the_handbook_prompt_and_tgi_parameters(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    response = await client.post("/rag", json={"query": "Who fed the starter twice a day?"})
    assert response.status_code == 200
    (call,) = await emulators.sagemaker.requests()
    assert call["sigv4"] is True  # SigV4-signed by botocore
    assert call["user_agent"].startswith("rag-gateway/")  # fixed once, not rebuilt by botocore per call
    payload = call["payload"]
    assert payload["inputs"].startswith("You are a content creator.")
    assert "User query: Who fed the starter twice a day?" in payload["inputs"]
    assert "Chunk 1:\nType: " in payload["inputs"]
    params = payload["parameters"]
    assert params["temperature"] > 0 and 0 < params["top_p"] < 1
    assert params["return_full_text"] is False and params["max_new_tokens"] > 0


async def test_default_k_comes_from_settings(client: httpx.AsyncClient) -> None:
    response = await client.post("/rag", json={"query": "Tell me about punched cards"})
    assert response.status_code == 200
    assert len(response.json()["sources"]) == 3


async def test_a_known_author_scopes_retrieval_to_that_author(client: httpx.AsyncClient) -> None:
    # The question is about sourdough, but asks for Ada Quill: only her chunks may come back.
    response = await client.post("/rag", json={"query": "What did Ada Quill write about sourdough?", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["author_filter"] == ADA["author_full_name"]
    assert body["sources"] and {s["author"] for s in body["sources"]} == {"Ada Quill"}


async def test_an_unknown_author_does_not_filter(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/rag", json={"query": "What did John Smith write about sourdough proofing?"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["author_filter"] is None
    assert body["sources"][0]["author"] == BEN["author_full_name"]


async def test_junk_from_query_expansion_falls_back_to_the_original_query(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    await emulators.openai.add_fault(
        target="expansion", kind="content", body="Sure! Here are some questions:"
    )
    response = await client.post("/rag", json={"query": "How is a sourdough starter fed?"})
    assert response.status_code == 200
    body = response.json()
    assert body["queries"] == ["How is a sourdough starter fed?"]
    assert body["sources"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   \n\t "}, "blank"),
        ({"query": "x" * 2001}, "longer than 2000"),
        ({"query": 42}, "query"),
        ({"query": ["a"]}, "query"),
        ({"query": "ok", "k": 0}, "k"),
        ({"query": "ok", "k": 21}, "k"),
        ({"query": "ok", "k": "3"}, "k"),
        ({"query": "ok", "k": True}, "k"),
        ({"query": "ok", "k": 2.5}, "k"),
        ({"query": "ok", "stream": "yes", "extra": 1}, "extra"),
    ],
)
async def test_bad_input_gets_a_clear_422_and_calls_nothing(
    client: httpx.AsyncClient, emulators: RunningEmulators, payload: dict[str, object], fragment: str
) -> None:
    response = await client.post("/rag", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["type"] == "invalid_request"
    assert fragment in body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert await _targets(emulators) == []


@pytest.mark.parametrize("raw", [b'{"query": "unterminated', b"not json", b""])
async def test_malformed_json_gets_422(
    client: httpx.AsyncClient, emulators: RunningEmulators, raw: bytes
) -> None:
    response = await client.post("/rag", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_request"
    assert await _targets(emulators) == []


async def test_a_sane_caller_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post("/rag", json={"query": ""}, headers={"X-Request-ID": "trace-abc_123"})
    assert response.headers["x-request-id"] == "trace-abc_123"
    assert response.json()["request_id"] == "trace-abc_123"
    hostile = await client.post("/rag", json={"query": ""}, headers={"X-Request-ID": "bad id\twith<junk>"})
    assert (
        hostile.headers["x-request-id"] != "bad id\twith<junk>" and len(hostile.headers["x-request-id"]) == 32
    )


async def test_unknown_route_uses_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
