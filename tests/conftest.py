"""Shared fixtures: paths, settings that point at the offline model, and (later) live servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_gateway.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = PROJECT_ROOT / "models" / "all-MiniLM-L6-v2"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def model_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with the offline model and an empty local Qdrant folder, ignoring any `.env`."""
    if not (MODEL_DIR / "tokenizer.json").exists():
        pytest.fail(f"offline model files missing in {MODEL_DIR}: run `make install`")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        embedding_tokenizer_dir=MODEL_DIR,
        qdrant_path=tmp_path_factory.mktemp("qdrant-empty"),
    )


# --- live servers ------------------------------------------------------------------------------------
import asyncio  # noqa: E402
import socket  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator  # noqa: E402

import httpx  # noqa: E402

from rag_gateway.app import create_app  # noqa: E402
from rag_gateway.ingest import IngestReport, ingest_paths  # noqa: E402
from rag_gateway.rag.retrieval.stores.folder_copy import copy_store_folder  # noqa: E402
from rag_gateway_emulators import EmulatorThread  # noqa: E402
from rag_gateway_emulators.qdrant_emulator import QdrantEmulatorThread  # noqa: E402
from rag_gateway_emulators.server import RunningEmulators  # noqa: E402
from tests.corpus import write_corpus  # noqa: E402
from tests.servers import GatewayThread  # noqa: E402

#: Secrets the gateway is configured with; tests assert they never show up in a body or a log line.
OPENAI_TEST_KEY = "sk-test-0123456789abcdef-SECRET"
AWS_TEST_SECRET = "aws-test-secret-key-DO-NOT-LEAK"


@pytest.fixture(scope="session")
def emulators() -> Iterator[RunningEmulators]:
    thread = EmulatorThread()
    running = thread.start()
    yield running
    thread.stop()


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    write_corpus(folder)
    return folder


def gateway_settings(emulators: RunningEmulators, qdrant_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "embedding_tokenizer_dir": MODEL_DIR,
        "qdrant_path": qdrant_path,
        "openai_api_key": OPENAI_TEST_KEY,
        "openai_base_url": emulators.openai_url,
        "retry_max_attempts": 2,
        "retry_base_delay_s": 0.01,
        "retry_max_delay_s": 0.05,
        "breaker_failure_threshold": 1000,
        "query_understanding_timeout_s": 1.0,
        "openai_timeout_s": 1.5,
        "aws_access_key": "AKIDTESTGATEWAY",
        "aws_secret_key": AWS_TEST_SECRET,
        "aws_region": "eu-central-1",
        "aws_endpoint_url_sagemaker_runtime": emulators.sagemaker_url,
        "sagemaker_endpoint_inference": emulators.endpoint_name,
        "sagemaker_read_timeout_s": 1.5,
        "author_cache_ttl_s": 0.0,
        # caches off: most tests count the upstream calls each request makes (test_caches turns them on)
        "query_cache_size": 0,
        "embedding_cache_size": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture(scope="session")
def ingested_qdrant(
    tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, model_settings: Settings
) -> Path:
    path = tmp_path_factory.mktemp("qdrant-corpus")
    settings = model_settings.model_copy(update={"qdrant_path": path})
    asyncio.run(ingest_paths(sorted(corpus_dir.glob("*.json")), settings, progress=False))
    return path


@pytest.fixture(scope="session")
def shared_articles_ingest(
    tmp_path_factory: pytest.TempPathFactory, model_settings: Settings
) -> tuple[Path, IngestReport]:
    """The real ../shared/data/articles.json, ingested once per session (about 40 s on 2 cores)."""
    articles = SHARED_DATA / "articles.json"
    if not articles.is_file():
        pytest.skip("../shared/data/articles.json not present")
    path = tmp_path_factory.mktemp("qdrant-shared")
    settings = model_settings.model_copy(update={"qdrant_path": path})
    return path, asyncio.run(ingest_paths([articles], settings, progress=False))


@pytest.fixture(scope="session")
def qdrant_emulator(corpus_dir: Path, model_settings: Settings) -> Iterator[QdrantEmulatorThread]:
    """A Qdrant REST emulator holding the test corpus, for the gateway's remote (QDRANT_URL) mode."""
    thread = QdrantEmulatorThread()
    url = thread.start()
    settings = model_settings.model_copy(update={"qdrant_url": url})
    asyncio.run(ingest_paths(sorted(corpus_dir.glob("*.json")), settings, progress=False))
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def gateway_url(emulators: RunningEmulators, ingested_qdrant: Path) -> Iterator[str]:
    """The real gateway under uvicorn on a loopback port, over the test corpus and the emulators."""
    server = GatewayThread(create_app(gateway_settings(emulators, ingested_qdrant)))
    yield server.start()
    server.stop()


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        yield http


@pytest.fixture(autouse=True)
async def _clean_emulators(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test starts with no faults queued and an empty request log."""
    if "emulators" not in request.fixturenames:
        yield
        return
    running: RunningEmulators = request.getfixturevalue("emulators")
    for control in (running.openai, running.sagemaker):
        await control.reset()
    yield


@pytest.fixture
def start_gateway(
    emulators: RunningEmulators, ingested_qdrant: Path, tmp_path: Path
) -> Iterator[Callable[..., str]]:
    """Start an extra gateway with setting overrides, on its own copy of the test corpus."""
    started: list[GatewayThread] = []

    def start(**overrides: object) -> str:
        qdrant_copy = tmp_path / f"qdrant-{len(started)}"
        copy_store_folder(ingested_qdrant, qdrant_copy)
        server = GatewayThread(create_app(gateway_settings(emulators, qdrant_copy, **overrides)))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Poll another process/thread's state (an emulator's request log) until ``check`` holds.

    A readiness wait, not a timing assertion: it fails only if the state never arrives.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)
