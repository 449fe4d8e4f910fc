"""Prometheus metrics, on a registry owned by one app (so several apps in one process never collide)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rag_gateway.errors import GatewayError
from rag_gateway.resilience.breaker import BreakerState

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rag_requests", "HTTP requests by route and status.", ["route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "rag_request_duration_seconds",
            "End-to-end request latency.",
            ["route"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "rag_stage_duration_seconds",
            "Latency per pipeline stage (self_query, expand, embed, search, rerank, llm, ...).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "rag_upstream_errors",
            "Failed upstream calls by upstream and kind.",
            ["upstream", "kind"],
            registry=r,
        )
        self.retries = Counter("rag_upstream_retries", "Retried upstream calls.", ["upstream"], registry=r)
        self.degraded = Counter(
            "rag_degraded_answers", "Answers given without an optional step.", ["step"], registry=r
        )
        self.breaker_state = Gauge(
            "rag_circuit_breaker_state",
            "Circuit state: 0 closed, 1 half-open, 2 open.",
            ["upstream"],
            registry=r,
        )
        self.in_flight = Gauge("rag_in_flight_requests", "Pipeline requests being served.", registry=r)
        self.pool_pending = Gauge("rag_cpu_pool_pending_jobs", "CPU pool jobs running or queued.", registry=r)
        self.embed_queue = Gauge(
            "rag_embed_queue_requests", "Requests whose query texts wait for an embedding thread.", registry=r
        )

    # --- observers the resilience guard calls ---------------------------------------------------------
    def on_retry(self, upstream: str, exc: GatewayError) -> None:
        self.retries.labels(upstream).inc()

    def on_failure(self, upstream: str, exc: GatewayError) -> None:
        self.upstream_errors.labels(upstream, exc.error_type).inc()

    def watch_breaker(self, upstream: str, state: Callable[[], BreakerState]) -> None:
        self.breaker_state.labels(upstream).set_function(lambda: BREAKER_VALUES[state()])

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            if stage != "total":
                self.stage_seconds.labels(stage).observe(ms / 1000)
