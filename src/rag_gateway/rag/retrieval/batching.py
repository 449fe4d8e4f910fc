"""Micro-batching: embed the queries of concurrent requests in one model call.

Requests that arrive within a few milliseconds of each other share one ONNX run (and one CPU-pool job)
instead of queueing one small run each. At most ``max_in_flight`` batches run at once; texts that arrive
meanwhile wait in the batcher and leave, oldest first, as soon as a batch finishes. The rest of the CPU pool
stays free for the vector searches of requests that are further along.

Batches are capped at ``max_texts``: a small model on a CPU costs about the same per text in a batch of 3 as
in a batch of 18, so a big batch saves little and makes its first callers wait for its last. Small batches
that leave in arrival order return each caller's vectors sooner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from rag_gateway.rag.retrieval.embedding import Vector

Compute = Callable[[list[str]], Awaitable[list[Vector]]]
Waiter = tuple[list[str], "asyncio.Future[list[Vector]]"]


class MicroBatcher:
    def __init__(
        self, compute: Compute, window_s: float, max_texts: int = 64, max_in_flight: int = 1
    ) -> None:
        self._compute = compute
        self._window_s = window_s
        self._max_texts = max_texts
        self._max_in_flight = max_in_flight
        self._pending: list[Waiter] = []
        self._pending_texts = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Vector]] = loop.create_future()
        self._pending.append((list(texts), future))
        self._pending_texts += len(texts)
        if self._pending_texts >= self._max_texts:
            self._flush()
        elif self._timer is None and len(self._running) < self._max_in_flight:
            self._timer = loop.call_later(self._window_s, self._flush)
        return await future

    def _flush(self) -> None:
        """Start batches from the oldest waiters while a slot is free (else a finishing batch calls us)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending and len(self._running) < self._max_in_flight:
            batch, taken = self._take_batch()
            self._pending = self._pending[len(batch) :]
            self._pending_texts -= taken
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)  # also keeps a reference until it finishes
            task.add_done_callback(self._finished)

    def _take_batch(self) -> tuple[list[Waiter], int]:
        """The oldest waiters up to ``max_texts`` texts (always at least one waiter)."""
        batch: list[Waiter] = []
        taken = 0
        for texts, future in self._pending:
            if batch and taken + len(texts) > self._max_texts:
                break
            batch.append((texts, future))
            taken += len(texts)
        return batch, taken

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._pending:
            self._flush()  # these waited a whole batch already: no window

    async def _run(self, batch: list[Waiter]) -> None:
        live = [(texts, future) for texts, future in batch if not future.done()]  # skip cancelled requests
        if not live:
            return
        try:
            vectors = await self._compute([text for texts, _ in live for text in texts])
        except asyncio.CancelledError:  # shutting down: nobody may wait forever
            for _, future in live:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for texts, future in live:
            if not future.done():
                future.set_result(vectors[start : start + len(texts)])
            start += len(texts)
