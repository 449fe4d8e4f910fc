"""HTTP routes: ``POST /rag``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from rag_gateway.api.cancellation import ClientDisconnectedError, run_for_client
from rag_gateway.api.dependencies import PipelineDep, SettingsDep
from rag_gateway.api.request_id import current_request_id
from rag_gateway.api.streaming import SSE_HEADERS, rag_sse
from rag_gateway.pipeline import PreparedAnswer, RagResult, RankedSource, StageTimings
from rag_gateway.schemas import ErrorResponse, RagRequest, RagResponse, Source
from rag_gateway.settings import Settings

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


def source_models(sources: Sequence[RankedSource]) -> list[Source]:
    return [
        Source(
            id=source.hit.id,
            collection=source.hit.collection,
            title=source.hit.payload.get("title"),
            link=source.hit.payload.get("link"),
            author=source.hit.payload.get("author_full_name"),
            platform=source.hit.payload.get("platform"),
            score=round(source.score, 6),
        )
        for source in sources
    ]


def source_dicts(prepared: PreparedAnswer) -> list[dict[str, Any]]:
    return [source.model_dump() for source in source_models(prepared.sources)]


def _to_response(result: RagResult) -> RagResponse:
    return RagResponse(
        answer=result.answer,
        sources=source_models(result.sources),
        author_filter=result.author,
        queries=result.queries,
        timings_ms=result.timings_ms,
        degraded=result.degraded,
        request_id=current_request_id(),
    )


def _invalid(field: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": field, "msg": message, "type": "value_error"}])


@dataclass(frozen=True, slots=True)
class RagCall:
    """A validated question with its deadline, as both faces (/rag and /v1/chat/completions) run it."""

    query: str
    k: int
    timeout_s: float
    started: float
    timings: StageTimings

    def remaining_s(self) -> float:
        """What is left of the deadline (for the generation that follows retrieval)."""
        return self.timeout_s - (time.monotonic() - self.started)


def begin_rag_call(
    request: Request,
    query: str,
    k: int | None,
    settings: Settings,
    timeout_header: str | None,
    query_loc: tuple[str | int, ...] = ("body", "query"),
) -> RagCall:
    """Check what the schema cannot (MAX_QUERY_CHARS is a setting; X-Request-Timeout), then start the clock.

    Raises 422 before anything is recorded, so bad input changes nothing.
    """
    if len(query) > settings.max_query_chars:
        raise _invalid(query_loc, f"query is longer than {settings.max_query_chars} characters")
    timeout_s = request_timeout_s(timeout_header, settings.request_timeout_s)
    request.state.query = query
    return RagCall(query, k or settings.default_top_k, timeout_s, time.monotonic(), request.state.timings)


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


#: One server-sent event, as OpenAPI 3.2 describes them (event name + JSON-encoded data line).
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["sources", "token", "done", "error"]},
        "data": {"type": "string", "description": "JSON"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


def wants_stream(body_stream: bool, accept: str | None) -> bool:
    return body_stream or "text/event-stream" in (accept or "")


@router.post(
    "/rag",
    response_model=RagResponse,
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "The answer as JSON; or, with `stream: true` / `Accept: text/event-stream`, "
            "server-sent events: `sources`, then `token`s, then `done` (or `error`).",
            "content": {"text/event-stream": {"itemSchema": SSE_EVENT_SCHEMA, "schema": SSE_EVENT_SCHEMA}},
        },
    },
    summary="Answer a question with RAG",
)
async def rag(
    body: RagRequest,
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    x_request_timeout: Annotated[str | None, Header(description="Seconds; lowers the deadline.")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> RagResponse | Response:
    """Self-query + expansion, retrieval over every collection, reranking, then the LLM's answer."""
    call = begin_rag_call(request, body.query, body.k, settings, x_request_timeout)
    try:
        if wants_stream(body.stream, accept):
            prepared = await run_for_client(
                request, pipeline.prepare(call.query, call.k, call.timings), call.timeout_s
            )
            request.state.degraded = prepared.degraded
            events = rag_sse(
                pipeline.llm, prepared, call.timings, call.remaining_s(), current_request_id(), source_dicts
            )
            return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
        result = await run_for_client(request, pipeline.run(call.query, call.k, call.timings), call.timeout_s)
    except ClientDisconnectedError:
        return Response(status_code=499)  # nobody is listening; nothing is sent
    request.state.degraded = result.degraded
    return _to_response(result)
