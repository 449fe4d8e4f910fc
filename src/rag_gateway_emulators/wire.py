"""Faults that act on the connection itself, which is why the emulators are built on aiohttp.

aiohttp hands a handler its transport, so a fault can stall, cut a body short or close the socket with no
response at all, and the client sees exactly what it would see from a real upstream doing so. After such a
fault the handler returns a placeholder response; aiohttp fails to write it to the closed transport and
treats that as a premature client disconnection, quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple

from aiohttp import web

from rag_gateway_emulators.faults import Fault
from rag_gateway_emulators.state import EmulatorState, RequestRecord

#: Sent by a ``malformed`` fault unless the fault gives its own body: JSON cut off mid-object.
DEFAULT_MALFORMED_BODY = '{"status": "ok", "partial": tru'
_HOP_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding", "connection"})


async def pause(state: EmulatorState, seconds: float) -> bool:
    """Wait ``seconds``; False when the emulator started shutting down meanwhile.

    The wait is also cancelled when the client goes away (the apps run with handler cancellation on).
    """
    if seconds <= 0:
        return not state.shutting_down.is_set()
    try:
        async with asyncio.timeout(seconds):
            await state.shutting_down.wait()
    except TimeoutError:
        return True
    return False


class Admission(NamedTuple):
    """What ``admit`` decided for a request."""

    fault: Fault | None
    #: The base latency plus a ``latency`` fault's seconds, already waited out.
    delay: float
    #: The answer to send instead of running the operation: a closed connection or a ``status`` fault.
    early: web.StreamResponse | None


async def admit(
    request: web.BaseRequest,
    state: EmulatorState,
    record: RequestRecord,
    target: str,
    fault_error: Callable[[Fault], web.Response],
) -> Admission:
    """Take the next fault for ``target`` (noted in ``record``) and wait out the request's delay.

    Early answers: the connection closed when the emulator shut down meanwhile, or ``fault_error(fault)``
    (the emulator's own error shape) for a ``status`` fault. Other faults act on the answer later.
    """
    fault = state.plan.take(target)
    record.fault = fault.kind if fault is not None else None
    delay = state.plan.latency_for(target)
    if fault is not None and fault.kind == "latency":
        delay += fault.seconds or 0.0
    if not await pause(state, delay):
        return Admission(fault, delay, drop(request, record))
    if fault is not None and fault.kind == "status":
        response = fault_error(fault)
        record.status = response.status
        return Admission(fault, delay, response)
    return Admission(fault, delay, None)


def drop(request: web.BaseRequest, record: RequestRecord | None = None) -> web.StreamResponse:
    """Close the connection without sending a byte of response."""
    if record is not None:
        record.status = None
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response()


async def hang(
    request: web.BaseRequest, state: EmulatorState, seconds: float, record: RequestRecord
) -> web.StreamResponse:
    """Hold the request open and never answer: the client's read timeout has to fire.

    Ends early when the client disconnects (the handler is cancelled) or the emulator shuts down; if the
    whole time passes, the connection is closed without an answer.
    """
    await pause(state, seconds)
    return drop(request, record)


async def truncate(request: web.BaseRequest, response: web.Response) -> web.StreamResponse:
    """Send ``response``'s status and headers, its full Content-Length, half its body; then close."""
    body = response.body if isinstance(response.body, bytes) else b""
    if len(body) < 2:
        body = b'{"truncated": "this body is cut short"}'
    stream = web.StreamResponse(status=response.status)
    for name, value in response.headers.items():
        if name.lower() not in _HOP_HEADERS:
            stream.headers[name] = value
    stream.content_type = response.content_type
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        transport.close()  # close() flushes what was written first, unlike abort()
    return stream


def malformed(response: web.Response, fault: Fault) -> web.Response:
    """A 200 that looks like the real answer (same headers) but whose body cannot be used."""
    text = DEFAULT_MALFORMED_BODY if fault.body is None else fault.body
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
    return web.Response(status=200, text=text, content_type="application/json", headers=headers)


async def deliver(
    request: web.BaseRequest,
    state: EmulatorState,
    record: RequestRecord,
    fault: Fault | None,
    response: web.Response,
) -> web.StreamResponse:
    """Send the normal ``response``, or what a transport-level ``fault`` makes of it."""
    kind = fault.kind if fault is not None else None
    if fault is None or kind in {"latency", "status", "content"}:
        record.status = response.status
        return response
    if kind == "hang":
        return await hang(request, state, fault.hang_seconds, record)
    if kind == "drop":
        return drop(request, record)
    if kind in {"truncated", "break"}:  # a break on a non-streamed answer: the body is cut short
        record.status = response.status
        return await truncate(request, response)
    record.status = 200
    return malformed(response, fault)
