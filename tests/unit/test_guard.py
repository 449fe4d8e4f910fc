"""UpstreamGuard: retries only retryable errors, within max attempts and the deadline; feeds the breaker.

Tenacity's sleep is replaced by a recorder, so nothing here sleeps.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import pytest
import tenacity

from rag_gateway.errors import (
    GatewayError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from rag_gateway.resilience import guard as guard_module
from rag_gateway.resilience.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from rag_gateway.resilience.deadline import deadline_scope
from rag_gateway.resilience.guard import RetryPolicy, UpstreamGuard


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.retries: list[GatewayError] = []
        self.failures: list[GatewayError] = []

    def on_retry(self, upstream: str, exc: GatewayError) -> None:
        self.retries.append(exc)

    def on_failure(self, upstream: str, exc: GatewayError) -> None:
        self.failures.append(exc)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(
        guard_module, "AsyncRetrying", functools.partial(tenacity.AsyncRetrying, sleep=fake_sleep)
    )
    return recorded


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def observer() -> Recorder:
    return Recorder()


def make_guard(
    clock: FakeClock,
    observer: Recorder | None = None,
    *,
    max_attempts: int = 3,
    threshold: int = 5,
    base_delay_s: float = 0.1,
) -> UpstreamGuard:
    breaker = CircuitBreaker("up", failure_threshold=threshold, reset_timeout_s=30.0, clock=clock)
    policy = RetryPolicy(max_attempts=max_attempts, base_delay_s=base_delay_s, max_delay_s=2.0)
    return UpstreamGuard("up", policy, breaker, observer)


def scripted(*outcomes: GatewayError | BaseException | str) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A call that raises or returns the given outcomes in turn (the last one repeats)."""
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return call, calls


def unavailable(retry_after: float | None = None) -> UpstreamUnavailableError:
    return UpstreamUnavailableError("busy", upstream="up", retryable=True, retry_after=retry_after)


async def test_success_needs_one_attempt(sleeps: list[float], clock: FakeClock) -> None:
    call, calls = scripted("ok")
    assert await make_guard(clock).call(call) == "ok"
    assert len(calls) == 1
    assert sleeps == []


async def test_a_call_that_succeeds_at_once_never_builds_the_retry_machinery(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    def no_tenacity(*args: object, **kwargs: object) -> None:
        raise AssertionError("tenacity built for a call that needed no retry")

    monkeypatch.setattr(guard_module, "AsyncRetrying", no_tenacity)
    call, calls = scripted("ok")
    assert await make_guard(clock).call(call) == "ok"
    not_retryable = UpstreamBadResponseError("bad", upstream="up")
    with pytest.raises(UpstreamBadResponseError):
        await make_guard(clock).call(scripted(not_retryable)[0])
    assert len(calls) == 1


async def test_retryable_error_is_retried_until_success(
    sleeps: list[float], clock: FakeClock, observer: Recorder
) -> None:
    first, second = unavailable(), UpstreamTimeoutError("slow", upstream="up", retryable=True)
    call, calls = scripted(first, second, "ok")
    guard = make_guard(clock, observer)
    assert await guard.call(call) == "ok"
    assert len(calls) == 3
    assert observer.retries == [first, second]
    assert observer.failures == [first, second]
    # equal jitter on exponential backoff: [base/2, base], then [base, 2 * base]
    assert len(sleeps) == 2
    assert 0.05 <= sleeps[0] <= 0.1
    assert 0.1 <= sleeps[1] <= 0.2
    assert guard.breaker.state is BreakerState.CLOSED


async def test_gives_up_after_max_attempts_with_the_last_error(sleeps: list[float], clock: FakeClock) -> None:
    errors = [unavailable(), unavailable(), unavailable(), unavailable()]
    call, calls = scripted(*errors)
    with pytest.raises(UpstreamUnavailableError) as info:
        await make_guard(clock, max_attempts=3).call(call)
    assert len(calls) == 3
    assert info.value is errors[2]
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "error",
    [
        UpstreamBadResponseError("generation failed", upstream="up"),
        UpstreamTimeoutError("read timeout", upstream="up"),  # not retryable: may still be generating
        UpstreamBadResponseError("bad request", upstream="up", counts_as_upstream_failure=False),
    ],
)
async def test_non_retryable_error_is_raised_at_once(
    error: GatewayError, sleeps: list[float], clock: FakeClock
) -> None:
    call, calls = scripted(error, "ok")
    with pytest.raises(GatewayError) as info:
        await make_guard(clock).call(call)
    assert info.value is error
    assert len(calls) == 1
    assert sleeps == []


