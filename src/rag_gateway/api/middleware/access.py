"""Per-request bookkeeping: a `RequestOutcome` in; `Server-Timing`, metrics and one access line out.

The middleware puts a `RequestOutcome` in the request scope; the route hands it to the pipeline, which fills
it. When the response starts, the stages known so far become ``Server-Timing``; when the request ends (a
stream's last event included), they feed the latency histograms and the JSON access log line.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_gateway.observability.metrics import Metrics
from rag_gateway.rag.outcome import RequestOutcome

logger = logging.getLogger("rag_gateway.access")


def server_timing(timings_ms: dict[str, float]) -> str:
    return ", ".join(f"{stage};dur={ms:.2f}" for stage, ms in timings_ms.items())


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"  # never the raw path: unbounded label values


class AccessMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, log_queries: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.log_queries = log_queries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        outcome = RequestOutcome()
        timings = outcome.timings
        scope.setdefault("state", {})["outcome"] = outcome
        started = time.perf_counter()
        status = 500

        async def send_with_timing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if timings.ms:
                    headers = list(message.get("headers", []))
                    headers.append((b"server-timing", server_timing(timings.ms).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(elapsed)
            self.metrics.observe_stages(timings.ms)
            degraded = outcome.degraded
            for step in degraded:
                self.metrics.degraded.labels(step).inc()
            extra: dict[str, object] = {
                "event": "access",
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "stages": timings.ms,
                "degraded": degraded,
            }
            if self.log_queries and outcome.query is not None:
                extra["query"] = outcome.query
            logger.info("%s %s %s", scope["method"], route, status, extra=extra)
