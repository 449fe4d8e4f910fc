"""The request setup both faces share (/rag and /v1/chat/completions): the checks the schema cannot make,
then the deadline clock."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi.exceptions import RequestValidationError

from rag_gateway.config import Settings

TIMEOUT_HEADER_DESCRIPTION = (
    "Seconds (a positive number) this request may take end to end; lowers REQUEST_TIMEOUT_S, never "
    "raises it. Past it: 504."
)


def invalid(field: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 naming the field, in the same shape as the schema's own validation errors."""
    return RequestValidationError([{"loc": field, "msg": message, "type": "value_error"}])


@dataclass(frozen=True, slots=True)
class RagCall:
    """A validated question with its deadline."""

    query: str
    k: int
    timeout_s: float
    started: float

    def remaining_s(self) -> float:
        """What is left of the deadline (for the generation that follows retrieval)."""
        return self.timeout_s - (time.monotonic() - self.started)


def begin_rag_call(
    query: str,
    k: int | None,
    settings: Settings,
    timeout_header: float | str | None,
    query_loc: tuple[str | int, ...] = ("body", "query"),
) -> RagCall:
    """Check what the schema cannot (MAX_QUERY_CHARS is a setting; X-Request-Timeout), then start the clock.

    Raises 422 before anything is recorded, so bad input changes nothing.
    """
    if len(query) > settings.max_query_chars:
        raise invalid(query_loc, f"query is longer than {settings.max_query_chars} characters")
    timeout_s = request_timeout_s(timeout_header, settings.request_timeout_s)
    return RagCall(query, k or settings.default_top_k, timeout_s, time.monotonic())


def request_timeout_s(header: float | str | None, settings_timeout_s: float) -> float:
    """The client's X-Request-Timeout when it asks for less than the configured deadline; never more.

    The routes declare the header as a positive finite number, so FastAPI refuses anything else first;
    a string is still checked here for callers that pass the raw header.
    """
    if header is None:
        return settings_timeout_s
    try:
        asked = float(header)
    except ValueError:
        raise invalid(("header", "x-request-timeout"), "must be a number of seconds") from None
    if not 0 < asked < float("inf"):
        raise invalid(("header", "x-request-timeout"), "must be a positive number of seconds")
    return min(asked, settings_timeout_s)