async def test_exceptions_that_are_not_gateway_errors_are_not_retried(
    sleeps: list[float], clock: FakeClock
) -> None:
    call, calls = scripted(RuntimeError("bug"), "ok")
    guard = make_guard(clock, threshold=1)
    with pytest.raises(RuntimeError):
        await guard.call(call)
    assert len(calls) == 1
    assert guard.breaker.state is BreakerState.CLOSED


async def test_wait_is_at_least_the_upstreams_retry_after(sleeps: list[float], clock: FakeClock) -> None:
    call, _ = scripted(unavailable(retry_after=1.5), "ok")
    assert await make_guard(clock).call(call) == "ok"
    assert sleeps == [1.5]


async def test_no_retry_that_cannot_finish_before_the_deadline(sleeps: list[float], clock: FakeClock) -> None:
    call, calls = scripted(unavailable(retry_after=5.0), "ok")
    with deadline_scope(2.0), pytest.raises(UpstreamUnavailableError):
        await make_guard(clock).call(call)
    assert len(calls) == 1
    assert sleeps == []


async def test_retries_within_the_deadline(sleeps: list[float], clock: FakeClock) -> None:
    call, calls = scripted(unavailable(retry_after=0.5), "ok")
    with deadline_scope(60.0):
        assert await make_guard(clock).call(call) == "ok"
    assert len(calls) == 2


async def test_backoff_past_the_deadline_stops(sleeps: list[float], clock: FakeClock) -> None:
    call, calls = scripted(unavailable(), "ok")
    with deadline_scope(0.4), pytest.raises(UpstreamUnavailableError):
        await make_guard(clock, base_delay_s=1.0).call(call)  # the first wait is 0.5..1.0 s
    assert len(calls) == 1


async def test_failures_open_the_circuit_then_it_fails_fast_with_503(
    sleeps: list[float], clock: FakeClock, observer: Recorder
) -> None:
    guard = make_guard(clock, observer, max_attempts=3, threshold=3)
    call, calls = scripted(unavailable())
    with pytest.raises(UpstreamUnavailableError):
        await guard.call(call)
    assert len(calls) == 3
    assert guard.breaker.state is BreakerState.OPEN

    probe, probe_calls = scripted("ok")
    with pytest.raises(CircuitOpenError) as info:
        await guard.call(probe)
    assert probe_calls == []  # the upstream is not called at all
    assert info.value.status_code == 503
    assert info.value.retry_after is not None and info.value.retry_after >= 1
    assert len(sleeps) == 2  # only the first call's retries; the open circuit is not retried
    assert len(observer.failures) == 3  # the fail-fast is not the upstream's failure


async def test_half_open_probe_success_closes_the_circuit(sleeps: list[float], clock: FakeClock) -> None:
    guard = make_guard(clock, max_attempts=1, threshold=1)
    failing, _ = scripted(unavailable())
    with pytest.raises(UpstreamUnavailableError):
        await guard.call(failing)
    assert guard.breaker.state is BreakerState.OPEN
    clock.now += 30.0
    probe, calls = scripted("ok")
    assert await guard.call(probe) == "ok"
    assert len(calls) == 1
    assert guard.breaker.state is BreakerState.CLOSED


async def test_failures_that_are_not_the_upstreams_do_not_open_the_circuit(
    sleeps: list[float], clock: FakeClock, observer: Recorder
) -> None:
    guard = make_guard(clock, observer, threshold=2)
    rejected = UpstreamBadResponseError("bad request", upstream="up", counts_as_upstream_failure=False)
    for _ in range(5):
        call, _ = scripted(rejected)
        with pytest.raises(UpstreamBadResponseError):
            await guard.call(call)
    assert guard.breaker.state is BreakerState.CLOSED
    assert len(observer.failures) == 5  # still visible in metrics


async def test_a_rejected_request_resets_the_consecutive_failure_count(
    sleeps: list[float], clock: FakeClock
) -> None:
    guard = make_guard(clock, max_attempts=1, threshold=2)
    counted = UpstreamBadResponseError("5xx", upstream="up")
    rejected = UpstreamBadResponseError("4xx", upstream="up", counts_as_upstream_failure=False)
    for error in (counted, rejected, counted):
        call, _ = scripted(error)
        with pytest.raises(UpstreamBadResponseError):
            await guard.call(call)
    assert guard.breaker.state is BreakerState.CLOSED
    call, _ = scripted(counted)
    with pytest.raises(UpstreamBadResponseError):
        await guard.call(call)
    assert guard.breaker.state is BreakerState.OPEN
