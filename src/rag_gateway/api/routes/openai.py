"""An OpenAI-compatible face: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Existing clients (the openai SDK, LangChain, Open WebUI) point their base URL at the gateway and work
unchanged: the last user message is the question (earlier turns make it a conversation: the question is
rewritten to stand alone before retrieval, and the recent turns ride in the prompt), the request's
sampling parameters reach the LLM as it understands them, and the answer comes back as a standard
``chat.completion`` (or ``chat.completion.chunk`` stream) with true token usage and finish reason. The
sources ride along in an extra ``sources`` field, and in the text itself with ``citations``.

``model`` follows vLLM's OpenAI server: the served name or one of its aliases; another name is a 404
``model_not_found``. Parameters the gateway cannot honour are a 400 naming them (`rag_gateway.api.params`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

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
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    OpenAIErrorResponse,
    finish_reason,
)
from rag_gateway.api.params import generation_params, refuse_unsupported
from rag_gateway.api.rag_call import TIMEOUT_HEADER_DESCRIPTION, begin_rag_call
from rag_gateway.api.schemas import ERROR_RESPONSES, RagRequest, source_models, usage
from rag_gateway.api.sse import SSE_HEADERS, stream_error
from rag_gateway.config import Settings
from rag_gateway.errors import GatewayError, InvalidParameterError, ModelNotFoundError
from rag_gateway.llm.base import GenerationParams, StreamEnd, StreamEvent, TokenDelta
from rag_gateway.rag.prompt import citation_list
from rag_gateway.rag.understanding.conversation import Conversation, Turn, fold

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

#: Every error status of the chat route, in OpenAI's error shape (plus the request id).
OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {**response, "model": OpenAIErrorResponse} for status, response in ERROR_RESPONSES.items()
} | {
    400: {
        "model": OpenAIErrorResponse,
        "description": "A parameter the gateway cannot honour (`n` > 1, `tools`, `logprobs`, `audio`, "
        "non-text content, more than 4 `stop` sequences...), or a body that could not be decoded; `param` "
        "names the parameter, `code` is `unsupported_parameter` or `invalid_value`.",
    },
    404: {
        "model": OpenAIErrorResponse,
        "description": "`model` is neither SERVED_MODEL_NAME nor one of SERVED_MODEL_ALIASES "
        "(`code: model_not_found`).",
    },
}


def _messages_loc(index: int) -> tuple[str | int, ...]:
    return ("body", "messages", index, "content")


def _check_content(messages: list[ChatMessage]) -> None:
    for index, message in enumerate(messages):
        part = message.non_text_part()
        if part is not None:
            raise InvalidParameterError(
                f"content parts of type '{part[:40]}' are not supported: this gateway answers text only.",
                param=f"messages[{index}].content",
            )


def _question_and_conversation(body: ChatCompletionRequest) -> tuple[RagRequest, Conversation, int]:
    """The last user message (validated like ``/rag``'s query), the turns before it and the system
    message; and the last user message's index."""
    messages = body.messages
    _check_content(messages)
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if last is None:
        raise RequestValidationError(
            [{"loc": ("body", "messages"), "msg": "needs a user message", "type": "value_error"}]
        )
    try:
        question = RagRequest(query=messages[last].text(), k=body.k)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": _messages_loc(last)} for e in exc.errors(include_url=False)]
        ) from None
    history = tuple(
        Turn("user" if m.role == "user" else "assistant", text)
        for m in messages[:last]
        if m.role in ("user", "assistant") and (text := fold(m.text()))
    )
    system = " ".join(fold(m.text()) for m in messages if m.role in ("system", "developer")).strip()
    return question, Conversation(history, system or None), last


def _params(body: ChatCompletionRequest, settings: Settings) -> GenerationParams:
    return generation_params(
        settings,
        max_tokens=body.max_new_tokens(),
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop,
        seed=body.seed,
        frequency_penalty=body.frequency_penalty,
        response_format=body.response_format,
    )


def _completion_id() -> str:
    return f"chatcmpl-{current_request_id()}"


