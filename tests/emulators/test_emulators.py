"""The upstream emulators, driven by the real ``openai`` and ``aioboto3`` clients over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from typing import Any

import httpx
import openai
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from rag_gateway_emulators import EmulatorThread, Fault, running_emulators
from rag_gateway_emulators.fake_llm import find_person_name
from rag_gateway_emulators.server import EmulatorStartError, RunningEmulators
from tests import emulator_helpers
from tests.emulator_helpers import ENDPOINT, INSTRUCTION, sagemaker_client

SELF_QUERY_SYSTEM = (
    "You are an AI language model assistant. Your task is to extract information from a user question."
)
EXPANSION_SYSTEM = (
    "You are an AI language model assistant. Your task is to generate {n} different versions of the given "
    "user question to retrieve relevant documents from a vector database."
)


def handbook_prompt(query: str, chunks: list[tuple[str, str, str]]) -> str:
    """The gateway's prompt layout (built here so these tests do not depend on the gateway's modules)."""
    blocks = [
        f"Chunk {i}:\nType: article\nPlatform: {platform}\nAuthor: {author}\nContent: {content}\n"
        for i, (author, platform, content) in enumerate(chunks, start=1)
    ]
    return f"{INSTRUCTION}\nUser query: {query}\nContext: {chr(10).join(blocks)}"


PROMPT = handbook_prompt(
    "Write a post about feature pipelines",
    [
        (
            "Paul Iusztin",
            "medium",
            "Feature pipelines turn raw data into features. They run in batch or streaming.",
        ),
        ("Maxime Labonne", "linkedin", "Fine-tuning needs clean instruction data."),
    ],
)
PARAMETERS = {
    "max_new_tokens": 150,
    "temperature": 0.01,
    "top_p": 0.9,
    "repetition_penalty": 1.1,
    "return_full_text": False,
}


# --- fixtures (shared: see ``emulator_helpers``) ------------------------------------------------------

emu = emulator_helpers.emu
_fresh_emulators = emulator_helpers._fresh_emulators
oai = emulator_helpers.oai
sm = emulator_helpers.sm


async def self_query(client: openai.AsyncOpenAI, question: str) -> Any:
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": SELF_QUERY_SYSTEM}, {"role": "user", "content": question}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "self_query", "schema": {"type": "object"}, "strict": True},
        },
        temperature=0,
    )
    return json.loads(completion.choices[0].message.content or "")["author"]


async def expand(client: openai.AsyncOpenAI, question: str, n: int) -> list[str]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"queries": {"type": "array", "items": {"type": "string"}, "maxItems": n}},
    }
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": EXPANSION_SYSTEM.format(n=n)},
            {"role": "user", "content": question},
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "query_expansion", "schema": schema, "strict": True},
        },
    )
    queries: list[str] = json.loads(completion.choices[0].message.content or "")["queries"]
    return queries


async def invoke(client: Any, prompt: str = PROMPT, endpoint: str = ENDPOINT, **parameters: Any) -> str:
    response = await client.invoke_endpoint(
        EndpointName=endpoint,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"inputs": prompt, "parameters": PARAMETERS | parameters}),
    )
    assert response["InvokedProductionVariant"] == "AllTraffic"
    async with response["Body"] as stream:
        body = await stream.read()
    text: str = json.loads(body)[0]["generated_text"]
    return text


async def wait_for_requests(emulators: RunningEmulators, count: int) -> None:
    """Poll the OpenAI emulator's log until ``count`` requests arrived (bounded: 5 s)."""
    for _ in range(500):
        if len(await emulators.openai.requests()) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the emulator did not receive {count} request(s)")


# --- OpenAI: answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "author"),
    [
        ("What did Ada Lovelace write about engines?", "Ada Lovelace"),
        ("Paul Iusztin", "Paul Iusztin"),
        ("Write an article about RAG like Maxime Labonne", "Maxime Labonne"),
        ("How does Paul Iusztin's LLM Twin work?", "Paul Iusztin"),
    ],
)
async def test_self_query_finds_the_name(oai: openai.AsyncOpenAI, question: str, author: str) -> None:
    assert await self_query(oai, question) == author


