"""Tie a request's upstream work to its deadline and to its client's connection.

When the deadline passes, the work is cancelled (outstanding upstream calls included) and the client gets
504. When the client disconnects, the work is cancelled too, so no LLM call keeps running for nobody.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

from rag_gateway.errors import DeadlineExceededError
from rag_gateway.resilience import deadline_scope

T = TypeVar("T")
logger = logging.getLogger("rag_gateway.api")


class ClientDisconnectedError(Exception):
    """The client went away before its answer was ready; its work was cancelled."""


async def _wait_for_disconnect(request: Request) -> None:
    # FastAPI has already read the body, so the next message the server sends is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _with_deadline(work: Coroutine[Any, Any, T], timeout_s: float) -> T:
    with deadline_scope(timeout_s):
        try:
            async with asyncio.timeout(timeout_s):
                return await work
        except TimeoutError as exc:
            raise DeadlineExceededError(
                f"the request did not complete within its {timeout_s:g} s deadline"
            ) from exc


async def run_for_client(request: Request, work: Coroutine[Any, Any, T], timeout_s: float) -> T:
    """Run ``work`` under a deadline, cancelling it if the client disconnects first.

    ``work`` runs in the caller's own task, and a watcher task cancels that task when the client goes
    away: handing ``work`` to a task of its own would cost the request three more turns of the event
    loop, each a wait behind every other request's callbacks when the gateway is busy."""
    current = asyncio.current_task()
    if current is None:  # pragma: no cover - always called from a request's task
        raise RuntimeError("run_for_client needs a running task")
    disconnected = False

    async def cancel_on_disconnect() -> None:
        nonlocal disconnected
        await _wait_for_disconnect(request)
        disconnected = True
        current.cancel()

    watcher = asyncio.create_task(cancel_on_disconnect())
    try:
        return await _with_deadline(work, timeout_s)
    except asyncio.CancelledError:
        if disconnected and current.uncancel() == 0:  # our watcher's cancel, not the server's
            logger.info("client disconnected; its upstream work was cancelled")
            raise ClientDisconnectedError from None
        raise
    finally:
        watcher.cancel()
