"""The two vector-store backends, each opened fresh per test, with a way to restart it on the same data.

- ``embedded``: `EdgeStore` on a temporary folder (QDRANT_PATH); restarting is closing and reopening it.
- ``server``: `ServerStore` against the Qdrant REST emulator in its own thread, keeping its data in memory
  (fast), or for the restart tests in a folder: restarting stops the emulator and starts a new one on the
  same folder and port (the same URL).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

import pytest

from rag_gateway.config import Settings
from rag_gateway.rag.retrieval.stores import VectorStore, open_vector_store
from rag_gateway_emulators.qdrant_emulator import QdrantEmulatorThread

Kind = Literal["embedded", "server"]
KINDS: tuple[Kind, ...] = ("embedded", "server")


def store_settings(*, path: Path, url: str | None) -> Settings:
    """Only what the stores read, with nothing taken from `.env` or a QDRANT_URL in the environment."""
    return Settings(_env_file=None, qdrant_path=path, qdrant_url=url, qdrant_timeout_s=5)  # type: ignore[call-arg]


class Backend(Protocol):
    kind: Kind
    settings: Settings

    def open(self) -> VectorStore: ...

    def restart(self) -> None:
        """Whatever holds the data outside the store restarts on the same data (call with no store open)."""


class EmbeddedBackend:
    kind: Kind = "embedded"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.settings = store_settings(path=folder, url=None)

    def open(self) -> VectorStore:
        return open_vector_store(self.settings)

    def restart(self) -> None:
        """The folder is all there is: reopening the store is the restart."""


class ServerBackend:
    kind: Kind = "server"

    def __init__(self, folder: Path, *, persistent: bool) -> None:
        """An emulator keeping its data in ``folder``, or in memory (then it cannot restart)."""
        self.folder = folder if persistent else None
        self._thread = QdrantEmulatorThread(path=str(folder) if persistent else None)
        self.url = self._thread.start()
        self.settings = store_settings(path=folder / "qdrant-path-unused", url=self.url)

    def open(self) -> VectorStore:
        return open_vector_store(self.settings)

    def restart(self) -> None:
        assert self.folder is not None, "an in-memory emulator loses its data on a restart"
        port = urlsplit(self.url).port
        assert port is not None
        self._thread.stop()
        self._thread = QdrantEmulatorThread(port=port, path=str(self.folder))
        assert self._thread.start() == self.url

    def stop(self) -> None:
        self._thread.stop()


@pytest.fixture
def embedded_backend(tmp_path: Path) -> EmbeddedBackend:
    return EmbeddedBackend(tmp_path / "edge")


@pytest.fixture
def server_backend(tmp_path: Path) -> Iterator[ServerBackend]:
    backend = ServerBackend(tmp_path / "emulator", persistent=False)
    yield backend
    backend.stop()


@pytest.fixture
def persistent_server_backend(tmp_path: Path) -> Iterator[ServerBackend]:
    backend = ServerBackend(tmp_path / "emulator", persistent=True)
    yield backend
    backend.stop()


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn: every test using it is one clause of the contract, held by both."""
    found: Backend = request.getfixturevalue(f"{request.param}_backend")
    return found


@pytest.fixture(params=KINDS)
def restartable_backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn, keeping its data where a restart finds it again."""
    name = "embedded_backend" if request.param == "embedded" else "persistent_server_backend"
    found: Backend = request.getfixturevalue(name)
    return found
