"""An OpenAI-compatible face: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Existing clients (the openai SDK, LangChain, Open WebUI) point their base URL at the gateway and work
unchanged: the last user message is the RAG query, the answer comes back as a standard ``chat.completion``
(or ``chat.completion.chunk`` stream), and the sources ride along in an extra ``sources`` field.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from rag_gateway.api.cancellation import ClientDisconnectedError, run_for_client
from rag_gateway.api.deps import OutcomeDep, PipelineDep, SettingsDep
from rag_gateway.api.middleware.request_id import current_request_id
from rag_gateway.api.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    Usage,
    finish_reason,
)
from rag_gateway.api.rag_call import begin_rag_call
from rag_gateway.api.schemas import ERROR_RESPONSES, RagRequest, Source, source_models
from rag_gateway.api.sse import SSE_HEADERS, stream_error
from rag_gateway.errors import GatewayError
from rag_gateway.llm.base import StreamEnd, StreamEvent, TokenDelta

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

QUERY_LOC = ("body", "messages", -1, "content")


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
            [{**e, "loc": QUERY_LOC} for e in exc.errors(include_url=False)]
        ) from None


def _completion_id() -> str:
    return f"chatcmpl-{current_request_id()}"


@router.get("/models", summary="The one model this gateway serves")
async def list_models(settings: SettingsDep) -> ModelList:
    return ModelList(data=[ModelCard(id=settings.served_model_name)])


@router.post(
    "/chat/completions",
    responses={
        **ERROR_RESPONSES,
        200: {
            "model": ChatCompletion,
            "description": "A `chat.completion`; with `stream: true`, `chat.completion.chunk` events "
            "(`data: {...}`), ending with `data: [DONE]`.",
            "content": {"text/event-stream": {"itemSchema": ChatCompletionChunk.model_json_schema()}},
        },
    },
    summary="RAG behind the chat completions API",
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    outcome: OutcomeDep,
    x_request_timeout: Annotated[str | None, Header(description="Seconds; lowers the deadline.")] = None,
) -> Response:
    rag_request = _query_of(body)
    call = begin_rag_call(rag_request.query, rag_request.k, settings, x_request_timeout, QUERY_LOC)
    model = settings.served_model_name
    try:
        if body.stream:
            prepared = await run_for_client(
                request, pipeline.prepare(call.query, call.k, outcome), call.timeout_s
            )
            events = pipeline.stream(prepared, outcome, call.remaining_s())
            chunks = _chunk_stream(events, source_models(prepared.sources), model)
            return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
        answer = await run_for_client(request, pipeline.answer(call.query, call.k, outcome), call.timeout_s)
    except ClientDisconnectedError:
        return Response(status_code=499)
    generation = answer.generation
    completion_tokens = generation.generated_tokens or 0
    completion = ChatCompletion(
        id=_completion_id(),
        created=int(time.time()),
        model=model,
        choices=[
            Choice(
                message=AssistantMessage(content=generation.text),
                finish_reason=finish_reason(generation.finish_reason),
            )
        ],
        usage=Usage(completion_tokens=completion_tokens, total_tokens=completion_tokens),
        sources=source_models(answer.prepared.sources),
        degraded=outcome.degraded,
    )
    return Response(completion.model_dump_json(), media_type="application/json")


def _chunk(completion_id: str, model: str, choice: ChunkChoice, sources: list[Source] | None = None) -> bytes:
    chunk = ChatCompletionChunk(
        id=completion_id, created=int(time.time()), model=model, choices=[choice], sources=sources
    )
    return b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"


async def _chunk_stream(
    events: AsyncIterator[StreamEvent], sources: list[Source], model: str
) -> AsyncIterator[bytes]:
    completion_id = _completion_id()
    yield _chunk(completion_id, model, ChunkChoice(delta=Delta(role="assistant", content="")), sources)
    end: StreamEnd | None = None
    try:
        async for event in events:
            if isinstance(event, TokenDelta):
                yield _chunk(completion_id, model, ChunkChoice(delta=Delta(content=event.text)))
            else:
                end = event
    except GatewayError as exc:
        # the openai SDK raises an APIError for a data event carrying an "error" object
        body = stream_error(exc, current_request_id())
        yield b"data: " + orjson.dumps(body) + b"\n\n"
        return
    reason = finish_reason(end.finish_reason if end else None)
    yield _chunk(completion_id, model, ChunkChoice(delta=Delta(), finish_reason=reason))
    yield b"data: [DONE]\n\n"
