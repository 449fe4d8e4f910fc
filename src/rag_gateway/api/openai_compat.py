"""An OpenAI-compatible face: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Existing clients (the openai SDK, LangChain, Open WebUI) point their base URL at the gateway and work
unchanged: the last user message is the RAG query, the answer comes back as a standard ``chat.completion``
(or ``chat.completion.chunk`` stream), and the sources ride along in an extra ``sources`` field.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from rag_gateway.api.cancellation import ClientDisconnectedError, run_for_client
from rag_gateway.api.dependencies import PipelineDep, SettingsDep
from rag_gateway.api.request_id import current_request_id
from rag_gateway.api.routes import ERROR_RESPONSES, begin_rag_call, source_dicts
from rag_gateway.api.streaming import SSE_HEADERS, error_payload, generation_events
from rag_gateway.errors import GatewayError
from rag_gateway.generation import LLM, StreamEnd, TokenDelta
from rag_gateway.schemas import RagRequest

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

#: TGI's finish reasons, in OpenAI's vocabulary.
FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length", "stop": "stop"}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class ChatCompletionRequest(BaseModel):
    """OpenAI's request shape; sampling fields are accepted and ignored (the gateway's settings apply)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"model": "llm-twin", "messages": [{"role": "user", "content": "What is RAG?"}]}]
        },
    )

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    k: StrictInt | None = Field(None, ge=1, le=20, description="Extension: sources to keep.")


def _query_of(body: ChatCompletionRequest) -> RagRequest:
    user_messages = [m for m in body.messages if m.role == "user"]
    if not user_messages:
        raise RequestValidationError(
            [{"loc": ("body", "messages"), "msg": "needs a user message", "type": "value_error"}]
        )
    try:
        return RagRequest(query=user_messages[-1].text(), k=body.k)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", "messages", -1, "content")} for e in exc.errors(include_url=False)]
        ) from None


def _completion_id() -> str:
    return f"chatcmpl-{current_request_id()}"


@router.get("/models", summary="The one model this gateway serves")
async def list_models(settings: SettingsDep) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": settings.served_model_name, "object": "model", "created": 0, "owned_by": "rag-gateway"}
        ],
    }


@router.post("/chat/completions", responses=ERROR_RESPONSES, summary="RAG behind the chat completions API")
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    x_request_timeout: Annotated[str | None, Header()] = None,
) -> Response:
    rag_request = _query_of(body)
    call = begin_rag_call(
        request,
        rag_request.query,
        rag_request.k,
        settings,
        x_request_timeout,
        ("body", "messages", -1, "content"),
    )
    try:
        prepared = await run_for_client(
            request, pipeline.prepare(call.query, call.k, call.timings), call.timeout_s
        )
        sources = source_dicts(prepared)
        request.state.degraded = prepared.degraded
        if body.stream:
            chunks = _chunk_stream(
                pipeline.llm, prepared.prompt, sources, settings.served_model_name, call.remaining_s()
            )
            return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
        generation = await run_for_client(request, pipeline.llm.generate(prepared.prompt), call.remaining_s())
    except ClientDisconnectedError:
        return Response(status_code=499)
    completion = {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": settings.served_model_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generation.text},
                "finish_reason": FINISH_REASONS.get(generation.finish_reason or "stop", "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": 0,
            "completion_tokens": generation.generated_tokens or 0,
            "total_tokens": 0,
        },
        "sources": sources,
        "degraded": prepared.degraded,
    }
    return Response(orjson.dumps(completion), media_type="application/json")


def _chunk(completion_id: str, model: str, delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
    payload = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _chunk_stream(
    llm: LLM, prompt: str, sources: list[dict[str, Any]], model: str, timeout_s: float
) -> AsyncIterator[bytes]:
    completion_id = _completion_id()
    yield _chunk(completion_id, model, {"role": "assistant", "content": ""}, None, sources=sources)
    end: StreamEnd | None = None
    try:
        async for event in generation_events(llm, prompt, timeout_s):
            if isinstance(event, TokenDelta):
                yield _chunk(completion_id, model, {"content": event.text}, None)
            else:
                end = event
    except GatewayError as exc:
        # the openai SDK raises an APIError for a data event carrying an "error" object
        yield b"data: " + orjson.dumps(error_payload(exc, current_request_id())) + b"\n\n"
        return
    finish = FINISH_REASONS.get((end.finish_reason if end else None) or "stop", "stop")
    yield _chunk(completion_id, model, {}, finish)
    yield b"data: [DONE]\n\n"
