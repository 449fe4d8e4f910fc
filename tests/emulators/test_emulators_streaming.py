"""Streaming on both emulators, driven by the real ``aioboto3`` and ``openai`` clients.

SageMaker: ``InvokeEndpointWithResponseStream`` answers AWS event-stream ``PayloadPart`` events whose bytes
form TGI's SSE stream, cut at places that ignore line boundaries. OpenAI: ``stream: true`` answers
``chat.completion.chunk`` SSE lines. Faults break streams mid-way; the request log shows cancellations.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
import openai
import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, ConnectionClosedError, EventStreamError, ReadTimeoutError

from rag_gateway_emulators import Fault, eventstream
from rag_gateway_emulators.control_client import EmulatorControl
from rag_gateway_emulators.server import RunningEmulators
from rag_gateway_emulators.streaming import PartSplitter
from tests import emulator_helpers
from tests.emulator_helpers import ENDPOINT, INSTRUCTION, sagemaker_client

PROMPT = (
    f"{INSTRUCTION}\nUser query: Write a post about feature pipelines\nContext: "
    "Chunk 1:\nType: article\nPlatform: medium\nAuthor: Paul Iusztin\n"
    "Content: Feature pipelines turn raw data into features. They run in batch or streaming.\n\n"
    "Chunk 2:\nType: post\nPlatform: linkedin\nAuthor: Maxime Labonne\n"
    "Content: Fine-tuning needs clean instruction data.\n"
)
ANSWER = (
    "According to Paul Iusztin (medium): Feature pipelines turn raw data into features. "
    "See also Maxime Labonne (linkedin)."
)
PARAMETERS = {"max_new_tokens": 150, "temperature": 0.01, "top_p": 0.9, "return_full_text": False}
SLOW_TOKEN = 0.05
DEADLINE = 5.0


# --- fixtures (shared: see ``emulator_helpers``) and helpers -------------------------------------------

emu = emulator_helpers.emu
_fresh_emulators = emulator_helpers._fresh_emulators
oai = emulator_helpers.oai
sm = emulator_helpers.sm


def tgi_body(prompt: str = PROMPT, **parameters: Any) -> str:
    return json.dumps({"inputs": prompt, "parameters": PARAMETERS | parameters, "stream": True})


async def open_stream(client: Any, body: str | None = None) -> Any:
    return await client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT, Body=body or tgi_body(), ContentType="application/json"
    )


async def read_parts(response: Any) -> list[bytes]:
    """Every ``PayloadPart``'s raw bytes, in order (an error event raises out of the iteration)."""
    parts: list[bytes] = []
    async for event in response["Body"]:
        parts.append(event["PayloadPart"]["Bytes"])
    return parts


def tgi_events(data: bytes) -> list[dict[str, Any]]:
    """TGI's SSE as a consumer must read it: buffer bytes, split on newlines, parse ``data:`` lines."""
    events: list[dict[str, Any]] = []
    buffer = b""
    for byte in data:  # one byte at a time: no help from where the parts happened to end
        buffer += bytes([byte])
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.startswith(b"data:"):
                events.append(json.loads(line[len(b"data:") :]))
    assert buffer == b"", "the stream ended mid-line"
    return events


async def invoke(client: Any, body: str) -> str:
    response = await client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="application/json", Body=body)
    async with response["Body"] as stream:
        text: str = json.loads(await stream.read())[0]["generated_text"]
    return text


