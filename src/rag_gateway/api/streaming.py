"""Server-sent events for ``POST /rag`` with ``"stream": true``.

Retrieval runs before the response starts, so its failures still get their proper HTTP status. The stream
then carries ``sources`` (as soon as they are known), ``token`` events as the LLM produces them, and ``done``;
a failure mid-answer becomes an ``error`` event and the stream ends cleanly. When the client disconnects,
Starlette cancels the generator, and closing the upstream stream stops the generation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi.sse import format_sse_event

from rag_gateway.errors import DeadlineExceededError, GatewayError
from rag_gateway.generation import LLM, StreamEnd, TokenDelta
from rag_gateway.pipeline import PreparedAnswer, StageTimings
from rag_gateway.resilience import deadline_scope

logger = logging.getLogger("rag_gateway.api")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(event: str | None, data: Any) -> bytes:
    return format_sse_event(event=event, data_str=orjson.dumps(data).decode())


def error_payload(exc: GatewayError, request_id: str) -> dict[str, Any]:
    return {"error": {"type": exc.error_type, "message": exc.message}, "request_id": request_id}


async def generation_events(llm: LLM, prompt: str, timeout_s: float) -> AsyncIterator[TokenDelta | StreamEnd]:
    """The LLM's stream under what is left of the request's deadline."""
    with deadline_scope(timeout_s):
        try:
            async with asyncio.timeout(timeout_s):
                async for event in llm.stream(prompt):
                    yield event
        except TimeoutError as exc:
            raise DeadlineExceededError("the answer did not complete within the request's deadline") from exc


async def rag_sse(
    llm: LLM,
    prepared: PreparedAnswer,
    timings: StageTimings,
    timeout_s: float,
    request_id: str,
    render_sources: Callable[[PreparedAnswer], list[dict[str, Any]]],
) -> AsyncIterator[bytes]:
    yield sse(
        "sources",
        {
            "sources": render_sources(prepared),
            "author_filter": prepared.author,
            "queries": prepared.queries,
            "degraded": prepared.degraded,
            "request_id": request_id,
        },
    )
    started = time.perf_counter()
    end: StreamEnd | None = None
    tokens = 0
    try:
        async for event in generation_events(llm, prepared.prompt, timeout_s):
            if isinstance(event, TokenDelta):
                if tokens == 0:
                    timings.ms["first_token"] = round((time.perf_counter() - started) * 1000, 2)
                tokens += 1
                yield sse("token", {"text": event.text})
            else:
                end = event
    except GatewayError as exc:
        logger.warning("stream ended with %s (%s)", exc.error_type, exc.upstream)
        yield sse("error", error_payload(exc, request_id))
        return
    timings.ms["llm"] = round((time.perf_counter() - started) * 1000, 2)
    yield sse(
        "done",
        {
            "finish_reason": end.finish_reason if end else None,
            "generated_tokens": end.generated_tokens if end and end.generated_tokens is not None else tokens,
            "timings_ms": timings.ms,
            "request_id": request_id,
        },
    )
