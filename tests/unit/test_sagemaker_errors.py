"""map_sagemaker_error and parse_generated_text with real botocore exception objects."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from rag_gateway.errors import (
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from rag_gateway.llm.sagemaker import map_sagemaker_error, parse_generated_text

URL = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/llm/invocations"
SECRET = "AKIA-secret-host.internal"


def client_error(
    code: str,
    *,
    status: int = 400,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": f"detail with {SECRET}"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
        **extra,
    }
    return ClientError(response, "InvokeEndpoint")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "code", ["ModelNotReadyException", "ServiceUnavailable", "ThrottlingException", "Throttling"]
)
def test_busy_or_not_ready_is_retryable_503(code: str) -> None:
    error = map_sagemaker_error(client_error(code, status=429))
    assert isinstance(error, UpstreamUnavailableError)
    assert error.status_code == 503
    assert error.retryable
    assert error.counts_as_upstream_failure
    assert error.upstream == "sagemaker"
    assert error.retry_after is None


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), ("1.5", 1.5), ("soon", None), ("-2", None)])
def test_throttling_retry_after_header(header: str, expected: float | None) -> None:
    error = map_sagemaker_error(
        client_error("ThrottlingException", status=429, headers={"retry-after": header})
    )
    assert isinstance(error, UpstreamUnavailableError)
    assert error.retry_after == expected


def test_throttling_retry_after_http_date_is_read() -> None:
    error = map_sagemaker_error(
        client_error("ThrottlingException", headers={"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"})
    )
    assert error.retry_after is not None
    assert error.retry_after > 0


def test_model_error_client_fault_does_not_count_against_the_breaker() -> None:
    error = map_sagemaker_error(client_error("ModelError", status=424, OriginalStatusCode=400))
    assert isinstance(error, UpstreamBadResponseError)
    assert error.status_code == 502
    assert not error.retryable
    assert not error.counts_as_upstream_failure
    assert "400" in error.message


def test_model_error_server_fault_counts_but_is_not_retried() -> None:
    error = map_sagemaker_error(client_error("ModelError", status=424, OriginalStatusCode=500))
    assert isinstance(error, UpstreamBadResponseError)
    assert not error.retryable  # a retry would regenerate the whole answer
    assert error.counts_as_upstream_failure
    assert "500" in error.message


def test_model_error_without_original_status() -> None:
    error = map_sagemaker_error(client_error("ModelError", status=424))
    assert isinstance(error, UpstreamBadResponseError)
    assert error.counts_as_upstream_failure
    assert "status" not in error.message


def test_validation_error_is_the_requests_fault() -> None:
    error = map_sagemaker_error(client_error("ValidationError"))
    assert isinstance(error, UpstreamBadResponseError)
    assert not error.retryable
    assert not error.counts_as_upstream_failure


def test_unknown_code_is_a_counted_bad_response() -> None:
    error = map_sagemaker_error(client_error("InternalFailure", status=500))
    assert type(error) is UpstreamBadResponseError
    assert not error.retryable
    assert error.counts_as_upstream_failure


def test_read_timeout_is_504_and_not_retried() -> None:
    error = map_sagemaker_error(ReadTimeoutError(endpoint_url=URL))
    assert isinstance(error, UpstreamTimeoutError)
    assert error.status_code == 504
    assert not error.retryable
    assert error.counts_as_upstream_failure


@pytest.mark.parametrize(
    "exc", [EndpointConnectionError(endpoint_url=URL), ConnectTimeoutError(endpoint_url=URL)]
)
def test_unreachable_is_retryable_503(exc: Exception) -> None:
    error = map_sagemaker_error(exc)
    assert isinstance(error, UpstreamUnavailableError)
    assert error.retryable
    assert error.counts_as_upstream_failure


def test_anything_else_is_a_bad_response() -> None:
    error = map_sagemaker_error(RuntimeError(SECRET))
    assert type(error) is UpstreamBadResponseError
    assert not error.retryable


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ThrottlingException"),
        client_error("ModelError", OriginalStatusCode=400),
        client_error("ValidationError"),
        client_error("Whatever"),
        RuntimeError(SECRET),
    ],
)
def test_messages_never_carry_the_sdk_text(exc: Exception) -> None:
    assert SECRET not in map_sagemaker_error(exc).message


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'[{"generated_text": "Paris."}]', "Paris."),
        (b'{"generated_text": "Paris."}', "Paris."),
        (b'[{"generated_text": ""}]', ""),
        ('[{"generated_text": "ünï ✓"}]'.encode(), "ünï ✓"),
    ],
)
def test_parse_generated_text(body: bytes, text: str) -> None:
    assert parse_generated_text(body) == text


def test_unreadable_body() -> None:
    with pytest.raises(UpstreamBadResponseError, match="unreadable"):
        parse_generated_text(b"<html>502 Bad Gateway</html>")


@pytest.mark.parametrize(
    "body",
    [b"[]", b"{}", b'[{"generated_text": 3}]', b'{"error": "boom"}', b'"text"', b"null", b"[1]"],
)
def test_unexpected_body(body: bytes) -> None:
    with pytest.raises(UpstreamBadResponseError, match="unexpected") as info:
        parse_generated_text(body)
    assert info.value.upstream == "sagemaker"