async def wait_for_record(
    control: EmulatorControl, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll the request log until its last record passes ``check`` (bounded by ``DEADLINE``)."""
    async with asyncio.timeout(DEADLINE):
        while True:
            records = await control.requests()
            if records and check(records[-1]):
                return records[-1]
            await asyncio.sleep(0.01)


def decode_all(data: bytes) -> list[Any]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


# --- the event-stream encoder -------------------------------------------------------------------------


def test_encoder_round_trips_through_botocore() -> None:
    part = eventstream.payload_part(b'data:{"token"')
    error = eventstream.exception_event("ModelStreamError", {"Message": "m", "ErrorCode": "StreamBroken"})
    first, second = decode_all(part + error)
    assert first.headers == {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert first.payload == b'data:{"token"'
    assert second.headers[":message-type"] == "exception"
    assert second.headers[":exception-type"] == "ModelStreamError"
    assert json.loads(second.payload) == {"Message": "m", "ErrorCode": "StreamBroken"}
    assert second.to_response_dict()["status_code"] == 400  # what makes botocore raise


def test_part_splitter_keeps_every_byte() -> None:
    splitter = PartSplitter()
    lines = [f"data:{{'n': {i}}}\n\n".encode() for i in range(10)]
    parts = [p for i, line in enumerate(lines) for p in splitter.feed(line, flush=i % 2 == 0)]
    parts += splitter.flush()
    assert b"".join(parts) == b"".join(lines)
    assert all(len(p) <= 23 for p in parts)


async def test_raw_stream_has_the_event_stream_wire_format(emu: RunningEmulators) -> None:
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/sagemaker/aws4_request, "
        "SignedHeaders=host, Signature=abc",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{emu.sagemaker_url}/endpoints/{ENDPOINT}/invocations-response-stream",
            content=tgi_body(),
            headers=headers,
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert response.headers["x-amzn-sagemaker-content-type"] == "text/event-stream"
    assert response.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    messages = decode_all(response.content)
    assert all(m.headers[":event-type"] == "PayloadPart" for m in messages)
    events = tgi_events(b"".join(m.payload for m in messages))
    assert "".join(e["token"]["text"] for e in events) == ANSWER


# --- SageMaker: streamed answers ------------------------------------------------------------------------


async def test_parts_split_lines_yet_parse_into_the_non_streaming_answer(
    emu: RunningEmulators, sm: Any
) -> None:
    response = await open_stream(sm)
    assert response["ContentType"] == "text/event-stream"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    parts = await read_parts(response)
    data = b"".join(parts)

    # The parts ignore TGI's lines: some end mid-line, some carry the end of one line and the next's start.
    assert any(not p.endswith(b"\n\n") for p in parts)
    assert any(b"\n\ndata:" in p for p in parts)
    assert all(len(p) <= 23 for p in parts)

    events = tgi_events(data)
    texts = [e["token"]["text"] for e in events]
    assert texts[:3] == ["According", " to", " Paul"]
    assert all(e["generated_text"] is None and e["details"] is None for e in events[:-1])
    final = events[-1]
    assert "".join(texts) == final["generated_text"] == ANSWER
    assert final["details"]["finish_reason"] == "eos_token"
    assert final["details"]["generated_tokens"] == len(events)
    assert final["generated_text"] == await invoke(sm, tgi_body())

    (record, _) = await emu.sagemaker.requests()
    assert record["target"] == "invocations_stream"
    assert record["path"] == f"/endpoints/{ENDPOINT}/invocations-response-stream"
    assert record["sigv4"] is True
    assert record["stream"] is True
    assert record["status"] == 200
    assert record["tokens_sent"] == len(events)
    assert record["cancelled"] is False


@pytest.mark.parametrize(
    ("parameters", "finish_reason"),
    [({"max_new_tokens": 3}, "length"), ({"return_full_text": True}, "eos_token")],
)
async def test_stream_variants_match_non_streaming(
    sm: Any, parameters: dict[str, Any], finish_reason: str
) -> None:
    events = tgi_events(b"".join(await read_parts(await open_stream(sm, tgi_body(**parameters)))))
    final = events[-1]
    assert final["generated_text"] == await invoke(sm, tgi_body(**parameters))
    assert final["details"]["finish_reason"] == finish_reason
    answer = "".join(e["token"]["text"] for e in events)
    assert final["generated_text"].endswith(answer)  # tokens never repeat the prompt


async def test_tokens_are_flushed_as_they_are_produced(emu: RunningEmulators, sm: Any) -> None:
    await emu.sagemaker.set_latency("stream_tokens", SLOW_TOKEN)
    response = await open_stream(sm)
    events = aiter(response["Body"])
    first = await anext(events)
    assert first["PayloadPart"]["Bytes"].startswith(b"data:")
    record = (await emu.sagemaker.requests())[-1]
    assert record["status"] == 200
    assert 1 <= record["tokens_sent"] < len(ANSWER.split())  # still generating
    rest = [event["PayloadPart"]["Bytes"] async for event in events]
    assert tgi_events(first["PayloadPart"]["Bytes"] + b"".join(rest))[-1]["generated_text"] == ANSWER


# --- SageMaker: errors and faults ---------------------------------------------------------------------


async def test_validation_error_comes_before_the_stream(emu: RunningEmulators, sm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        await open_stream(sm, tgi_body(temperature=0))
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 422
    assert "`temperature` must be strictly positive" in json.loads(response["OriginalMessage"])["error"]
    assert (await emu.sagemaker.requests())[-1]["status"] == 424


async def test_unknown_endpoint_and_status_faults_before_the_stream(emu: RunningEmulators, sm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        await sm.invoke_endpoint_with_response_stream(EndpointName="nope", Body=tgi_body())
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    await emu.sagemaker.add_fault(target="invocations_stream", kind="status", error_code="ServiceUnavailable")
    with pytest.raises(ClientError) as caught:
        await open_stream(sm)
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


async def test_invocations_faults_do_not_hit_the_stream(emu: RunningEmulators, sm: Any) -> None:
    await emu.sagemaker.add_fault(target="invocations", kind="status", status=500)
    assert tgi_events(b"".join(await read_parts(await open_stream(sm))))[-1]["generated_text"] == ANSWER
    with pytest.raises(ClientError):
        await invoke(sm, tgi_body())


async def test_stream_drop_and_hang_before_the_stream(emu: RunningEmulators) -> None:
    await emu.sagemaker.add_fault(target="invocations_stream", kind="drop")
    await emu.sagemaker.add_fault(target="invocations_stream", kind="hang")
    async with sagemaker_client(emu, read_timeout=0.5) as client:
        with pytest.raises(ConnectionClosedError):
            await open_stream(client)
        with pytest.raises(ReadTimeoutError):
            await open_stream(client)


@pytest.mark.parametrize(
    ("error_code", "after_tokens"),
    [("ModelStreamError", None), ("InternalStreamFailure", 1), ("tgi_error", 2), ("drop", 4)],
)
async def test_break_variants(
    emu: RunningEmulators, sm: Any, error_code: str, after_tokens: int | None
) -> None:
    fields: dict[str, Any] = {"target": "invocations_stream", "kind": "break", "error_code": error_code}
    if after_tokens is not None:
        fields["after_tokens"] = after_tokens
    await emu.sagemaker.add_fault(**fields)
    expected = 3 if after_tokens is None else after_tokens
    response = await open_stream(sm)
    parts: list[bytes] = []
    caught: BaseException | None = None
    try:
        async for event in response["Body"]:
            parts.append(event["PayloadPart"]["Bytes"])
    except (EventStreamError, aiohttp.ClientPayloadError) as exc:
        caught = exc
    finally:
        response["Body"].close()
    events = tgi_events(b"".join(parts))

    if error_code in {"ModelStreamError", "InternalStreamFailure"}:
        assert isinstance(caught, EventStreamError)
        assert caught.response["Error"]["Code"] == error_code
        assert caught.response["Error"]["Message"]
    elif error_code == "tgi_error":
        assert caught is None  # the stream ends cleanly: the error is in TGI's own lines
        assert events[-1] == {
            "error": "Request failed during generation: Server error: emulated generation failure",
            "error_type": "generation",
        }
        events = events[:-1]
    else:
        assert isinstance(caught, aiohttp.ClientPayloadError)  # not wrapped by botocore
    assert [e["token"]["text"] for e in events] == ANSWER.split(" ")[:1] + [
        f" {w}" for w in ANSWER.split(" ")[1:expected]
    ]
    assert all(e["generated_text"] is None for e in events)
    record = (await emu.sagemaker.requests())[-1]
    assert (record["fault"], record["tokens_sent"], record["cancelled"]) == ("break", expected, False)
    assert await invoke(sm, tgi_body()) == ANSWER  # consumed


async def test_malformed_stream_line(emu: RunningEmulators, sm: Any) -> None:
    await emu.sagemaker.add_fault(target="invocations_stream", kind="malformed")
    data = b"".join(await read_parts(await open_stream(sm)))
    with pytest.raises(ValueError):
        tgi_events(data)


async def test_client_disconnect_cancels_the_stream(emu: RunningEmulators, sm: Any) -> None:
    await emu.sagemaker.add_fault(
        target="invocations_stream", kind="latency", seconds=0, token_seconds=SLOW_TOKEN
    )
    response = await open_stream(sm)
    events = aiter(response["Body"])
    for _ in range(2):
        await anext(events)
    response["Body"].close()
    record = await wait_for_record(emu.sagemaker, lambda r: r["cancelled"])
    assert record["target"] == "invocations_stream"
    assert record["status"] == 200
    assert 1 <= record["tokens_sent"] < len(ANSWER.split())


# --- OpenAI streaming ---------------------------------------------------------------------------------


def chat_messages(prompt: str = PROMPT) -> list[Any]:
    return [{"role": "user", "content": prompt}]


async def test_openai_stream_matches_the_non_streaming_answer(
    emu: RunningEmulators, oai: openai.AsyncOpenAI
) -> None:
    completion = await oai.chat.completions.create(model="gpt-4o-mini", messages=chat_messages())
    assert completion.choices[0].message.content == ANSWER
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=chat_messages(),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o-mini" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas) == ANSWER
    assert len([d for d in deltas if d]) == len(ANSWER.split())
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert not chunks[-1].choices
    assert chunks[-1].usage is not None
    assert completion.usage is not None
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens
    records = await emu.openai.requests()
    assert [(r["target"], r["stream"], r["status"]) for r in records] == [
        ("generate", False, 200),
        ("generate", True, 200),
    ]
    assert records[1]["tokens_sent"] == len(ANSWER.split())


async def test_openai_stream_of_a_structured_call_and_max_tokens(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="m",
        messages=[
            {"role": "system", "content": "Extract the author from the question."},
            {"role": "user", "content": "What did Ada Lovelace write?"},
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "self_query", "schema": {}}},
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert json.loads(text) == {"author": "Ada Lovelace"}
    stream = await oai.chat.completions.create(model="m", messages=chat_messages(), max_tokens=3, stream=True)
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "According to Paul"
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_openai_break_drop_raises_in_the_client(emu: RunningEmulators, oai: openai.AsyncOpenAI) -> None:
    await emu.openai.add_fault(target="generate", kind="break", after_tokens=2)
    stream = await oai.chat.completions.create(model="m", messages=chat_messages(), stream=True)
    deltas: list[str] = []
    with pytest.raises(openai.APIConnectionError) as caught:
        async for chunk in stream:
            deltas.append(chunk.choices[0].delta.content or "")
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert "".join(deltas) == "According to"
    record = (await emu.openai.requests())[-1]
    assert (record["fault"], record["tokens_sent"]) == ("break", 2)


async def test_openai_break_error_event_raises_api_error(
    emu: RunningEmulators, oai: openai.AsyncOpenAI
) -> None:
    await emu.openai.add_fault(target="chat", kind="break", error_code="error", message="overloaded")
    stream = await oai.chat.completions.create(model="m", messages=chat_messages(), stream=True)
    with pytest.raises(openai.APIError, match="overloaded") as caught:
        async for _ in stream:
            pass
    assert not isinstance(caught.value, openai.APIConnectionError)


async def test_openai_stream_client_disconnect_is_recorded(
    emu: RunningEmulators, oai: openai.AsyncOpenAI
) -> None:
    await emu.openai.set_latency("stream_tokens", SLOW_TOKEN)
    stream = await oai.chat.completions.create(model="m", messages=chat_messages(), stream=True)
    chunks = aiter(stream)
    for _ in range(2):
        await anext(chunks)
    await stream.close()
    record = await wait_for_record(emu.openai, lambda r: r["cancelled"])
    assert record["stream"] is True
    assert record["tokens_sent"] < len(ANSWER.split())


# --- control API --------------------------------------------------------------------------------------


async def test_control_api_for_streaming(emu: RunningEmulators) -> None:
    async with httpx.AsyncClient(base_url=emu.sagemaker.base_url) as client:
        latency = await client.put("/_emulator/latency", json={"target": "stream_tokens", "seconds": 0.01})
        on_invocations = await client.post(
            "/_emulator/faults", json={"target": "invocations", "kind": "break"}
        )
        bad_variant = await client.post(
            "/_emulator/faults",
            json={"target": "invocations_stream", "kind": "break", "error_code": "error"},
        )
        created = await client.post(
            "/_emulator/faults",
            json={"target": "invocations_stream", "kind": "break", "after_tokens": 5, "token_seconds": 0},
        )
    assert latency.json()["latency"]["stream_tokens"] == 0.01
    assert [on_invocations.status_code, bad_variant.status_code] == [400, 400]
    assert created.status_code == 201
    assert created.json()["fault"]["after_tokens"] == 5
    with pytest.raises(ValueError):
        Fault(target="chat", kind="break", error_code="ModelStreamError")
