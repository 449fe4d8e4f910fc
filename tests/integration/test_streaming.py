"""Streaming answers (SSE on /rag), the OpenAI-compatible face, and the OpenAI-compatible LLM backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import openai
import pytest

from rag_gateway_emulators.server import RunningEmulators
from tests.conftest import eventually

QUESTION = "What did Ada Quill write about punched cards?"


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            yield event, json.loads(line[len("data: ") :])
            event = "message"


async def collect(client: httpx.AsyncClient, **payload: Any) -> list[tuple[str, dict[str, Any]]]:
    async with client.stream("POST", "/rag", json={"query": QUESTION, "stream": True, **payload}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [item async for item in sse_events(response)]


async def test_sse_sends_sources_then_tokens_then_done(client: httpx.AsyncClient) -> None:
    events = await collect(client)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert set(names[1:-1]) == {"token"} and len(names) > 3
    sources = events[0][1]
    assert sources["author_filter"] == "Ada Quill"
    assert sources["sources"] and {s["author"] for s in sources["sources"]} == {"Ada Quill"}
    done = events[-1][1]
    assert done["finish_reason"] in ("length", "eos_token")
    assert done["generated_tokens"] == len(names) - 2
    assert {"embed", "search", "first_token", "llm"} <= set(done["timings_ms"])
    streamed = "".join(data["text"] for name, data in events if name == "token")
    whole = await client.post("/rag", json={"query": QUESTION})
    assert streamed.strip() == whole.json()["answer"]


async def test_accept_header_alone_selects_streaming(client: httpx.AsyncClient) -> None:
    headers = {"Accept": "text/event-stream"}
    async with client.stream("POST", "/rag", json={"query": QUESTION}, headers=headers) as response:
        names = [name async for name, _ in sse_events(response)]
    assert names[0] == "sources" and names[-1] == "done"


async def test_the_first_token_arrives_while_the_model_is_still_generating(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    await emulators.sagemaker.set_latency("stream_tokens", 0.05)
    async with client.stream("POST", "/rag", json={"query": QUESTION, "stream": True}) as response:
        events = sse_events(response)
        assert (await anext(events))[0] == "sources"
        assert (await anext(events))[0] == "token"
        (record,) = [r for r in await emulators.sagemaker.requests() if r["target"] == "invocations_stream"]
        sent_when_first_token_arrived = record["tokens_sent"]
        rest = [item async for item in events]
    total = rest[-1][1]["generated_tokens"]
    assert rest[-1][0] == "done"
    assert sent_when_first_token_arrived < total  # the upstream was still producing the answer


@pytest.mark.parametrize("variant", ["ModelStreamError", "tgi_error", "drop"])
async def test_a_mid_stream_failure_becomes_an_error_event(
    client: httpx.AsyncClient, emulators: RunningEmulators, variant: str
) -> None:
    await emulators.sagemaker.add_fault(
        target="invocations_stream", kind="break", error_code=variant, after_tokens=3
    )
    events = await collect(client)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "error"
    assert "done" not in names
    assert 1 <= names.count("token") <= 3
    error = events[-1][1]
    assert error["error"]["type"] == "upstream_bad_response"
    assert "Traceback" not in json.dumps(error) and "127.0.0.1" not in json.dumps(error)
    assert [name for name, _ in await collect(client)][-1] == "done"  # the next stream is whole


async def test_an_llm_that_rejects_the_request_ends_the_stream_with_an_error_event(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    await emulators.sagemaker.add_fault(
        target="invocations_stream", kind="status", error_code="ModelError", original_status=422
    )
    async with client.stream("POST", "/rag", json={"query": QUESTION, "stream": True}) as response:
        names = [name async for name, _ in sse_events(response)]
    assert response.status_code == 200 and names[0] == "sources" and names[-1] == "error"


async def test_a_client_that_disconnects_cancels_the_upstream_stream(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    await emulators.sagemaker.set_latency("stream_tokens", 0.2)
    async with client.stream("POST", "/rag", json={"query": QUESTION, "stream": True}) as response:
        events = sse_events(response)
        assert (await anext(events))[0] == "sources"
        assert (await anext(events))[0] == "token"
    # leaving the block closed the connection mid-answer

    async def upstream_cancelled() -> bool:
        records = [r for r in await emulators.sagemaker.requests() if r["target"] == "invocations_stream"]
        return bool(records) and records[0]["cancelled"]

    await eventually(upstream_cancelled)


# --- the OpenAI-compatible face ----------------------------------------------------------------------
@pytest.fixture
def gateway_openai(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)


async def test_the_openai_client_works_unchanged(gateway_openai: openai.AsyncOpenAI) -> None:
    models = await gateway_openai.models.list()
    assert [m.id for m in models.data] == ["llm-twin"]
    completion = await gateway_openai.chat.completions.create(
        model="llm-twin",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": QUESTION}],
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content
    assert "Ada Quill" in completion.choices[0].message.content
    sources = (completion.model_extra or {})["sources"]
    assert sources and {s["author"] for s in sources} == {"Ada Quill"}


async def test_the_openai_client_streams(gateway_openai: openai.AsyncOpenAI) -> None:
    stream = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert (chunks[0].model_extra or {})["sources"]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert "Ada Quill" in text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


async def test_the_openai_client_sees_a_mid_stream_failure(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators
) -> None:
    await emulators.sagemaker.add_fault(target="invocations_stream", kind="break", after_tokens=2)
    stream = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


@pytest.mark.parametrize(
    "messages",
    [[{"role": "system", "content": "no user here"}], [{"role": "user", "content": "   "}], []],
)
async def test_the_openai_face_validates_like_rag(
    client: httpx.AsyncClient, messages: list[dict[str, str]]
) -> None:
    response = await client.post("/v1/chat/completions", json={"model": "llm-twin", "messages": messages})
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_request"


# --- the OpenAI-compatible backend -----------------------------------------------------------------------
async def test_an_openai_compatible_server_can_be_the_generator(
    start_gateway: Callable[..., str], emulators: RunningEmulators
) -> None:
    url = start_gateway(llm_backend="openai", llm_model_id="twin-vllm")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        answer = await http.post("/rag", json={"query": QUESTION})
        assert answer.status_code == 200
        assert "Ada Quill" in answer.json()["answer"]
        async with http.stream("POST", "/rag", json={"query": QUESTION, "stream": True}) as response:
            events = [item async for item in sse_events(response)]
    assert events[0][0] == "sources" and events[-1][0] == "done"
    assert "".join(d["text"] for n, d in events if n == "token").strip() == answer.json()["answer"]
    generations = [r for r in await emulators.openai.requests() if r["target"] == "generate"]
    assert len(generations) == 2 and generations[0]["payload"]["model"] == "twin-vllm"
    assert generations[0]["payload"]["messages"][0]["content"].startswith("You are a content creator.")
    assert await emulators.sagemaker.requests() == []