@pytest.mark.parametrize(
    "question", ["What is RAG?", "Explain Retrieval Augmented Generation", "How do LLM APIs work?"]
)
async def test_self_query_without_a_name_is_null(oai: openai.AsyncOpenAI, question: str) -> None:
    assert await self_query(oai, question) is None


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Tell me about José Álvarez-Pérez and vectors", "José Álvarez-Pérez"),
        ("Ada, Lovelace", None),  # punctuation breaks a run
        ("What did Alan Mathison Turing Jr Smith say", None),  # five words: a title, not a name
        ("I asked The AI", None),
    ],
)
def test_name_rules(text: str, name: str | None) -> None:
    assert find_person_name(text) == name


async def test_expansion_returns_the_requested_count_deterministically(oai: openai.AsyncOpenAI) -> None:
    question = "What did Ada Lovelace write about engines?"
    queries = await expand(oai, question, 4)
    assert len(queries) == 4
    assert len({q.lower() for q in queries} | {question.lower()}) == 5
    assert all("Ada Lovelace" in q for q in queries)
    assert await expand(oai, question, 4) == queries
    assert len(await expand(oai, question, 2)) == 2


async def test_completion_has_openai_shape_and_paths(emu: RunningEmulators) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Paul Iusztin"}]}
    headers = {"Authorization": "Bearer test-key"}
    async with httpx.AsyncClient() as client:
        with_v1 = await client.post(f"{emu.openai_url}/chat/completions", json=body, headers=headers)
        root = emu.openai_url.removesuffix("/v1")
        without_v1 = await client.post(f"{root}/chat/completions", json=body, headers=headers)
        no_key = await client.post(f"{emu.openai_url}/chat/completions", json=body)
    for response in (with_v1, without_v1):
        assert response.status_code == 200
        assert response.headers["x-request-id"].startswith("req_")
        data = response.json()
        assert data["object"] == "chat.completion"
        assert data["model"] == "gpt-4o-mini"
        assert data["choices"][0]["finish_reason"] == "stop"
        assert data["choices"][0]["message"]["role"] == "assistant"
        assert data["usage"]["total_tokens"] > 0
    assert no_key.status_code == 401
    assert set(no_key.json()["error"]) == {"message", "type", "param", "code"}
    assert "x-request-id" in no_key.headers


async def test_missing_api_key_is_an_authentication_error(emu: RunningEmulators) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{emu.openai_url}/chat/completions",
            json={"model": "m", "messages": []},
            headers={"Authorization": "Basic dXNlcjpwYXNz"},
        )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


# --- OpenAI: faults ---------------------------------------------------------------------------------


