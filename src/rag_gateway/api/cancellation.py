"""Tie a request's upstream work to its deadline and to its client's connection.

When the deadline passes, the work is cancelled (outstanding upstream calls included) and the client gets
504. When the client disconnects, the work is cancelled too, so no LLM call keeps running for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    """Run ``work`` under a deadline, cancelling it if the client disconnects first."""
    task = asyncio.create_task(_with_deadline(work, timeout_s))
    watcher = asyncio.create_task(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logger.info("client disconnected; its upstream work was cancelled")
        raise ClientDisconnectedError
    finally:
        watcher.cancel()
        if not task.done():  # our own caller was cancelled (e.g. server shutdown)
            task.cancel()
