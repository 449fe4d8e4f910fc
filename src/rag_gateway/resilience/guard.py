"""One guard per upstream: its circuit breaker plus its retry policy (tenacity), applied around each call.

Which layer retries what: the SDKs make a single attempt (openai ``max_retries=0``, botocore
``total_max_attempts=1``) and this guard owns every retry, so attempts are never multiplied. A call is
retried only when the adapter marked its error ``retryable`` (connection failures, timeouts where a retry is
safe, 429/503 throttling, 5xx) -- never another 4xx nor a model generation error -- with jittered exponential
backoff, at least the upstream's ``Retry-After``, and never past the request's deadline.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from rag_gateway.errors import GatewayError
from rag_gateway.resilience.breaker import CircuitBreaker, CircuitOpenError
from rag_gateway.resilience.deadline import remaining_s

T = TypeVar("T")
logger = logging.getLogger("rag_gateway.resilience")


class GuardObserver(Protocol):
    """Told about every retry and every failed attempt (metrics)."""

    def on_retry(self, upstream: str, exc: GatewayError) -> None: ...

    def on_failure(self, upstream: str, exc: GatewayError) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, GatewayError) and exc.retryable and not isinstance(exc, CircuitOpenError)


class UpstreamGuard:
    def __init__(
        self,
        name: str,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        observer: GuardObserver | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.breaker = breaker
        self._observer = observer

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = min(self.policy.max_delay_s, self.policy.base_delay_s * 2 ** (state.attempt_number - 1))
        jittered = random.uniform(backoff / 2, backoff)  # "equal jitter"
        retry_after = exc.retry_after if isinstance(exc, GatewayError) and exc.retry_after else 0.0
        return max(jittered, retry_after)

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.policy.max_attempts:
            return True
        left = remaining_s()
        # a retry that cannot finish before the deadline only wastes the upstream's capacity
        return left is not None and state.upcoming_sleep >= left

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, GatewayError):
            logger.info(
                "retrying %s after %s (attempt %d, in %.2f s)",
                self.name,
                exc.error_type,
                state.attempt_number,
                state.upcoming_sleep,
            )
            if self._observer is not None:
                self._observer.on_retry(self.name, exc)

    async def _attempt(self, call: Callable[[], Awaitable[T]]) -> T:
        self.breaker.before_call()
        try:
            result = await call()
        except GatewayError as exc:
            if self._observer is not None and not isinstance(exc, CircuitOpenError):
                self._observer.on_failure(self.name, exc)
            if exc.counts_as_upstream_failure:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()  # the upstream answered; the request was the problem
            raise
        self.breaker.record_success()
        return result

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        # Most calls succeed at once: make the first attempt without building tenacity's machinery (a
        # tenth of a millisecond of event-loop CPU per call, docs/performance.md). Only a retryable
        # failure hands over to tenacity, which then sees that failure as its own first attempt.
        try:
            return await self._attempt(call)
        except BaseException as exc:
            if not _is_retryable(exc) or self.policy.max_attempts <= 1:
                raise
            first_failure: BaseException | None = exc

        async def attempt() -> T:
            nonlocal first_failure
            if first_failure is not None:
                failure, first_failure = first_failure, None
                raise failure  # attempt 1, already made (and counted by the breaker) above
            return await self._attempt(call)

        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            wait=self._wait,
            stop=self._stop,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        result: T = await retrying(attempt)
        return result
