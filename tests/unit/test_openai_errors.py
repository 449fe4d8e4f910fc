"""map_openai_error with real openai SDK exception objects (the SDK's transport types are httpx2)."""

from __future__ import annotations

import aiohttp
import httpx2
import openai
import pytest

from rag_gateway.clients.openai import map_openai_error
from rag_gateway.errors import (
    GatewayError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

URL = "https://api.openai.example/v1/chat/completions"
SECRET = "sk-secret-key-in-the-error"
STEP = "self-query"

STATUS_CLASSES: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
    500: openai.InternalServerError,
    502: openai.InternalServerError,
    503: openai.InternalServerError,
}


def request() -> httpx2.Request:
    return httpx2.Request("POST", URL)


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    body = {"error": {"message": f"failed: {SECRET}", "type": "server_error", "code": None}}
    response = httpx2.Response(status, headers=headers, json=body, request=request())
    cls = STATUS_CLASSES.get(status, openai.APIStatusError)
    return cls(f"Error code: {status} - {SECRET}", response=response, body=body["error"])


def timeout_error(cause: BaseException | None = None) -> openai.APITimeoutError:
    exc = openai.APITimeoutError(request=request())
    exc.__cause__ = cause
    return exc


def test_the_sdk_objects_are_what_the_tests_think() -> None:
    exc = status_error(429, {"retry-after": "2"})
    assert isinstance(exc, openai.APIStatusError)
    assert exc.status_code == 429
    assert exc.response.headers["retry-after"] == "2"


@pytest.mark.parametrize(("header", "expected"), [("2", 2.0), ("1.5", 1.5), ("later", None), ("-1", None)])
def test_429_is_retryable_503_with_retry_after(header: str, expected: float | None) -> None:
    error = map_openai_error(status_error(429, {"retry-after": header}), STEP)
    assert isinstance(error, UpstreamUnavailableError)
    assert error.status_code == 503
    assert error.retryable
    assert error.counts_as_upstream_failure
    assert error.retry_after == expected
    assert error.upstream == "openai"


def test_429_with_http_date_retry_after() -> None:
    error = map_openai_error(status_error(429, {"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"}), STEP)
    assert error.retry_after is not None
    assert error.retry_after > 0


def test_503_without_retry_after() -> None:
    error = map_openai_error(status_error(503), STEP)
    assert isinstance(error, UpstreamUnavailableError)
    assert error.retryable
    assert error.retry_after is None


@pytest.mark.parametrize("status", [500, 502])
def test_5xx_is_a_retryable_bad_response(status: int) -> None:
    error = map_openai_error(status_error(status), STEP)
    assert type(error) is UpstreamBadResponseError
    assert error.status_code == 502
    assert error.retryable
    assert error.counts_as_upstream_failure
    assert f"HTTP {status}" in error.message


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_count_against_the_breaker_but_are_not_retried(status: int) -> None:
    error = map_openai_error(status_error(status), STEP)
    assert type(error) is UpstreamBadResponseError
    assert not error.retryable
    assert error.counts_as_upstream_failure


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_is_the_requests_fault(status: int) -> None:
    error = map_openai_error(status_error(status), STEP)
    assert type(error) is UpstreamBadResponseError
    assert not error.retryable
    assert not error.counts_as_upstream_failure


def test_connection_error_is_retryable_503() -> None:
    error = map_openai_error(openai.APIConnectionError(request=request()), STEP)
    assert isinstance(error, UpstreamUnavailableError)
    assert error.retryable
    assert error.counts_as_upstream_failure


def test_timeout_is_retryable_504() -> None:
    error = map_openai_error(timeout_error(), STEP)
    assert isinstance(error, UpstreamTimeoutError)
    assert error.status_code == 504
    assert error.retryable


def test_timeout_caused_by_an_aiohttp_timeout_is_still_a_timeout() -> None:
    error = map_openai_error(timeout_error(aiohttp.ServerTimeoutError("read timed out")), STEP)
    assert isinstance(error, UpstreamTimeoutError)


def test_dropped_connection_reported_as_timeout_is_unavailable() -> None:
    # the aiohttp transport maps every ClientConnectionError to a connect timeout; the cause tells
    error = map_openai_error(timeout_error(aiohttp.ServerDisconnectedError()), STEP)
    assert isinstance(error, UpstreamUnavailableError)
    assert error.retryable


def test_other_sdk_errors_are_unusable_answers() -> None:
    error = map_openai_error(openai.OpenAIError(SECRET), STEP)
    assert type(error) is UpstreamBadResponseError
    assert not error.retryable
    assert "unusable" in error.message


@pytest.mark.parametrize(
    "exc",
    [
        status_error(429),
        status_error(500),
        status_error(400),
        openai.APIConnectionError(message=SECRET, request=request()),
        openai.OpenAIError(SECRET),
    ],
)
def test_message_names_the_step_and_hides_the_sdk_text(exc: openai.OpenAIError) -> None:
    error = map_openai_error(exc, STEP)
    assert error.message.startswith(f"{STEP}: ")
    assert SECRET not in error.message
    assert URL not in error.message


# --- the keywords: the caller gets the right object built once -----------------------------------------


ALL_ERRORS: list[openai.OpenAIError] = [
    status_error(429, {"retry-after": "1"}),
    status_error(503),
    status_error(500),
    status_error(401),
    status_error(400),
    openai.APIConnectionError(request=request()),
    timeout_error(),
    openai.OpenAIError("x"),
]


@pytest.mark.parametrize("exc", ALL_ERRORS)
def test_upstream_keyword_names_the_upstream(exc: openai.OpenAIError) -> None:
    assert map_openai_error(exc, STEP, upstream="llm").upstream == "llm"


def test_retry_bad_response_false_stops_retrying_5xx() -> None:
    error = map_openai_error(status_error(500), STEP, upstream="llm", retry_bad_response=False)
    assert type(error) is UpstreamBadResponseError
    assert not error.retryable
    assert error.counts_as_upstream_failure  # still a failing upstream for the breaker


@pytest.mark.parametrize(
    "exc",
    [
        status_error(429, {"retry-after": "1"}),
        status_error(503),
        openai.APIConnectionError(request=request()),
        timeout_error(),
    ],
)
def test_retry_bad_response_false_keeps_transient_failures_retryable(exc: openai.OpenAIError) -> None:
    assert map_openai_error(exc, STEP, retry_bad_response=False).retryable


@pytest.mark.parametrize("exc", ALL_ERRORS)
def test_keywords_change_nothing_else(exc: openai.OpenAIError) -> None:
    default = map_openai_error(exc, STEP)
    custom = map_openai_error(exc, STEP, upstream="llm", retry_bad_response=False)
    assert type(custom) is type(default)
    assert (custom.message, custom.retry_after, custom.counts_as_upstream_failure) == (
        default.message,
        default.retry_after,
        default.counts_as_upstream_failure,
    )


def test_generation_errors_are_built_for_the_llm_upstream() -> None:
    from rag_gateway.llm.openai_compatible import _generation_error

    bad = _generation_error(status_error(500))
    assert isinstance(bad, UpstreamBadResponseError)
    assert (bad.upstream, bad.retryable) == ("llm", False)
    busy: GatewayError = _generation_error(status_error(429))
    assert (busy.upstream, busy.retryable) == ("llm", True)
