"""Micro-batching: embed the queries of concurrent requests in one model call.

Requests that arrive within a few milliseconds of each other share one ONNX run (and one CPU-pool job)
instead of queueing one small run each; under load that cuts per-text overhead and pool queueing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from rag_gateway.embedding import Vector

Compute = Callable[[list[str]], Awaitable[list[Vector]]]


class MicroBatcher:
    def __init__(self, compute: Compute, window_s: float, max_texts: int = 64) -> None:
        self._compute = compute
        self._window_s = window_s
        self._max_texts = max_texts
        self._pending: list[tuple[list[str], asyncio.Future[list[Vector]]]] = []
        self._pending_texts = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Vector]] = loop.create_future()
        self._pending.append((list(texts), future))
        self._pending_texts += len(texts)
        if self._pending_texts >= self._max_texts:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._pending_texts = self._pending, [], 0
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)  # keep a reference until it finishes
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[list[str], asyncio.Future[list[Vector]]]]) -> None:
        live = [(texts, future) for texts, future in batch if not future.done()]  # skip cancelled requests
        if not live:
            return
        try:
            vectors = await self._compute([text for texts, _ in live for text in texts])
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