async def test_rate_limit_with_retry_after(emu: RunningEmulators, oai: openai.AsyncOpenAI) -> None:
    await emu.openai.add_fault(target="chat", kind="status", status=429, retry_after=2)
    with pytest.raises(openai.RateLimitError) as caught:
        await self_query(oai, "Paul Iusztin")
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "2000"
    assert headers["x-request-id"]
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "rate_limit_exceeded"
    assert await self_query(oai, "Paul Iusztin") == "Paul Iusztin"  # times=1: consumed


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
    ],
)
async def test_openai_error_statuses(
    emu: RunningEmulators, oai: openai.AsyncOpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    await emu.openai.add_fault(target="chat", kind="status", status=status)
    with pytest.raises(error) as caught:
        await self_query(oai, "Paul Iusztin")
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert {"message", "type", "code"} <= caught.value.body.keys()


async def test_faults_hit_only_their_target(emu: RunningEmulators, oai: openai.AsyncOpenAI) -> None:
    await emu.openai.add_fault(target="expansion", kind="status", status=503)
    assert await self_query(oai, "Paul Iusztin") == "Paul Iusztin"
    with pytest.raises(openai.InternalServerError):
        await expand(oai, "What is RAG?", 2)
    log = await emu.openai.requests()
    assert [(r["target"], r["fault"], r["status"]) for r in log] == [
        ("self_query", None, 200),
        ("expansion", "status", 503),
    ]
    assert log[0]["bearer"] is True
    assert log[0]["payload"]["messages"][1]["content"] == "Paul Iusztin"


async def test_times_are_consumed_in_order(emu: RunningEmulators, oai: openai.AsyncOpenAI) -> None:
    await emu.openai.add_fault(target="chat", kind="status", status=503, times=2)
    await emu.openai.add_fault(target="chat", kind="status", status=500)
    for expected in (503, 503, 500):
        with pytest.raises(openai.InternalServerError) as caught:
            await self_query(oai, "Paul Iusztin")
        assert caught.value.status_code == expected
    assert await self_query(oai, "Paul Iusztin") == "Paul Iusztin"


async def test_unlimited_fault_lasts_until_cleared(emu: RunningEmulators, oai: openai.AsyncOpenAI) -> None:
    await emu.openai.add_fault(target="chat", kind="status", status=500, times=None)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await self_query(oai, "Paul Iusztin")
    assert (await emu.openai.faults())[0]["remaining"] is None
    await emu.openai.clear()
    assert await self_query(oai, "Paul Iusztin") == "Paul Iusztin"


async def test_openai_hang_hits_the_client_timeout(emu: RunningEmulators, oai: openai.AsyncOpenAI) -> None:
    await emu.openai.add_fault(target="chat", kind="hang")
    with pytest.raises(openai.APITimeoutError):
        await self_query(oai.with_options(timeout=0.5), "Paul Iusztin")
    assert await self_query(oai, "Paul Iusztin") == "Paul Iusztin"


async def test_openai_drop_is_a_connection_error(emu: RunningEmulators, oai: openai.AsyncOpenAI) -> None:
    await emu.openai.add_fault(target="self_query", kind="drop")
    with pytest.raises(openai.APIConnectionError) as caught:
        await self_query(oai, "Paul Iusztin")
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert (await emu.openai.requests())[-1]["status"] is None


async def test_openai_truncated_body_is_a_connection_error(
    emu: RunningEmulators, oai: openai.AsyncOpenAI
) -> None:
    await emu.openai.add_fault(target="chat", kind="truncated")
    with pytest.raises(openai.APIConnectionError):
        await self_query(oai, "Paul Iusztin")


async def test_openai_malformed_body_fails_parsing(emu: RunningEmulators, oai: openai.AsyncOpenAI) -> None:
    await emu.openai.add_fault(target="chat", kind="malformed")
    with pytest.raises(ValueError):
        await self_query(oai, "Paul Iusztin")
    await emu.openai.add_fault(target="chat", kind="malformed", body='{"unexpected": true}')
    completion = await oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert not completion.choices  # valid JSON, wrong shape: no usable answer


async def test_latency_fault_and_base_latency_controls(
    emu: RunningEmulators, oai: openai.AsyncOpenAI
) -> None:
    await emu.openai.add_fault(target="chat", kind="latency", seconds=0.01)
    assert await self_query(oai, "Paul Iusztin") == "Paul Iusztin"
    assert (await emu.openai.requests())[-1]["fault"] == "latency"
    await emu.openai.set_latency("self_query", 0.02)
    async with httpx.AsyncClient() as client:
        state = (await client.get(f"{emu.openai.base_url}/_emulator/faults")).json()
    assert state["latency"] == {"chat": 0.0, "self_query": 0.02}
    await emu.openai.clear()
    async with httpx.AsyncClient() as client:
        state = (await client.get(f"{emu.openai.base_url}/_emulator/faults")).json()
    assert state["latency"] == {"chat": 0.0}


async def test_control_api_rejects_bad_faults(emu: RunningEmulators) -> None:
    async with httpx.AsyncClient(base_url=emu.openai.base_url) as client:
        created = await client.post("/_emulator/faults", json={"target": "chat", "kind": "drop"})
        wrong_target = await client.post("/_emulator/faults", json={"target": "invocations", "kind": "drop"})
        unknown_kind = await client.post("/_emulator/faults", json={"target": "chat", "kind": "explode"})
        no_status = await client.post("/_emulator/faults", json={"target": "chat", "kind": "status"})
        bad_latency = await client.put("/_emulator/latency", json={"target": "chat"})
    assert created.status_code == 201
    assert created.json()["fault"]["kind"] == "drop"
    assert [r.status_code for r in (wrong_target, unknown_kind, no_status, bad_latency)] == [400] * 4
    with pytest.raises(ValueError):
        Fault(target="chat", kind="latency")  # a latency fault needs seconds


# --- SageMaker: answers -----------------------------------------------------------------------------


async def test_invocation_is_grounded_in_the_context(sm: Any) -> None:
    text = await invoke(sm)
    assert text.startswith(
        "According to Paul Iusztin (medium): Feature pipelines turn raw data into features."
    )
    assert "Maxime Labonne (linkedin)" in text
    assert "They run in batch" not in text  # only the first sentence
    assert await invoke(sm) == text  # deterministic


async def test_invocation_variants(sm: Any) -> None:
    empty = await invoke(sm, handbook_prompt("Write about RAG", []))
    assert "context is empty" in empty
    full = await invoke(sm, return_full_text=True)
    assert full.startswith(PROMPT)
    assert "According to Paul Iusztin" in full.removeprefix(PROMPT)
    short = await invoke(sm, max_new_tokens=3)
    assert short == "According to Paul"


async def test_requests_log_shows_sigv4_and_payload(emu: RunningEmulators, sm: Any) -> None:
    await invoke(sm)
    (record,) = await emu.sagemaker.requests()
    assert record["target"] == "invocations"
    assert record["sigv4"] is True
    assert record["endpoint"] == ENDPOINT
    assert record["payload"] == {"inputs": PROMPT, "parameters": PARAMETERS}
    assert record["status"] == 200
    await emu.sagemaker.clear_requests()
    assert await emu.sagemaker.requests() == []


async def test_unsigned_request_is_rejected(emu: RunningEmulators) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{emu.sagemaker_url}/endpoints/{ENDPOINT}/invocations", json={"inputs": "hi"}
        )
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException:")
    (record,) = await emu.sagemaker.requests()
    assert record["sigv4"] is False


