"""Render every expected failure as ``{"error": {"type", "message"}, "request_id"}``.

On the OpenAI-compatible routes (``/v1/...``) the error object has OpenAI's four fields, ``message``,
``type``, ``param`` (the request field at fault, or null) and ``code``, and still the ``request_id``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_gateway.api.middleware.request_id import current_request_id
from rag_gateway.errors import GatewayError, error_body, retry_after_header

logger = logging.getLogger("rag_gateway.api")


OPENAI_PREFIX = "/v1/"


def error_response(
    status: int,
    error_type: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    request: Request | None = None,
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    openai_shape = request is not None and request.url.path.startswith(OPENAI_PREFIX)
    body = error_body(
        error_type, message, current_request_id(), param=param, code=code, openai_shape=openai_shape
    )
    return JSONResponse(body, status_code=status, headers=headers)


def param_name(location: Any) -> str | None:
    """A validation error's location as OpenAI names parameters: ``messages[2].content``."""
    name = ""
    for part in location or ():
        if part in ("body", "header", "query"):
            continue
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


def describe_validation_errors(errors: Any) -> str:
    """One readable line: ``query: query must not be blank; k: Input should be ≤ 20``."""
    parts = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p != "body"]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(location) or 'body'}: {message}")
    return "; ".join(parts) or "invalid request"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    param = param_name(errors[0].get("loc")) if errors else None
    return error_response(
        422, "invalid_request", describe_validation_errors(errors), request=request, param=param
    )


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    if exc.status_code < 500 and exc.upstream is None:  # the request itself was refused (bad parameter)
        logger.info("refused: %s (param %s)", exc.code or exc.error_type, exc.param)
        return error_response(
            exc.status_code, exc.error_type, exc.message, request=request, param=exc.param, code=exc.code
        )
    logger.warning(
        "upstream failure: %s (%s)",
        exc.error_type,
        exc.upstream,
        extra={
            "upstream": exc.upstream,
            "cause": type(exc.__cause__).__name__,
        },
    )
    headers = {"Retry-After": retry_after_header(exc.retry_after)} if exc.retry_after else None
    return error_response(
        exc.status_code,
        exc.error_type,
        exc.message,
        headers,
        request=request,
        param=exc.param,
        code=exc.code,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_type = {
        400: "invalid_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }.get(exc.status_code, "http_error")
    # FastAPI's 400 means the body could not be decoded at all (e.g. bytes that are not UTF-8)
    message = "the body could not be decoded as UTF-8 JSON" if exc.status_code == 400 else str(exc.detail)
    return error_response(exc.status_code, error_type, message, dict(exc.headers or {}), request=request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
