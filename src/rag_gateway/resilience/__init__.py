"""Keeping a request alive and honest when upstreams misbehave: deadlines, retries, circuit breakers."""

from rag_gateway.resilience.breaker import CircuitBreaker, CircuitOpenError
from rag_gateway.resilience.deadline import deadline_scope, remaining_s
from rag_gateway.resilience.guard import RetryPolicy, UpstreamGuard

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "RetryPolicy",
    "UpstreamGuard",
    "deadline_scope",
    "remaining_s",
]
