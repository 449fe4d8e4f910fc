"""Every upstream x every fault: the status, the error body and the degraded list a client sees.

Driven through the real openai and aioboto3 clients against the emulators; after each fault the next normal
request must succeed. The test gateway makes 2 attempts per upstream call and gives self-query/expansion a
1 s budget (see conftest.gateway_settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from rag_gateway.app import create_app
from rag_gateway_emulators.qdrant_emulator import QdrantEmulatorThread
from rag_gateway_emulators.server import RunningEmulators
from tests.conftest import AWS_TEST_SECRET, OPENAI_TEST_KEY, closed_port_url, eventually, gateway_settings
from tests.servers import GatewayThread

QUESTION = {"query": "What are punched cards?"}

HTTP_FAULTS = {
    "slow": {"kind": "hang", "seconds": 30},
    "429": {"kind": "status", "status": 429, "retry_after": 1},
    "500": {"kind": "status", "status": 500},
    "503": {"kind": "status", "status": 503},
    "malformed": {"kind": "malformed"},
    "dropped": {"kind": "drop"},
}


def assert_safe_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["x-request-id"]
    for leak in (
        OPENAI_TEST_KEY,
        AWS_TEST_SECRET,
        "127.0.0.1",
        "Traceback",
        "botocore",
        "aiohttp",
        "openai.",
    ):
        assert leak not in response.text
    assert len(body["error"]["message"]) < 120


async def _invocations(emulators: RunningEmulators) -> int:
    return len([r for r in await emulators.sagemaker.requests() if r["target"] == "invocations"])


@pytest.mark.parametrize("fault_name", list(HTTP_FAULTS))
@pytest.mark.parametrize(("target", "step"), [("self_query", "self_query"), ("expansion", "expand")])
async def test_an_openai_fault_degrades_the_answer_instead_of_failing_it(
    client: httpx.AsyncClient, emulators: RunningEmulators, target: str, step: str, fault_name: str
) -> None:
    await emulators.openai.add_fault(target=target, times=None, **HTTP_FAULTS[fault_name])
    response = await client.post("/rag", json=QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] == [step]
    assert body["answer"] and body["sources"]
    if step == "expand":
        assert body["queries"] == [QUESTION["query"]]
    await emulators.openai.clear()
    healthy = await client.post("/rag", json=QUESTION)
    assert healthy.status_code == 200 and healthy.json()["degraded"] == []


SAGEMAKER_FAULTS = {
    # name: (fault, status, error type, attempts the emulator sees)
    "slow": ({"kind": "hang", "seconds": 30}, 504, "upstream_timeout", 1),  # read timeouts are not retried
    "429": (
        {"kind": "status", "error_code": "ModelNotReadyException", "retry_after": 1},
        503,
        "upstream_unavailable",
        2,
    ),
    "500": ({"kind": "status", "error_code": "InternalFailure"}, 502, "upstream_bad_response", 1),
    "503": ({"kind": "status", "error_code": "ServiceUnavailable"}, 503, "upstream_unavailable", 2),
    "throttled": ({"kind": "status", "error_code": "ThrottlingException"}, 503, "upstream_unavailable", 2),
    "malformed": ({"kind": "malformed"}, 502, "upstream_bad_response", 1),
    "wrong shape": (
        {"kind": "malformed", "body": '[{"text": "no generated_text"}]'},
        502,
        "upstream_bad_response",
        1,
    ),
    "truncated": ({"kind": "truncated"}, 502, "upstream_bad_response", 1),
    "dropped": ({"kind": "drop"}, 502, "upstream_bad_response", 1),
    "TGI 422": (
        {"kind": "status", "error_code": "ModelError", "original_status": 422},
        502,
        "upstream_bad_response",
        1,  # a model generation error is never retried
    ),
    "validation": ({"kind": "status", "error_code": "ValidationError"}, 502, "upstream_bad_response", 1),
}


@pytest.mark.parametrize("fault_name", list(SAGEMAKER_FAULTS))
async def test_a_sagemaker_fault_fails_the_request_with_the_right_5xx(
    client: httpx.AsyncClient, emulators: RunningEmulators, fault_name: str
) -> None:
    fault, status, error_type, attempts = SAGEMAKER_FAULTS[fault_name]
    await emulators.sagemaker.add_fault(target="invocations", times=None, **fault)
    response = await client.post("/rag", json=QUESTION)
    assert_safe_error(response, status, error_type)
    assert await _invocations(emulators) == attempts
    if fault.get("retry_after"):
        assert response.headers["retry-after"] == "1"
    await emulators.sagemaker.clear()
    healthy = await client.post("/rag", json=QUESTION)
    assert healthy.status_code == 200 and healthy.json()["degraded"] == []


async def test_a_transient_sagemaker_fault_is_retried_and_the_client_never_sees_it(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    await emulators.sagemaker.add_fault(target="invocations", kind="status", error_code="ServiceUnavailable")
    response = await client.post("/rag", json=QUESTION)
    assert response.status_code == 200
    assert await _invocations(emulators) == 2


async def test_refused_connections(start_gateway: Callable[..., str], emulators: RunningEmulators) -> None:
    # OpenAI refused: both optional steps degrade; the answer still comes
    url = start_gateway(openai_base_url=f"{closed_port_url()}/v1")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/rag", json=QUESTION)
    assert response.status_code == 200
    assert sorted(response.json()["degraded"]) == ["expand", "self_query"]
    # SageMaker refused: the essential step, so 503
    url = start_gateway(aws_endpoint_url_sagemaker_runtime=closed_port_url())
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/rag", json=QUESTION)
        assert_safe_error(response, 503, "upstream_unavailable")


async def test_an_open_circuit_fails_fast_then_probes_and_closes(
    start_gateway: Callable[..., str], emulators: RunningEmulators
) -> None:
    url = start_gateway(breaker_failure_threshold=2, breaker_reset_timeout_s=0.5, retry_max_attempts=1)
    await emulators.sagemaker.add_fault(
        target="invocations", kind="status", error_code="InternalFailure", times=2
    )
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(2):
            assert (await http.post("/rag", json=QUESTION)).status_code == 502
        opened = await http.post("/rag", json=QUESTION)
        assert_safe_error(opened, 503, "upstream_unavailable")
        assert int(opened.headers["retry-after"]) >= 1
        assert await _invocations(emulators) == 2  # the open circuit did not call the endpoint
        # after the cool-down, one probe goes through; its success closes the circuit
        deadline = time.monotonic() + 10
        probe = opened
        while probe.status_code != 200 and time.monotonic() < deadline:
            probe = await http.post("/rag", json=QUESTION)
            assert probe.status_code in (200, 503)
        assert probe.status_code == 200
        assert (await http.post("/rag", json=QUESTION)).status_code == 200


async def test_the_request_deadline_cancels_upstream_work_and_answers_504(
    client: httpx.AsyncClient, emulators: RunningEmulators
) -> None:
    await emulators.sagemaker.add_fault(target="invocations", kind="latency", seconds=1.2)
    response = await client.post("/rag", json=QUESTION, headers={"X-Request-Timeout": "0.3"})
    assert_safe_error(response, 504, "deadline_exceeded")


@pytest.mark.parametrize("value", ["soon", "-1", "0", "nan", "inf"])
async def test_a_bad_request_timeout_header_is_a_422(client: httpx.AsyncClient, value: str) -> None:
    response = await client.post("/rag", json=QUESTION, headers={"X-Request-Timeout": value})
    assert response.status_code == 422
    assert "x-request-timeout" in response.json()["error"]["message"]


async def test_a_client_that_disconnects_cancels_its_llm_call(
    gateway_url: str, emulators: RunningEmulators
) -> None:
    await emulators.sagemaker.add_fault(target="invocations", kind="latency", seconds=20)
    http = httpx.AsyncClient(base_url=gateway_url, timeout=30)
    request = asyncio.create_task(http.post("/rag", json=QUESTION))

    async def llm_called() -> bool:
        return await _invocations(emulators) == 1

    await eventually(llm_called)
    request.cancel()  # the client gives up and closes its connection
    with contextlib.suppress(asyncio.CancelledError):
        await request
    await http.aclose()

    async def llm_call_cancelled() -> bool:
        (record,) = [r for r in await emulators.sagemaker.requests() if r["target"] == "invocations"]
        return bool(record["cancelled"])

    await eventually(llm_call_cancelled)  # long before the 20 s the endpoint would have taken


# --- Qdrant (remote mode, against the Qdrant REST emulator) -----------------------------------------------
@pytest.fixture(scope="module")
def remote_gateway(
    emulators: RunningEmulators,
    qdrant_emulator: QdrantEmulatorThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    # one attempt per call, so a single injected fault is what the request sees
    settings = gateway_settings(
        emulators,
        tmp_path_factory.mktemp("unused"),
        qdrant_url=qdrant_emulator.url,
        qdrant_timeout_s=1,
        retry_max_attempts=1,
    )
    server = GatewayThread(create_app(settings))
    yield server.start()
    server.stop()


QDRANT_FAULTS = HTTP_FAULTS  # the same HTTP-level faults, aimed at Qdrant's REST API


@pytest.mark.parametrize("fault_name", list(QDRANT_FAULTS))
async def test_a_qdrant_search_fault_leaves_one_collection_out(
    remote_gateway: str, emulators: RunningEmulators, qdrant_emulator: QdrantEmulatorThread, fault_name: str
) -> None:
    control = qdrant_emulator.control
    await control.reset()
    await control.add_fault(target="qdrant_search", times=1, **QDRANT_FAULTS[fault_name])
    async with httpx.AsyncClient(base_url=remote_gateway, timeout=30) as http:
        response = await http.post("/rag", json=QUESTION)
        assert response.status_code == 200, response.text
        body = response.json()
        (degraded,) = body["degraded"]
        assert degraded.startswith("search:embedded_")
        assert body["answer"] and body["sources"]  # the other collections still answered
        assert degraded.removeprefix("search:") not in {s["collection"] for s in body["sources"]}
        healthy = await http.post("/rag", json=QUESTION)
    assert healthy.status_code == 200 and healthy.json()["degraded"] == []


@pytest.mark.parametrize("fault_name", ["503", "dropped"])
async def test_a_qdrant_facet_fault_drops_the_author_filter_not_the_answer(
    remote_gateway: str, qdrant_emulator: QdrantEmulatorThread, fault_name: str
) -> None:
    control = qdrant_emulator.control
    await control.reset()
    await control.add_fault(target="qdrant_facet", times=None, **QDRANT_FAULTS[fault_name])
    async with httpx.AsyncClient(base_url=remote_gateway, timeout=30) as http:
        response = await http.post("/rag", json={"query": "What did Ada Quill write about sourdough?"})
        await control.reset()
        healthy = await http.post("/rag", json={"query": "What did Ada Quill write about sourdough?"})
    assert response.status_code == 200
    assert response.json()["degraded"] == ["resolve_author"] and response.json()["author_filter"] is None
    assert healthy.json()["degraded"] == [] and healthy.json()["author_filter"] == "Ada Quill"


OPENAI_GENERATION_FAULTS = {
    # name: (fault, status, error type)
    "slow": ({"kind": "hang", "seconds": 30}, 504, "upstream_timeout"),
    "429": ({"kind": "status", "status": 429, "retry_after": 1}, 503, "upstream_unavailable"),
    "500": ({"kind": "status", "status": 500}, 502, "upstream_bad_response"),
    "malformed": ({"kind": "malformed"}, 502, "upstream_bad_response"),
    "dropped": ({"kind": "drop"}, 503, "upstream_unavailable"),
}


@pytest.mark.parametrize("fault_name", list(OPENAI_GENERATION_FAULTS))
async def test_an_openai_compatible_generator_fault_maps_like_sagemaker(
    start_gateway: Callable[..., str], emulators: RunningEmulators, fault_name: str
) -> None:
    """LLM_BACKEND=openai: a dropped connection is an unavailable upstream (503), not a timeout (504)."""
    fault, status, error_type = OPENAI_GENERATION_FAULTS[fault_name]
    url = start_gateway(
        llm_backend="openai", llm_model_id="twin-vllm", sagemaker_read_timeout_s=2.0, openai_timeout_s=2.0
    )
    await emulators.openai.add_fault(target="generate", times=None, **fault)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/rag", json=QUESTION)
        assert_safe_error(response, status, error_type)
        await emulators.openai.clear()
        healthy = await http.post("/rag", json=QUESTION)
    assert healthy.status_code == 200 and healthy.json()["degraded"] == []
