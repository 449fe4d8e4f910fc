"""Optional API-key auth and per-key rate limiting (off until API_KEYS_SHA256 is set).

Keys are stored only as SHA-256 digests and compared in constant time. Each key gets a token bucket:
RATE_LIMIT_PER_MINUTE requests per minute with a burst of RATE_LIMIT_BURST; past it, 429 + Retry-After.
Probes, metrics and the API docs stay open.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from rag_gateway.api.middleware.admission import send_error

OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
)
#: The files /docs and /redoc load (Swagger UI, ReDoc): as open as the pages.
OPEN_PREFIX = "/docs/assets/"


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIX)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0 when a request may pass; otherwise seconds until one may."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate_per_s


class ApiKeyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        key_digests: Sequence[str],
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.digests = [d.strip().lower() for d in key_digests if d.strip()]
        self.rate_per_s = per_minute / 60
        self.burst = burst
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}

    def _match(self, presented: str) -> str | None:
        candidate = digest(presented)
        found = None
        for stored in self.digests:  # every digest is compared, so timing does not reveal which matched
            if hmac.compare_digest(candidate, stored):
                found = stored
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.digests or _open(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorization = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value.decode("latin-1")
        scheme, _, token = authorization.partition(" ")
        key = self._match(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if key is None:
            await send_error(
                send,
                401,
                "unauthorized",
                "a valid API key is required (Authorization: Bearer <key>)",
                openai_shape=scope["path"].startswith("/v1/"),
            )
            return
        now = self.clock()
        bucket = self.buckets.setdefault(key, TokenBucket(self.rate_per_s, self.burst, self.burst, now))
        wait_s = bucket.take(now)
        if wait_s > 0:
            await send_error(
                send,
                429,
                "rate_limited",
                "too many requests for this API key",
                retry_after=wait_s,
                openai_shape=scope["path"].startswith("/v1/"),
            )
            return
        await self.app(scope, receive, send)
