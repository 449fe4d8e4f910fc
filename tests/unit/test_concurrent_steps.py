"""The request's concurrent pieces: both OpenAI calls at once, and a request's work cancelled when, and only
when, its client goes away (a server shutdown stays a cancellation)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from rag_gateway.api.cancellation import ClientDisconnectedError, run_for_client
from rag_gateway.rag.outcome import RequestOutcome
from rag_gateway.rag.understanding.understanding import QueryUnderstanding

GUARD_S = 5.0  # only a hang's upper bound: each test ends as soon as its events are set


class Rendezvous:
    """Each call waits until the other one has started: run one after the other, they never finish."""

    def __init__(self) -> None:
        self.self_query_started = asyncio.Event()
        self.expand_started = asyncio.Event()
        self.self_query_cancelled = asyncio.Event()

    async def extract_author(self, query: str) -> str | None:
        self.self_query_started.set()
        try:
            await self.expand_started.wait()
        except asyncio.CancelledError:
            self.self_query_cancelled.set()
            raise
        return "Paul Iusztin"

    async def expand(self, query: str) -> list[str]:
        self.expand_started.set()
        await self.self_query_started.wait()
        return [query, f"{query}, put otherwise"]


def _understanding(calls: Any) -> QueryUnderstanding:
    return QueryUnderstanding(cast(Any, calls), cast(Any, calls), budget_s=GUARD_S)


async def test_self_query_and_expansion_run_at_the_same_time() -> None:
    calls = Rendezvous()
    outcome = RequestOutcome()
    async with asyncio.timeout(GUARD_S):
        author, queries = await _understanding(calls).understand("What is RAG?", outcome)
    assert author == "Paul Iusztin"
    assert queries == ["What is RAG?", "What is RAG?, put otherwise"]
    assert {"self_query", "expand"} <= outcome.timings.ms.keys() and outcome.degraded == []


async def test_a_cancelled_request_leaves_no_self_query_running() -> None:
    calls = Rendezvous()
    calls.expand_started.set = lambda: None  # type: ignore[method-assign]  # the self-query never finishes
    request = asyncio.create_task(_understanding(calls).understand("What is RAG?", RequestOutcome()))
    await calls.self_query_started.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    async with asyncio.timeout(GUARD_S):
        await calls.self_query_cancelled.wait()


class FakeRequest:
    """A request whose client disconnects when ``disconnect`` is set."""

    def __init__(self) -> None:
        self.disconnect = asyncio.Event()

    async def receive(self) -> dict[str, str]:
        await self.disconnect.wait()
        return {"type": "http.disconnect"}


async def test_the_work_runs_in_the_callers_task_and_returns_its_result() -> None:
    caller = asyncio.current_task()

    async def work() -> asyncio.Task[Any] | None:
        return asyncio.current_task()

    assert await run_for_client(cast(Any, FakeRequest()), work(), GUARD_S) is caller


async def test_a_disconnect_cancels_the_work_and_says_so() -> None:
    request = FakeRequest()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def disconnect_once_started() -> None:
        await started.wait()
        request.disconnect.set()

    helper = asyncio.create_task(disconnect_once_started())
    with pytest.raises(ClientDisconnectedError):
        await run_for_client(cast(Any, request), work(), GUARD_S)
    await helper
    assert cancelled.is_set()
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0  # the caller's task is left as it was


async def test_a_cancel_from_the_server_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    async def handler() -> None:
        await run_for_client(cast(Any, FakeRequest()), work(), GUARD_S)

    task = asyncio.create_task(handler())
    await started.wait()
    task.cancel()  # e.g. the server shutting down
    with pytest.raises(asyncio.CancelledError):
        await task