async def test_unknown_endpoint_is_a_validation_error(sm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        await invoke(sm, endpoint="nope")
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"] == "Endpoint nope of account 123456789012 not found."
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
    ],
)
async def test_tgi_validation_is_a_model_error(sm: Any, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as caught:
        await invoke(sm, **parameters)
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 422
    original = json.loads(response["OriginalMessage"])
    assert message in original["error"]
    assert original["error_type"] == "validation"
    assert response["LogStreamArn"].startswith("arn:aws:logs:eu-central-1:")


# --- SageMaker: faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ModelError", 424),
        ("ValidationError", 400),
        ("ModelNotReadyException", 429),
        ("ServiceUnavailable", 503),
        ("InternalFailure", 500),
        ("InternalDependencyException", 530),
        ("ThrottlingException", 400),
    ],
)
async def test_sagemaker_error_codes(emu: RunningEmulators, sm: Any, code: str, status: int) -> None:
    await emu.sagemaker.add_fault(
        target="invocations", kind="status", error_code=code, original_status=503, message="boom"
    )
    with pytest.raises(ClientError) as caught:
        await invoke(sm)
    response = caught.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    if code == "ModelError":
        assert response["OriginalStatusCode"] == 503
        assert response["OriginalMessage"] == "boom"
        assert "server error (503)" in response["Error"]["Message"]
    else:
        assert response["Error"]["Message"] == "boom"
    assert await invoke(sm)  # consumed


