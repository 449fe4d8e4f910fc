"""Admission control in front of the routes: what is refused before any work starts.

- More than ``MAX_IN_FLIGHT_REQUESTS`` concurrent pipeline requests: 503 + Retry-After at once, rather than
  an unbounded queue that turns overload into timeouts for everybody.
- A body over ``MAX_BODY_BYTES``: 413, checked on Content-Length and again while the body streams in.
  (Starlette's own limiter answers in plain text on one of those paths; this keeps one error shape.)
- A JSON route called with another content type: 415.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_gateway.api.middleware.request_id import current_request_id
from rag_gateway.errors import error_json, retry_after_header

JSON_ROUTES = frozenset({"/rag", "/v1/chat/completions"})


async def send_error(
    send: Send,
    status: int,
    error_type: str,
    message: str,
    retry_after: float | None = None,
    *,
    openai_shape: bool = False,
) -> None:
    """An error answer sent before the app runs (``openai_shape``: OpenAI's fields, for ``/v1``)."""
    body = error_json(error_type, message, current_request_id(), openai_shape=openai_shape)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after_header(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class InFlight:
    """How many pipeline requests are being served (shared with the metrics gauge)."""

    def __init__(self) -> None:
        self.count = 0


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, in_flight: InFlight, max_in_flight: int, max_body_bytes: int) -> None:
        self.app = app
        self.in_flight = in_flight
        self.max_in_flight = max_in_flight
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in JSON_ROUTES or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        openai_shape = scope["path"].startswith("/v1/")
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            await send_error(
                send,
                415,
                "unsupported_media_type",
                "send the body as application/json",
                openai_shape=openai_shape,
            )
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await send_error(
                send,
                413,
                "payload_too_large",
                f"the body is over {self.max_body_bytes} bytes",
                openai_shape=openai_shape,
            )
            return
        if self.in_flight.count >= self.max_in_flight:
            await send_error(
                send,
                503,
                "overloaded",
                "the gateway is at capacity; retry shortly",
                retry_after=1,
                openai_shape=openai_shape,
            )
            return
        self.in_flight.count += 1
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.in_flight.count -= 1

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises an HTTPException met while reading the body, so the 413 is
                    # rendered by the app's error handler in the usual shape.
                    raise HTTPException(413, f"the body is over {self.max_body_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)
