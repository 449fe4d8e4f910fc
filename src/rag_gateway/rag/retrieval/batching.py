"""Micro-batching on dedicated threads: the query texts of concurrent requests share one model run.

A coroutine queues its texts and awaits a future; ``workers`` threads take batches off the queue, run the
model and hand each caller its vectors back on the event loop, one hand-over per batch. A thread that
finishes a batch takes the next one at once, without a round trip through the event loop: under load the
loop is busy, and every hop (a task to start, a pool future to resolve, a callback to run) would leave the
model idle meanwhile (docs/performance.md).

A batch leaves when it holds ``max_texts`` texts or when its oldest text has waited ``window_s``; under a
backlog the oldest texts have waited already, so batches leave full and at once. Batches are capped because
a small model on a CPU costs about the same per text in a batch of 3 as in a batch of 18: a bigger batch
saves little and makes its first callers wait for its last. A caller's texts never split across batches.

The threads can run ``nice`` levels below the event loop. Every request's next step waits for the event
loop, many times per request; a batch is one step. When both want the last core, the loop should get it
(docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag_gateway.errors import OverloadedError
from rag_gateway.rag.retrieval.embedding import Vector
from rag_gateway.runtime.thread_priority import lower_this_thread

Compute = Callable[[list[str]], list[Vector]]


@dataclass(eq=False)
class _Waiter:
    texts: list[str]
    future: asyncio.Future[list[Vector]]
    loop: asyncio.AbstractEventLoop
    queued_at: float


class MicroBatcher:
    """Batches concurrent ``embed`` calls onto ``workers`` threads that run ``compute`` (sync, CPU-bound)."""

    def __init__(
        self,
        compute: Compute,
        window_s: float,
        max_texts: int = 64,
        workers: int = 1,
        name: str = "rag-embed",
        nice: int = 0,
    ) -> None:
        self._compute = compute
        self._window_s = window_s
        self._max_texts = max_texts
        self._ready = threading.Condition()
        self._queue: deque[_Waiter] = deque()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, args=(nice,), name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        """Callers queued and not yet taken into a batch."""
        return len(self._queue)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(list(texts), loop.create_future(), loop, time.monotonic())
        with self._ready:
            if self._closed:
                raise OverloadedError("the gateway is shutting down; retry shortly", retry_after=1.0)
            self._queue.append(waiter)
            self._ready.notify()
        return await waiter.future

    def close(self) -> None:
        """Cancel the callers still queued, then stop the threads once their current batch is handed over."""
        with self._ready:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            self._ready.notify_all()
        for waiter in left:
            with contextlib.suppress(RuntimeError):  # that loop is closed already
                waiter.loop.call_soon_threadsafe(waiter.future.cancel)
        for thread in self._threads:
            thread.join()

    # --- the worker threads -----------------------------------------------------------------------------
    def _work(self, nice: int) -> None:
        lower_this_thread(nice)
        while (batch := self._next_batch()) is not None:
            try:
                vectors = self._compute([text for waiter in batch for text in waiter.texts])
            except Exception as exc:  # every caller of the run gets the failure, the thread carries on
                self._hand_over(batch, exc)
            else:
                self._hand_over(batch, vectors)

    def _next_batch(self) -> list[_Waiter] | None:
        """The oldest callers up to ``max_texts`` texts, once full or once the oldest has waited the
        window; None when closed."""
        with self._ready:
            while True:
                if self._closed:
                    return None
                while self._queue and self._queue[0].future.done():  # cancelled while queued
                    self._queue.popleft()
                if not self._queue:
                    self._ready.wait()
                    continue
                if not self._full_batch_queued():
                    left = self._queue[0].queued_at + self._window_s - time.monotonic()
                    if left > 0:
                        self._ready.wait(left)
                        continue
                return self._take()

    def _full_batch_queued(self) -> bool:
        queued = 0
        for waiter in self._queue:
            queued += len(waiter.texts)
            if queued >= self._max_texts:
                return True
        return False

    def _take(self) -> list[_Waiter]:
        batch = [self._queue.popleft()]
        taken = len(batch[0].texts)
        while self._queue and taken + len(self._queue[0].texts) <= self._max_texts:
            waiter = self._queue.popleft()
            if not waiter.future.done():
                batch.append(waiter)
                taken += len(waiter.texts)
        return batch

    @staticmethod
    def _hand_over(batch: list[_Waiter], result: list[Vector] | Exception) -> None:
        """Settle the batch's futures on their event loop: one wake-up of the loop per batch."""
        settled: dict[asyncio.AbstractEventLoop, list[tuple[_Waiter, list[Vector] | Exception]]] = {}
        start = 0
        for waiter in batch:
            end = start + len(waiter.texts)
            outcome = result if isinstance(result, Exception) else result[start:end]
            settled.setdefault(waiter.loop, []).append((waiter, outcome))
            start = end
        for loop, outcomes in settled.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                loop.call_soon_threadsafe(_settle, outcomes)


def _settle(outcomes: list[tuple[_Waiter, list[Vector] | Exception]]) -> None:
    for waiter, outcome in outcomes:
        if waiter.future.done():  # the caller was cancelled meanwhile
            continue
        if isinstance(outcome, Exception):
            waiter.future.set_exception(outcome)
        else:
            waiter.future.set_result(outcome)
