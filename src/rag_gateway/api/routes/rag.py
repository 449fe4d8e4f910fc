"""``POST /rag``: the gateway's own face, a JSON answer or server-sent events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse

from rag_gateway.api.cancellation import ClientDisconnectedError, run_for_client
from rag_gateway.api.deps import OutcomeDep, PipelineDep, SettingsDep
from rag_gateway.api.middleware.request_id import current_request_id
from rag_gateway.api.params import generation_params
from rag_gateway.api.rag_call import TIMEOUT_HEADER_DESCRIPTION, begin_rag_call
from rag_gateway.api.schemas import (
    ERROR_RESPONSES,
    RagRequest,
    RagResponse,
    RetrievalTrace,
    finish_reason,
    source_models,
    traced,
    usage,
)
from rag_gateway.api.sse import SSE_EVENT_SCHEMA, SSE_HEADERS, rag_sse
from rag_gateway.config import Settings
from rag_gateway.rag.outcome import RequestOutcome
from rag_gateway.rag.pipeline import PreparedAnswer
from rag_gateway.rag.prompt import citation_list

router = APIRouter()


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
            "content": {"text/event-stream": {"itemSchema": SSE_EVENT_SCHEMA}},
        },
    },
    summary="Answer a question with RAG",
)
async def rag(
    body: RagRequest,
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    outcome: OutcomeDep,
    x_request_timeout: Annotated[
        float | None, Header(gt=0, allow_inf_nan=False, description=TIMEOUT_HEADER_DESCRIPTION)
    ] = None,
    accept: Annotated[
        str | None, Header(description="`text/event-stream` selects the streamed answer.")
    ] = None,
) -> RagResponse | Response:
    """Self-query + expansion, retrieval over every collection, reranking, then the LLM's answer.

    The sampling fields (`max_tokens`, `temperature`, `top_p`, `stop`, `seed`) mean what they mean on
    `/v1/chat/completions`; `citations` appends the numbered sources to the answer's text."""
    params = generation_params(
        settings,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop,
        seed=body.seed,
    )
    call = begin_rag_call(body.query, body.k, settings, x_request_timeout)
    cite = body.citations if body.citations is not None else settings.append_citations
    try:
        if wants_stream(body.stream, accept):
            prepared = await run_for_client(
                request, pipeline.prepare(call.query, call.k, outcome), call.timeout_s
            )
            events = pipeline.stream(prepared, outcome, call.remaining_s(), params)
            trace = _trace(prepared, outcome, settings) if body.debug else None
            suffix = citation_list([source.hit for source in prepared.sources]) if cite else ""
            sse = rag_sse(
                events, source_models(prepared.sources), outcome, current_request_id(), trace, suffix
            )
            return StreamingResponse(sse, media_type="text/event-stream", headers=SSE_HEADERS)
        answer = await run_for_client(
            request, pipeline.answer(call.query, call.k, outcome, params=params), call.timeout_s
        )
    except ClientDisconnectedError:
        return Response(status_code=499)  # nobody is listening; nothing is sent
    generation = answer.generation
    text = generation.text
    if cite:
        text += citation_list([source.hit for source in answer.prepared.sources])
    return RagResponse(
        answer=text,
        finish_reason=finish_reason(generation.finish_reason),
        usage=usage(generation.prompt_tokens, generation.generated_tokens),
        sources=source_models(answer.prepared.sources),
        author_filter=outcome.author,
        queries=outcome.queries,
        timings_ms=outcome.timings.ms,
        degraded=outcome.degraded,
        request_id=current_request_id(),
        trace=_trace(answer.prepared, outcome, settings) if body.debug else None,
    )


def _trace(prepared: PreparedAnswer, outcome: RequestOutcome, settings: Settings) -> RetrievalTrace:
    return RetrievalTrace(
        mode=settings.retrieval_mode,
        profile=outcome.profile,
        queries=outcome.queries,
        sources=traced(prepared.sources),
        runners_up=traced(prepared.runners_up),
    )
