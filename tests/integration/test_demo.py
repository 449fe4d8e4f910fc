"""A newcomer's first ten minutes: `rag-gateway demo` in one terminal, `rag-gateway smoke` in another."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL_DIR, closed_port_url

CLI = [sys.executable, "-m", "rag_gateway.cli.main"]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "EMBEDDING_TOKENIZER_DIR": str(MODEL_DIR),
        "LOG_LEVEL": "warning",
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = closed_port_url().rsplit(":", 1)[1]
    qdrant = tmp_path_factory.mktemp("demo") / "qdrant"
    process = subprocess.Popen(
        [*CLI, "demo", "--port", port, "--qdrant-path", str(qdrant)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # readiness wait for a subprocess, not a timing assertion
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            httpx.get(f"{url}/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url, process
    process.terminate()
    assert process.wait(timeout=30) == 0


def _smoke(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "smoke", "--url", url, *args], env=_env(), capture_output=True, text=True, timeout=60
    )


def test_smoke_against_the_demo_prints_a_grounded_answer_with_sources(
    demo: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = demo
    result = _smoke(url)
    assert result.returncode == 0, result.stderr
    assert "author filter: Tomas Berg" in result.stdout
    assert "Chunking Articles by Sentence — Tomas Berg" in result.stdout
    assert "answer: According to Tomas Berg" in result.stdout
    source_lines = [line for line in result.stdout.splitlines() if " — " in line and "score=" in line]
    assert source_lines and all("— Tomas Berg [" in line for line in source_lines)  # author-scoped
    assert "timings (ms):" in result.stdout


def test_an_unscoped_demo_question_finds_the_right_article(demo: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = demo
    result = _smoke(url, "Why must temperature be above zero for TGI?")
    assert result.returncode == 0, result.stderr
    assert "author filter: -" in result.stdout
    first_source = next(line for line in result.stdout.splitlines() if line.strip().startswith("1. "))
    assert "Calling a TGI Endpoint on SageMaker" in first_source


def test_smoke_streams(demo: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = demo
    result = _smoke(
        url, "--stream", "How can retrieved chunks be reranked when no cross-encoder is available?"
    )
    assert result.returncode == 0, result.stderr
    assert "Reranking Without a Cross-Encoder" in result.stdout
    assert "first_token=" in result.stdout


def test_smoke_fails_with_one_line_when_nothing_listens() -> None:
    result = _smoke(closed_port_url())
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no gateway at" in result.stderr
    assert "Traceback" not in result.stderr


def test_smoke_fails_on_a_4xx(demo: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = demo
    result = _smoke(url, "   ")
    assert result.returncode == 1
    assert "HTTP 422 invalid_request" in result.stderr


def test_a_busy_port_gives_a_clear_message(demo: tuple[str, subprocess.Popen[str]], tmp_path: Path) -> None:
    url, _ = demo
    port = url.rsplit(":", 1)[1]
    result = subprocess.run(
        [*CLI, "demo", "--port", port, "--qdrant-path", str(tmp_path / "q")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is not available" in result.stderr
    assert "Traceback" not in result.stderr
