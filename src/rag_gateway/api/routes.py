"""HTTP routes: ``POST /rag``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError

from rag_gateway.api.cancellation import ClientDisconnectedError, run_for_client
from rag_gateway.api.dependencies import PipelineDep, SettingsDep
from rag_gateway.api.request_id import current_request_id
from rag_gateway.pipeline import RagResult
from rag_gateway.schemas import ErrorResponse, RagRequest, RagResponse, Source

router = APIRouter()

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be decoded (e.g. not UTF-8)."},
    413: {"model": ErrorResponse, "description": "The request body is larger than MAX_BODY_BYTES."},
    415: {"model": ErrorResponse, "description": "The request body is not application/json."},
    422: {"model": ErrorResponse, "description": "Invalid request (nothing upstream was called)."},
    502: {"model": ErrorResponse, "description": "An upstream answered with an error or an unusable body."},
    503: {
        "model": ErrorResponse,
        "description": "An upstream is unreachable, overloaded, throttling or its circuit is open; or the "
        "gateway is at capacity. Retry-After says when to try again.",
    },
    504: {"model": ErrorResponse, "description": "An upstream or the request's deadline timed out."},
}


def _to_response(result: RagResult) -> RagResponse:
    return RagResponse(
        answer=result.answer,
        sources=[
            Source(
                id=source.hit.id,
                collection=source.hit.collection,
                title=source.hit.payload.get("title"),
                link=source.hit.payload.get("link"),
                author=source.hit.payload.get("author_full_name"),
                platform=source.hit.payload.get("platform"),
                score=round(source.score, 6),
            )
            for source in result.sources
        ],
        author_filter=result.author,
        queries=result.queries,
        timings_ms=result.timings_ms,
        degraded=result.degraded,
        request_id=current_request_id(),
    )


def _invalid(field: tuple[str, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": field, "msg": message, "type": "value_error"}])


def request_timeout_s(header: str | None, settings_timeout_s: float) -> float:
    """The client's X-Request-Timeout when it asks for less than the configured deadline; never more."""
    if header is None:
        return settings_timeout_s
    try:
        asked = float(header)
    except ValueError:
        raise _invalid(("header", "x-request-timeout"), "must be a number of seconds") from None
    if not 0 < asked < float("inf"):
        raise _invalid(("header", "x-request-timeout"), "must be a positive number of seconds")
    return min(asked, settings_timeout_s)


@router.post(
    "/rag", response_model=RagResponse, responses=ERROR_RESPONSES, summary="Answer a question with RAG"
)
async def rag(
    body: RagRequest,
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    x_request_timeout: Annotated[str | None, Header(description="Seconds; lowers the deadline.")] = None,
) -> RagResponse | Response:
    """Self-query + expansion, retrieval over every collection, reranking, then the LLM's answer."""
    if len(body.query) > settings.max_query_chars:
        raise _invalid(("body", "query"), f"query is longer than {settings.max_query_chars} characters")
    timeout_s = request_timeout_s(x_request_timeout, settings.request_timeout_s)
    k = body.k or settings.default_top_k
    try:
        result = await run_for_client(request, pipeline.run(body.query, k), timeout_s)
    except ClientDisconnectedError:
        return Response(status_code=499)  # nobody is listening; nothing is sent
    return _to_response(result)
