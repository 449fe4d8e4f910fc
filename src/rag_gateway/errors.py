"""The gateway's error vocabulary: what went wrong upstream, as the HTTP status a client should see.

Upstream adapters translate their SDK's exceptions into these; the API layer renders them as
``{"error": {"type", "message"}, "request_id"}`` and never shows the original exception's text, which can
carry host names, keys or request bodies.

This module is also the one place that builds those error bodies (`error_body`, `error_json`) and that reads
and writes ``Retry-After`` values (`parse_retry_after`, `retry_after_header`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

#: delta-seconds (RFC 9110 section 10.2.3), leniently with a fraction: "120", "1.5"
_DELTA_SECONDS = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")


def error_body(
    error_type: str,
    message: str,
    request_id: str,
    *,
    param: str | None = None,
    code: str | None = None,
    openai_shape: bool = False,
) -> dict[str, Any]:
    """The body of every error answer: ``{"error": {"type", "message"}, "request_id"}``.

    ``param`` names the request field at fault, when there is one. ``openai_shape`` (the ``/v1`` routes)
    always carries OpenAI's four fields, ``{"message", "type", "param", "code"}``, nulls included, which
    is what OpenAI's SDKs read.
    """
    error: dict[str, Any] = {"type": error_type, "message": message}
    if openai_shape:
        error |= {"param": param, "code": code}
    elif param is not None:
        error["param"] = param
    return {"error": error, "request_id": request_id}


def error_json(error_type: str, message: str, request_id: str, *, openai_shape: bool = False) -> bytes:
    """`error_body` serialised as JSON bytes (for raw ASGI responses)."""
    return orjson.dumps(error_body(error_type, message, request_id, openai_shape=openai_shape))


def parse_retry_after(raw: str | None, *, now: datetime | None = None) -> float | None:
    """An upstream's ``Retry-After`` as seconds to wait, or None when absent or unreadable.

    Accepts delta-seconds (fractions kept: ``"1.5"`` -> 1.5) and HTTP-dates (``Wed, 21 Oct 2015 07:28:00
    GMT``), the latter as seconds from ``now`` (a date in the past gives 0.0). Negative, infinite, NaN or
    otherwise garbled values give None.
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, with no claim about the local zone
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    return max(0.0, (when - reference).total_seconds())


def retry_after_header(seconds: float) -> str:
    """The ``Retry-After`` value to send: whole seconds, rounded up, at least 1.

    (A non-finite value, which `parse_retry_after` never produces, also gives ``"1"``.)
    """
    if not math.isfinite(seconds):
        return "1"
    return str(max(1, math.ceil(seconds)))


class GatewayError(Exception):
    """Base of every error the API renders on purpose."""

    status_code = 500
    error_type = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        upstream: str | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
        counts_as_upstream_failure: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The request field at fault (client errors), and a machine-readable code (OpenAI's ``code``).
        self.param: str | None = None
        self.code: str | None = None
        self.upstream = upstream
        self.retry_after = retry_after
        #: Safe to try again: the upstream did not (or could not have) done the work.
        self.retryable = retryable
        #: Whether the upstream's circuit breaker should count it (a rejected bad request does not).
        self.counts_as_upstream_failure = counts_as_upstream_failure


class InvalidParameterError(GatewayError):
    """A request parameter the gateway cannot honour (400, naming it): never a silent 200 without it."""

    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str, code: str = "unsupported_parameter") -> None:
        super().__init__(message, counts_as_upstream_failure=False)
        self.param = param
        self.code = code


class ModelNotFoundError(GatewayError):
    """The OpenAI face was asked for a model it does not serve (404, as vLLM and OpenAI answer)."""

    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model[:100]}` does not exist; this gateway serves the models /v1/models lists.",
            counts_as_upstream_failure=False,
        )
        self.param = "model"
        self.code = "model_not_found"


class UpstreamBadResponseError(GatewayError):
    """The upstream answered, but with an error or something we cannot use (502)."""

    status_code = 502
    error_type = "upstream_bad_response"


class UpstreamUnavailableError(GatewayError):
    """The upstream is unreachable, overloaded or throttling us (503)."""

    status_code = 503
    error_type = "upstream_unavailable"


class UpstreamTimeoutError(GatewayError):
    """The upstream did not answer in time (504)."""

    status_code = 504
    error_type = "upstream_timeout"


class OverloadedError(GatewayError):
    """The gateway itself is at capacity (503, with Retry-After)."""

    status_code = 503
    error_type = "overloaded"


class DeadlineExceededError(GatewayError):
    """The request's end-to-end deadline passed (504)."""

    status_code = 504
    error_type = "deadline_exceeded"