async def test_status_alone_picks_the_sagemaker_code(emu: RunningEmulators, sm: Any) -> None:
    await emu.sagemaker.add_fault(target="invocations", kind="status", status=429)
    with pytest.raises(ClientError) as caught:
        await invoke(sm)
    assert caught.value.response["Error"]["Code"] == "ModelNotReadyException"


async def test_sagemaker_hang_hits_the_read_timeout(emu: RunningEmulators) -> None:
    await emu.sagemaker.add_fault(target="invocations", kind="hang")
    async with sagemaker_client(emu, read_timeout=0.5) as client:
        with pytest.raises(ReadTimeoutError):
            await invoke(client)
        assert await invoke(client)


async def test_sagemaker_drop_closes_the_connection(emu: RunningEmulators, sm: Any) -> None:
    await emu.sagemaker.add_fault(target="invocations", kind="drop")
    with pytest.raises(ConnectionClosedError):
        await invoke(sm)
    assert await invoke(sm)


async def test_sagemaker_truncated_body_fails_the_read(emu: RunningEmulators, sm: Any) -> None:
    await emu.sagemaker.add_fault(target="invocations", kind="truncated")
    response = await sm.invoke_endpoint(EndpointName=ENDPOINT, Body=json.dumps({"inputs": PROMPT}))
    declared = int(response["ResponseMetadata"]["HTTPHeaders"]["content-length"])
    with pytest.raises(Exception, match=r"not completed|content length") as caught:
        async with response["Body"] as stream:
            await stream.read()
    assert declared > 0
    assert not isinstance(caught.value, ClientError)


async def test_sagemaker_malformed_body_fails_parsing(emu: RunningEmulators, sm: Any) -> None:
    await emu.sagemaker.add_fault(target="invocations", kind="malformed")
    with pytest.raises(ValueError):
        await invoke(sm)
    await emu.sagemaker.add_fault(target="invocations", kind="malformed", body='{"text": "wrong shape"}')
    with pytest.raises(KeyError):
        await invoke(sm)


# --- running the emulators --------------------------------------------------------------------------


async def test_emulator_thread_stop_releases_a_hanging_request() -> None:
    thread = EmulatorThread()
    emulators = thread.start()
    try:
        await emulators.openai.add_fault(target="chat", kind="hang", seconds=300)
        client = openai.AsyncOpenAI(base_url=emulators.openai_url, api_key="k", max_retries=0, timeout=30)
        pending = asyncio.create_task(self_query(client, "Paul Iusztin"))
        await wait_for_requests(emulators, 1)
        async with asyncio.timeout(5):
            await asyncio.to_thread(thread.stop)
            with pytest.raises(openai.APIConnectionError) as caught:
                await pending
        assert not isinstance(caught.value, openai.APITimeoutError)
        await client.close()
    finally:
        thread.stop()


async def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmulatorStartError, match=f"openai emulator cannot listen on 127.0.0.1:{port}"):
            async with running_emulators(openai_port=port):
                pass
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rag_gateway_emulators",
            "--openai-port",
            str(port),
            "--sagemaker-port",
            "0",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(10):
            out, err = await process.communicate()
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert "cannot listen" in lines[0]
    assert out == b""


async def test_cli_prints_urls_and_stops_cleanly_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rag_gateway_emulators",
        "--openai-port",
        "0",
        "--sagemaker-port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(10):
            first = (await process.stdout.readline()).decode().strip()
            second = (await process.stdout.readline()).decode().strip()
        assert first.startswith("openai emulator: http://127.0.0.1:")
        assert first.endswith("/v1")
        assert second.startswith("sagemaker emulator: http://127.0.0.1:")
        openai_url, sagemaker_url = first.split(": ", 1)[1], second.split(": ", 1)[1]
        async with httpx.AsyncClient() as client:
            for root in (openai_url.removesuffix("/v1"), sagemaker_url):
                assert (await client.get(f"{root}/_emulator/health")).json()["status"] == "ok"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
