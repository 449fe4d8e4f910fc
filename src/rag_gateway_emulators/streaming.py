"""What both emulators' streaming answers share: pacing, disconnect bookkeeping, cutting the connection.

A streamed answer is a ``web.StreamResponse`` written one event at a time, each ``await resp.write``
handing bytes to the socket as the emulated model "produces" them. When the client goes away mid-stream,
aiohttp cancels the handler (the apps run with handler cancellation on) or a write fails with
``ConnectionResetError``; either way the request record shows ``cancelled: true`` and how many tokens had
been sent, so a test can prove that a client disconnect cancelled the upstream generation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from aiohttp import web

from rag_gateway_emulators.state import RequestRecord

#: Sizes of successive SageMaker ``PayloadPart`` events (cycled): never aligned with TGI's lines.
PART_SIZES: tuple[int, ...] = (7, 13, 23, 11, 17, 8, 19, 10, 21, 14, 9, 16)


@contextlib.contextmanager
def observe_disconnect(record: RequestRecord) -> Iterator[None]:
    """Mark ``record`` cancelled when the client disconnects inside the block.

    A handler cancellation is recorded and re-raised; a failed write (``ConnectionResetError``, which
    aiohttp's ``ClientConnectionResetError`` is) is recorded and swallowed: the handler just stops writing.
    """
    try:
        yield
    except asyncio.CancelledError:
        record.cancelled = True
        raise
    except ConnectionResetError:
        record.cancelled = True


def close_connection(request: web.BaseRequest) -> None:
    """Close the socket mid-response, after what was already written (unlike ``abort``, which drops it).

    The chunked body never gets its terminating chunk, so the client sees an incomplete message.
    """
    transport = request.transport
    if transport is not None:
        transport.close()


class PartSplitter:
    """Cuts a byte stream into ``PayloadPart``-sized pieces that ignore line boundaries, deterministically.

    ``feed`` returns the full-size pieces of what it was given plus any carry-over, and keeps the rest
    (shorter than the next size) for the next call unless ``flush`` is set. Holding the rest now and then
    makes some parts span the end of one TGI line and the start of the next, as real SageMaker parts can.
    """

    def __init__(self, sizes: tuple[int, ...] = PART_SIZES) -> None:
        self._sizes = sizes
        self._turn = 0
        self._pending = b""

    def _next_size(self) -> int:
        return self._sizes[self._turn % len(self._sizes)]

    def feed(self, data: bytes, *, flush: bool = False) -> list[bytes]:
        buffer = self._pending + data
        parts: list[bytes] = []
        while len(buffer) >= self._next_size():
            size = self._next_size()
            parts.append(buffer[:size])
            buffer = buffer[size:]
            self._turn += 1
        if flush and buffer:
            parts.append(buffer)
            self._turn += 1
            buffer = b""
        self._pending = buffer
        return parts

    def flush(self) -> list[bytes]:
        return self.feed(b"", flush=True)
