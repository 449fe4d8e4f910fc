"""What one request's run of the pipeline did, as one typed object every layer reads.

The access middleware makes a `RequestOutcome` when a request arrives; the route hands it to the pipeline,
which records each stage's time, each optional step it had to skip, and what query understanding decided.
The route renders the response from it, and the access middleware turns it into ``Server-Timing``, the
stage histograms and the access log line, so every face (JSON, SSE, OpenAI, OpenAI stream) reports alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
logger = logging.getLogger("rag_gateway.rag.pipeline")


@dataclass
class StageTimings:
    """Wall-clock milliseconds per pipeline stage, for the response and the logs."""

    ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - start) * 1000, 2)

    async def timed(self, name: str, awaitable: Awaitable[T]) -> T:
        with self.stage(name):
            return await awaitable


@dataclass
class RequestOutcome:
    """One request's bookkeeping: timings, skipped steps, the question and what retrieval made of it."""

    timings: StageTimings = field(default_factory=StageTimings)
    #: Optional steps that failed and were skipped (e.g. ``expand``, ``search:embedded_posts``, ``rerank``).
    degraded: list[str] = field(default_factory=list)
    query: str | None = None
    author: str | None = None
    queries: list[str] = field(default_factory=list)
    #: The retrieval profile the request was searched with (RETRIEVAL_PROFILE: standard or large).
    profile: str | None = None
    _started: float | None = None

    def begin(self, query: str) -> None:
        """The pipeline starts on ``query``: the clock for the ``total`` stage starts here."""
        self.query = query
        self._started = time.perf_counter()

    def finish(self) -> None:
        """The answer is complete: record ``total`` (retrieval and generation, streamed or not)."""
        if self._started is not None:
            self.timings.ms["total"] = round((time.perf_counter() - self._started) * 1000, 2)

    def skip(self, step: str, reason: str) -> None:
        """Note an optional step the answer goes without: a warning with the reason, and ``degraded``."""
        logger.warning(
            "degraded answer: skipped %s (%s)", step, reason, extra={"step": step, "reason": reason}
        )
        self.degraded.append(step)