@router.get(
    "/models",
    summary="The models this gateway serves: SERVED_MODEL_NAME and its aliases",
    responses={s: {**ERROR_RESPONSES[s], "model": OpenAIErrorResponse} for s in (401, 429)},
)
async def list_models(settings: SettingsDep) -> ModelList:
    return ModelList(data=[ModelCard(id=name) for name in settings.served_model_names])


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        **OPENAI_ERROR_RESPONSES,
        200: {
            "description": "A `chat.completion`; with `stream: true`, server-sent `chat.completion.chunk` "
            "events (`data: {...}`), ending with `data: [DONE]`. A failure after the stream started is a "
            'last `data: {"error": {...}}` event.',
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
    x_request_timeout: Annotated[
        float | None, Header(gt=0, allow_inf_nan=False, description=TIMEOUT_HEADER_DESCRIPTION)
    ] = None,
) -> Response:
    """The last user message is the question; see the parameter table in the README for what each OpenAI
    parameter does here."""
    if body.model is not None and body.model not in settings.served_model_names:
        raise ModelNotFoundError(body.model)
    refuse_unsupported(body.explicit())
    question, conversation, last = _question_and_conversation(body)
    params = _params(body, settings)
    call = begin_rag_call(question.query, question.k, settings, x_request_timeout, _messages_loc(last))
    cite = (body.citations if body.citations is not None else settings.append_citations) and not (
        params.wants_json
    )
    model = settings.served_model_name
    try:
        if body.stream:
            prepared = await run_for_client(
                request, pipeline.prepare(call.query, call.k, outcome, conversation), call.timeout_s
            )
            events = pipeline.stream(prepared, outcome, call.remaining_s(), params)
            first = ChatCompletionChunk(
                id=_completion_id(),
                created=int(time.time()),
                model=model,
                choices=[ChunkChoice(delta=Delta(role="assistant", content=""))],
                sources=source_models(prepared.sources),
                queries=list(outcome.queries),
                degraded=list(outcome.degraded),
            )
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            suffix = citation_list([s.hit for s in prepared.sources]) if cite else ""
            chunks = _chunk_stream(events, first, include_usage, suffix)
            return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
        answer = await run_for_client(
            request, pipeline.answer(call.query, call.k, outcome, conversation, params), call.timeout_s
        )
    except ClientDisconnectedError:
        return Response(status_code=499)
    generation = answer.generation
    text = generation.text
    if cite:
        text += citation_list([source.hit for source in answer.prepared.sources])
    completion = ChatCompletion(
        id=_completion_id(),
        created=int(time.time()),
        model=model,
        choices=[
            Choice(
                message=AssistantMessage(content=text), finish_reason=finish_reason(generation.finish_reason)
            )
        ],
        usage=usage(generation.prompt_tokens, generation.generated_tokens),
        sources=source_models(answer.prepared.sources),
        queries=outcome.queries,
        degraded=outcome.degraded,
    )
    return Response(completion.model_dump_json(), media_type="application/json")


#: Chunk fields sent only where they apply (the extensions on the first chunk, usage on the last).
OPTIONAL_CHUNK_FIELDS = ("usage", "sources", "queries", "degraded")


def _data(chunk: ChatCompletionChunk) -> bytes:
    absent = {name for name in OPTIONAL_CHUNK_FIELDS if getattr(chunk, name) is None}
    return b"data: " + chunk.model_dump_json(exclude=absent).encode() + b"\n\n"


async def _chunk_stream(
    events: AsyncIterator[StreamEvent], first: ChatCompletionChunk, include_usage: bool, suffix: str
) -> AsyncIterator[bytes]:
    """The first chunk (role and extensions), a chunk per token, the citations, the finish reason, the
    usage chunk when asked for, then ``[DONE]``."""
    yield _data(first)

    def chunk(choices: list[ChunkChoice], **extra: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=first.id, created=first.created, model=first.model, choices=choices, **extra
        )

    end: StreamEnd | None = None
    try:
        async for event in events:
            if isinstance(event, TokenDelta):
                yield _data(chunk([ChunkChoice(delta=Delta(content=event.text))]))
            else:
                end = event
    except GatewayError as exc:
        # the openai SDK raises an APIError for a data event carrying an "error" object
        body = stream_error(exc, current_request_id(), openai_shape=True)
        yield b"data: " + orjson.dumps(body) + b"\n\n"
        return
    if suffix:
        yield _data(chunk([ChunkChoice(delta=Delta(content=suffix))]))
    reason = finish_reason(end.finish_reason if end else None)
    yield _data(chunk([ChunkChoice(delta=Delta(), finish_reason=reason)]))
    if include_usage:
        totals = usage(end.prompt_tokens if end else None, end.generated_tokens if end else None)
        yield _data(chunk([], usage=totals))
    yield b"data: [DONE]\n\n"
