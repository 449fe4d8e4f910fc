"""Server-sent events for ``POST /rag`` with ``"stream": true``: the pipeline's stream, rendered.

Retrieval runs before the response starts, so its failures still get their proper HTTP status. The stream
then carries ``sources`` (as soon as they are known), ``token`` events as the LLM produces them, and ``done``;
a failure mid-answer becomes an ``error`` event and the stream ends cleanly. When the client disconnects,
Starlette cancels the generator, and closing the upstream stream stops the generation.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi.sse import format_sse_event
from pydantic import BaseModel, Field

from rag_gateway.api.schemas import RetrievalTrace, Source, Usage, usage
from rag_gateway.errors import GatewayError, error_body
from rag_gateway.llm.base import StreamEnd, StreamEvent, TokenDelta
from rag_gateway.rag.outcome import RequestOutcome

logger = logging.getLogger("rag_gateway.api")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

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


class SourcesEvent(BaseModel):
    """``event: sources``, first: what the answer will cite, before the first token."""

    sources: list[Source]
    author_filter: str | None
    queries: list[str]
    degraded: list[str]
    request_id: str
    trace: RetrievalTrace | None = Field(None, description="With `debug: true` only.")


class TokenEvent(BaseModel):
    """``event: token``: the next piece of the answer (the appended citations come as one last token)."""

    text: str


class DoneEvent(BaseModel):
    """``event: done``, last: the answer is complete."""

    finish_reason: str | None = Field(
        description="The LLM's own reason: TGI's eos_token, stop_sequence or length (an OpenAI-compatible "
        "backend's stop or length)."
    )
    generated_tokens: int | None
    usage: Usage
    timings_ms: dict[str, float]
    request_id: str


#: The data of ``event: error``: the API's error shape (see `rag_gateway.api.schemas.ErrorResponse`).
SSE_EVENTS: dict[str, str] = {
    "sources": "SourcesEvent",
    "token": "TokenEvent",
    "done": "DoneEvent",
    "error": "ErrorResponse",
}
SSE_MODELS: tuple[type[BaseModel], ...] = (SourcesEvent, TokenEvent, DoneEvent)


def sse(event: str | None, data: Any) -> bytes:
    return format_sse_event(event=event, data_str=orjson.dumps(data).decode())


def stream_error(exc: GatewayError, request_id: str, *, openai_shape: bool = False) -> dict[str, Any]:
    """A failure after the response started, in the API's one error shape (OpenAI's on ``/v1``)."""
    logger.warning("stream ended with %s (%s)", exc.error_type, exc.upstream)
    return error_body(
        exc.error_type, exc.message, request_id, param=exc.param, code=exc.code, openai_shape=openai_shape
    )


async def rag_sse(
    events: AsyncIterator[StreamEvent],
    sources: list[Source],
    outcome: RequestOutcome,
    request_id: str,
    trace: RetrievalTrace | None = None,
    suffix: str = "",
) -> AsyncIterator[bytes]:
    first: dict[str, Any] = {
        "sources": [source.model_dump() for source in sources],
        "author_filter": outcome.author,
        "queries": outcome.queries,
        "degraded": outcome.degraded,
        "request_id": request_id,
    }
    if trace is not None:
        first["trace"] = trace.model_dump()
    yield sse("sources", first)
    end: StreamEnd | None = None
    try:
        async for event in events:
            if isinstance(event, TokenDelta):
                yield sse("token", {"text": event.text})
            else:
                end = event
    except GatewayError as exc:
        yield sse("error", stream_error(exc, request_id))
        return
    if suffix:
        yield sse("token", {"text": suffix})
    yield sse(
        "done",
        {
            "finish_reason": end.finish_reason if end else None,
            "generated_tokens": end.generated_tokens if end else None,
            "usage": usage(
                end.prompt_tokens if end else None, end.generated_tokens if end else None
            ).model_dump(),
            "timings_ms": outcome.timings.ms,
            "request_id": request_id,
        },
    )
