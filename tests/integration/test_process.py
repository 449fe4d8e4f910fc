"""The gateway as an operator runs it: `rag-gateway serve` in its own process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rag_gateway.rag.retrieval.stores.folder_copy import copy_store_folder
from rag_gateway_emulators.server import RunningEmulators
from tests.conftest import MODEL_DIR, closed_port_url, eventually

QUESTION = {"query": "What are punched cards?"}


def _serve(emulators: RunningEmulators, qdrant: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "EMBEDDING_TOKENIZER_DIR": str(MODEL_DIR),
        "QDRANT_PATH": str(qdrant),
        "OPENAI_API_KEY": "sk-process-test",
        "OPENAI_BASE_URL": emulators.openai_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": emulators.sagemaker_url,
        "AWS_ACCESS_KEY": "AKIDPROCESS",
        "AWS_SECRET_KEY": "process-secret",
        "SHUTDOWN_GRACE_S": "20",
        "LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rag_gateway.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def _wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url) as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                await http.get("/openapi.json")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not start")


async def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(
    emulators: RunningEmulators, ingested_qdrant: Path, tmp_path: Path
) -> None:
    qdrant = tmp_path / "qdrant"
    copy_store_folder(ingested_qdrant, qdrant)
    port = int(closed_port_url().rsplit(":", 1)[1])
    process = _serve(emulators, qdrant, port)
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_serving(url, process)
        await emulators.sagemaker.add_fault(target="invocations", kind="latency", seconds=1.5)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            in_flight = asyncio.create_task(http.post("/rag", json=QUESTION))

            async def waiting_on_the_llm() -> bool:
                return bool(await emulators.sagemaker.requests())

            await eventually(waiting_on_the_llm)
            process.send_signal(signal.SIGTERM)
            response = await in_flight
        assert response.status_code == 200
        assert response.json()["answer"]
        assert await asyncio.to_thread(process.wait, 30) == 0
        # and it stopped accepting new connections
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:
            try:
                await http.post("/rag", json=QUESTION)
            except httpx.ConnectError:
                pass
            else:
                raise AssertionError("the gateway still accepted a request after SIGTERM")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
