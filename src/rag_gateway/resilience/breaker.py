"""A small circuit breaker (closed -> open -> half-open) per upstream.

Written here rather than taken from a library: the maintained Python breakers are either sync-first
(pybreaker) or bring their own storage and event machinery; what the gateway needs is ~50 lines, async-safe
on one event loop, with an injectable clock so tests never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from rag_gateway.errors import UpstreamUnavailableError


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(UpstreamUnavailableError):
    """Raised without calling the upstream while its breaker is open."""

    error_type = "upstream_unavailable"


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after ``reset_timeout_s``, one probe."""

    def __init__(
        self,
        name: str,
        failure_threshold: int,
        reset_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._reset_timeout_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def retry_after_s(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._reset_timeout_s - (self._clock() - self._opened_at))

    def before_call(self) -> None:
        """Raise `CircuitOpenError` unless a call may go through now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True  # exactly one probe; the rest still fail fast
            return
        raise CircuitOpenError(
            f"the {self.name} upstream is failing; retry later",
            upstream=self.name,
            retry_after=max(1.0, self.retry_after_s()),
        )

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._probe_in_flight or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._probe_in_flight = False
