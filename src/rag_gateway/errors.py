"""The gateway's error vocabulary: what went wrong upstream, as the HTTP status a client should see.

Upstream adapters translate their SDK's exceptions into these; the API layer renders them as
``{"error": {"type", "message"}, "request_id"}`` and never shows the original exception's text, which can
carry host names, keys or request bodies.
"""

from __future__ import annotations


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
        self.upstream = upstream
        self.retry_after = retry_after
        #: Safe to try again: the upstream did not (or could not have) done the work.
        self.retryable = retryable
        #: Whether the upstream's circuit breaker should count it (a rejected bad request does not).
        self.counts_as_upstream_failure = counts_as_upstream_failure


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
