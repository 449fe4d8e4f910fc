"""What an operator relies on: probes, metrics, Server-Timing, logs without secrets, auth, CORS, workers."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rag_gateway.api.middleware.auth import digest
from rag_gateway.app import create_app
from rag_gateway.observability.logs import JsonFormatter
from rag_gateway_emulators.qdrant_emulator import QdrantEmulatorThread
from rag_gateway_emulators.server import RunningEmulators
from tests.conftest import (
    AWS_TEST_SECRET,
    MODEL_DIR,
    OPENAI_TEST_KEY,
    closed_port_url,
    eventually,
    gateway_settings,
)
from tests.servers import GatewayThread

QUESTION = {"query": "What are punched cards?"}


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- probes ---------------------------------------------------------------------------------------------
async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["failed"] is None
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "models",
        "vector_store",
        "upstreams",
    }


async def test_not_ready_names_the_failing_check(
    emulators: RunningEmulators, tmp_path: Path, start_gateway: Callable[..., str]
) -> None:
    empty_store = GatewayThread(create_app(gateway_settings(emulators, tmp_path / "empty")))
    try:
        for url, failed in (
            (empty_store.start(), "vector_store"),
            (start_gateway(openai_api_key=""), "upstreams"),
        ):
            async with httpx.AsyncClient(base_url=url) as http:
                response = await http.get("/readyz")
                assert response.status_code == 503
                assert response.json()["failed"] == failed
                assert (await http.get("/healthz")).status_code == 200  # alive all the same
    finally:
        empty_store.stop()


# --- metrics ----------------------------------------------------------------------------------------------
async def test_each_metric_family_moves_when_its_event_happens(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    before = await scrape(client)
    assert (await client.post("/rag", json=QUESTION)).status_code == 200
    await emulators.sagemaker.add_fault(target="invocations", kind="status", error_code="ServiceUnavailable")
    assert (await client.post("/rag", json=QUESTION)).status_code == 200  # retried, then answered
    await emulators.openai.add_fault(target="expansion", kind="status", status=500, times=None)
    assert (await client.post("/rag", json=QUESTION)).json()["degraded"] == ["expand"]
    await emulators.openai.clear()
    assert (await client.post("/rag", json={"query": ""})).status_code == 422
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("rag_requests_total", route="/rag", status="200") == 3
    assert moved("rag_requests_total", route="/rag", status="422") == 1
    assert moved("rag_request_duration_seconds_count", route="/rag") == 4
    for stage in ("self_query", "expand", "embed", "search", "rerank", "llm"):
        assert moved("rag_stage_duration_seconds_count", stage=stage) >= 3, stage
    assert moved("rag_upstream_errors_total", upstream="sagemaker", kind="upstream_unavailable") == 1
    assert moved("rag_upstream_retries_total", upstream="sagemaker") == 1
    assert (
        moved("rag_upstream_errors_total", upstream="openai", kind="upstream_bad_response") == 2
    )  # 2 attempts
    assert moved("rag_degraded_answers_total", step="expand") == 1
    assert value(after, "rag_circuit_breaker_state", upstream="sagemaker") == 0
    assert ("rag_in_flight_requests", ()) in after and ("rag_cpu_pool_pending_jobs", ()) in after


async def test_an_open_breaker_shows_in_the_metrics(
    start_gateway: Callable[..., str], emulators: RunningEmulators
) -> None:
    url = start_gateway(breaker_failure_threshold=1, breaker_reset_timeout_s=60, retry_max_attempts=1)
    await emulators.sagemaker.add_fault(target="invocations", kind="status", error_code="InternalFailure")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert (await http.post("/rag", json=QUESTION)).status_code == 502
        assert value(await scrape(http), "rag_circuit_breaker_state", upstream="sagemaker") == 2


# --- Server-Timing and logs ------------------------------------------------------------------------------------
async def test_server_timing_lists_the_stages(client: httpx.AsyncClient) -> None:
    response = await client.post("/rag", json=QUESTION)
    entries = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
    assert {"self_query", "expand", "embed", "search", "rerank", "llm", "total"} <= set(entries)
    assert all(float(ms) >= 0 for ms in entries.values())


def _stage_counts(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {
        dict(labels)["stage"]: count
        for (name, labels), count in samples.items()
        if name == "rag_stage_duration_seconds_count"
    }


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_every_face_reports_the_llm_and_total_stages(client: httpx.AsyncClient, stream: bool) -> None:
    """/v1/chat/completions records the same stages as /rag: Server-Timing (plain) and the histograms."""
    before = _stage_counts(await scrape(client))
    chat = {
        "model": "llm-twin",
        "messages": [{"role": "user", "content": QUESTION["query"]}],
        "stream": stream,
    }
    response = await client.post("/v1/chat/completions", json=chat)
    assert response.status_code == 200
    if not stream:  # a stream's headers leave before its answer exists
        entries = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
        assert {"embed", "search", "rerank", "llm", "total"} <= set(entries)
        assert float(entries["total"]) >= float(entries["llm"]) > 0

    async def each_stage_counted_once() -> bool:  # the access middleware reports once the stream closes
        after = _stage_counts(await scrape(client))
        # ("total" is the request histogram's job: rag_request_duration_seconds)
        return all(after.get(s, 0) == before.get(s, 0) + 1 for s in ("embed", "search", "rerank", "llm"))

    await eventually(each_stage_counted_once)


async def test_access_log_line_and_no_secret_in_any_log_or_error(
    client: httpx.AsyncClient, emulators: RunningEmulators, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.post("/rag", json=QUESTION, headers={"X-Request-ID": "ops-trace-1"})
    await emulators.openai.add_fault(target="chat", kind="status", status=401, times=None)
    await emulators.sagemaker.add_fault(
        target="invocations", kind="status", error_code="ModelError", times=None
    )
    failed = await client.post("/rag", json={"query": "What did Ada Quill write?"})
    await emulators.openai.clear()
    await emulators.sagemaker.clear()
    assert response.status_code == 200 and failed.status_code == 502

    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    access = [line for line in lines if '"event":"access"' in line and "ops-trace-1" in line]
    assert len(access) == 1
    assert '"status":200' in access[0] and '"stages":{' in access[0] and '"route":"/rag"' in access[0]
    assert "punched cards" not in access[0]  # no query text unless LOG_QUERIES is on
    for text in [*lines, failed.text, response.text]:
        assert OPENAI_TEST_KEY not in text and AWS_TEST_SECRET not in text


# --- auth, rate limit, CORS ---------------------------------------------------------------------------------------
async def test_api_keys_and_the_per_key_rate_limit(start_gateway: Callable[..., str]) -> None:
    url = start_gateway(
        api_keys_sha256=f"{digest('key-one')}, {digest('key-two')}",
        rate_limit_per_minute=1,
        rate_limit_burst=2,
    )
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        missing = await http.post("/rag", json=QUESTION)
        assert missing.status_code == 401 and missing.json()["error"]["type"] == "unauthorized"
        wrong = await http.post("/rag", json=QUESTION, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        one = {"Authorization": "Bearer key-one"}
        assert [(await http.post("/rag", json=QUESTION, headers=one)).status_code for _ in range(2)] == [
            200,
            200,
        ]
        limited = await http.post("/rag", json=QUESTION, headers=one)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["type"] == "rate_limited"
        # another key has its own bucket; probes stay open
        assert (
            await http.post("/rag", json=QUESTION, headers={"Authorization": "Bearer key-two"})
        ).status_code == 200
        assert (await http.get("/healthz")).status_code == 200


async def test_cors_is_off_by_default_and_allows_configured_origins(
    client: httpx.AsyncClient, start_gateway: Callable[..., str]
) -> None:
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    off = await client.options("/rag", headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    url = start_gateway(cors_allow_origins="https://app.example.com")
    async with httpx.AsyncClient(base_url=url) as http:
        on = await http.options("/rag", headers=preflight)
    assert on.headers["access-control-allow-origin"] == "https://app.example.com"


def test_several_workers_need_a_qdrant_server(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WORKERS": "2",
        "QDRANT_URL": "",
        "QDRANT_PATH": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
    }
    env["EMBEDDING_TOKENIZER_DIR"] = str(MODEL_DIR)
    result = subprocess.run(
        [sys.executable, "-m", "rag_gateway.cli.main", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "WORKERS=2 needs a Qdrant server (QDRANT_URL)" in result.stderr
    assert "Traceback" not in result.stderr


def _start_serve(env: dict[str, str], port: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rag_gateway.cli.main", "serve", "--port", port],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_several_workers_serve_over_a_qdrant_server(
    emulators: RunningEmulators, qdrant_emulator: QdrantEmulatorThread
) -> None:
    port = closed_port_url().rsplit(":", 1)[1]
    env = {
        **os.environ,
        "WORKERS": "2",
        "QDRANT_URL": qdrant_emulator.url,
        "HF_HUB_OFFLINE": "1",
        "EMBEDDING_TOKENIZER_DIR": str(MODEL_DIR),
        "OPENAI_API_KEY": "sk-workers",
        "OPENAI_BASE_URL": emulators.openai_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": emulators.sagemaker_url,
        "AWS_ACCESS_KEY": "AKIDWORKERS",
        "AWS_SECRET_KEY": "workers-secret",
        "LOG_LEVEL": "warning",
    }
    process = _start_serve(env, port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def serving() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(serving, timeout_s=60)
            answers = await asyncio.gather(*(http.post("/rag", json=QUESTION) for _ in range(6)))
        assert [a.status_code for a in answers] == [200] * 6
        assert all(a.json()["sources"] for a in answers)
    finally:
        process.terminate()
        assert await asyncio.to_thread(process.wait, 30) == 0
