"""The control client against a server that leaves its first connection unanswered: a call that is safe to
repeat is sent again on a new connection; a POST is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from rag_gateway_emulators.control_client import EmulatorControl

ANSWER = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{"requests": []}'
TIMEOUT_S = 0.5  # the client's own timeout: how long the unanswered first connection is given


class SilentOnce:
    """Counts connections; reads the first one's request and never answers it, answers the others."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        if self.connections > 1:
            writer.write(ANSWER)
            await writer.drain()
        else:
            await reader.read()  # until the client gives up and closes
        writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def silent_once() -> AsyncIterator[SilentOnce]:
    server = SilentOnce()
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    async with server.server:
        yield server


async def test_a_read_with_no_answer_is_sent_again_on_a_new_connection(silent_once: SilentOnce) -> None:
    control = EmulatorControl(silent_once.url, timeout=TIMEOUT_S)
    assert await control.requests() == []
    assert silent_once.connections == 2


async def test_a_post_is_never_sent_twice(silent_once: SilentOnce) -> None:
    control = EmulatorControl(silent_once.url, timeout=TIMEOUT_S)
    with pytest.raises(httpx.TimeoutException):
        await control.add_fault(target="chat", kind="status", status=500)
    assert silent_once.connections == 1
