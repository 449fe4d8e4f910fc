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

from rag_gateway.api.schemas import RetrievalTrace, Source
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


def sse(event: str | None, data: Any) -> bytes:
    return format_sse_event(event=event, data_str=orjson.dumps(data).decode())


def stream_error(exc: GatewayError, request_id: str) -> dict[str, Any]:
    """A failure after the response started, in the API's one error shape."""
    logger.warning("stream ended with %s (%s)", exc.error_type, exc.upstream)
    return error_body(exc.error_type, exc.message, request_id)


async def rag_sse(
    events: AsyncIterator[StreamEvent],
    sources: list[Source],
    outcome: RequestOutcome,
    request_id: str,
    trace: RetrievalTrace | None = None,
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
    yield sse(
        "done",
        {
            "finish_reason": end.finish_reason if end else None,
            "generated_tokens": end.generated_tokens if end else None,
            "timings_ms": outcome.timings.ms,
            "request_id": request_id,
        },
    )
