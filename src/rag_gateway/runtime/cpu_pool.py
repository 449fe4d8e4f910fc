"""One bounded thread pool for the CPU work besides query embedding (reranking, token counting, model
loading); query embedding has its own threads (`rag.retrieval.batching`).

onnxruntime and numpy release the GIL, so threads give real parallelism while the event loop stays free.
The queue in front of the pool is bounded too: past ``max_queue`` waiting jobs a caller is turned away at
once (503) instead of waiting behind an ever-growing backlog.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from rag_gateway.errors import OverloadedError

P = ParamSpec("P")
R = TypeVar("R")


class CpuPool:
    """A fixed-size thread pool that coroutines can await, with a bounded queue."""

    def __init__(self, workers: int, max_queue: int = 256, name: str = "rag-cpu") -> None:
        self.workers = workers
        self.capacity = workers + max_queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._pending = 0

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished (running + queued)."""
        return self._pending

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if self._pending >= self.capacity:
            raise OverloadedError("the gateway is at capacity; retry shortly", retry_after=1.0)
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        finally:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
