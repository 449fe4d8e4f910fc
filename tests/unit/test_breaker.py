"""CircuitBreaker: closed -> open after the threshold -> half-open (one probe) after the reset timeout."""

from __future__ import annotations

import pytest

from rag_gateway.errors import UpstreamUnavailableError
from rag_gateway.resilience.breaker import BreakerState, CircuitBreaker, CircuitOpenError


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("openai", failure_threshold=3, reset_timeout_s=10.0, clock=clock)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure()


def test_starts_closed_and_lets_calls_through(breaker: CircuitBreaker) -> None:
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    assert breaker.retry_after_s() == 0.0


def test_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


def test_opens_at_the_threshold_and_fails_fast(breaker: CircuitBreaker) -> None:
    fail(breaker, 3)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    error = info.value
    assert isinstance(error, UpstreamUnavailableError)
    assert error.status_code == 503
    assert error.upstream == "openai"
    assert not error.retryable
    assert error.retry_after == pytest.approx(10.0)


def test_only_consecutive_failures_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.record_success()
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


def test_retry_after_counts_down_and_is_at_least_one_second(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.advance(4.0)
    assert breaker.retry_after_s() == pytest.approx(6.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.retry_after == pytest.approx(6.0)
    clock.advance(5.5)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.retry_after == 1.0  # 0.5 s left, but Retry-After is at least a second


def test_half_open_after_the_reset_timeout_lets_exactly_one_probe(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.advance(9.99)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.01)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.retry_after_s() == 0.0
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # everybody else still fails fast


def test_probe_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10.0)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.before_call()
    fail(breaker, 2)  # the failure count starts over
    assert breaker.state is BreakerState.CLOSED


def test_probe_failure_reopens_for_a_full_timeout(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(15.0)
    breaker.before_call()
    breaker.record_failure()  # one failure is enough while half-open
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after_s() == pytest.approx(10.0)
    clock.advance(10.0)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # a new probe is allowed


def test_threshold_of_one(clock: FakeClock) -> None:
    breaker = CircuitBreaker("llm", failure_threshold=1, reset_timeout_s=2.0, clock=clock)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.upstream == "llm"
