"""HTTP routes: ``POST /rag``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from rag_gateway.api.dependencies import PipelineDep, SettingsDep
from rag_gateway.api.request_id import current_request_id
from rag_gateway.pipeline import RagResult
from rag_gateway.schemas import ErrorResponse, RagRequest, RagResponse, Source

router = APIRouter()

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid request (nothing upstream was called)."},
    502: {"model": ErrorResponse, "description": "An upstream answered with an error or an unusable body."},
    503: {"model": ErrorResponse, "description": "An upstream is unreachable, overloaded or throttling."},
    504: {"model": ErrorResponse, "description": "An upstream did not answer in time."},
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
        request_id=current_request_id(),
    )


@router.post(
    "/rag", response_model=RagResponse, responses=ERROR_RESPONSES, summary="Answer a question with RAG"
)
async def rag(request: RagRequest, pipeline: PipelineDep, settings: SettingsDep) -> RagResponse:
    """Self-query + expansion, retrieval over every collection, reranking, then the LLM's answer."""
    if len(request.query) > settings.max_query_chars:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "query"),
                    "msg": f"query is longer than {settings.max_query_chars} characters",
                    "type": "string_too_long",
                }
            ]
        )
    result = await pipeline.run(request.query, request.k or settings.default_top_k)
    return _to_response(result)
