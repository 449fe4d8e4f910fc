"""The public JSON shapes of the API (requests, answers, errors), with the examples /docs shows."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from rag_gateway.rag.pipeline import RankedSource


class RagRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"query": "What did Paul Iusztin write about feature pipelines?", "k": 3},
                {"query": "How do I evaluate a RAG system?"},
            ]
        },
    )

    query: StrictStr = Field(min_length=1, description="The question; at most MAX_QUERY_CHARS characters.")
    k: StrictInt | None = Field(None, ge=1, le=20, description="Sources to keep after reranking.")
    stream: StrictBool = Field(
        False, description="Answer with server-sent events (also chosen by Accept: text/event-stream)."
    )
    debug: StrictBool = Field(
        False, description="Add a retrieval trace: how each source and runner-up was ranked, and why."
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("query must not be blank")
        if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\t\n\r" for ch in stripped):
            raise ValueError("query must not contain control characters")
        return stripped


class Source(BaseModel):
    id: str = Field(description="Chunk id in the vector store.")
    collection: str
    title: str | None
    link: str | None
    author: str | None
    platform: str | None
    score: float = Field(description="Rerank score against the original query; higher is better.")


class TracedSource(BaseModel):
    """How retrieval ranked one chunk: 1-based ranks per signal (null: not found by it) and scores."""

    id: str
    collection: str
    document_id: str | None
    title: str | None
    dense_rank: int | None = Field(description="Best rank in the dense searches (any query).")
    sparse_rank: int | None = Field(description="Best rank in the BM25 searches (hybrid mode).")
    rerank_score: float | None = Field(description="Reranker score against the original question.")
    fused_score: float | None = Field(description="Weighted reciprocal-rank fusion score (hybrid mode).")


class RetrievalTrace(BaseModel):
    mode: str = Field(description="RETRIEVAL_MODE: dense or hybrid.")
    queries: list[str] = Field(description="The queries searched: the question, then its expansions.")
    sources: list[TracedSource] = Field(description="The cited sources, in order.")
    runners_up: list[TracedSource] = Field(description="The next best chunks, not cited.")


def traced(sources: Sequence[RankedSource]) -> list[TracedSource]:
    return [
        TracedSource(
            id=source.hit.id,
            collection=source.hit.collection,
            document_id=source.hit.payload.get("document_id"),
            title=source.hit.payload.get("title"),
            dense_rank=source.ranks.get("dense"),
            sparse_rank=source.ranks.get("sparse"),
            rerank_score=None if source.rerank_score is None else round(source.rerank_score, 6),
            fused_score=None if source.fused_score is None else round(source.fused_score, 6),
        )
        for source in sources
    ]


class RagResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "answer": "According to Paul Iusztin (medium): a feature pipeline takes raw data...",
                    "sources": [
                        {
                            "id": "5d1c6c7e-4b0e-5f43-9a51-0a9d1f6c2f1b",
                            "collection": "embedded_articles",
                            "title": "The feature pipeline",
                            "link": "https://medium.com/decodingml/the-feature-pipeline",
                            "author": "Paul Iusztin",
                            "platform": "medium",
                            "score": 0.71,
                        }
                    ],
                    "author_filter": "Paul Iusztin",
                    "queries": ["What did Paul Iusztin write about feature pipelines?"],
                    "timings_ms": {"self_query": 210.4, "expand": 230.1, "embed": 9.8, "llm": 812.0},
                    "degraded": [],
                    "request_id": "9f1c2b1e8a2d4c0f9b7a6e5d4c3b2a19",
                }
            ]
        }
    )

    answer: str
    sources: list[Source] = Field(description="The chunks given to the LLM, best first.")
    author_filter: str | None = Field(description="The indexed author retrieval was scoped to, if any.")
    queries: list[str] = Field(description="The original query and its expansions, as searched.")
    timings_ms: dict[str, float] = Field(description="Wall-clock milliseconds per pipeline stage.")
    degraded: list[str] = Field(
        default_factory=list,
        description="Optional steps that failed and were skipped: self_query, expand, resolve_author, "
        "search:<collection>, rerank. Empty when the answer is complete.",
    )
    request_id: str
    trace: RetrievalTrace | None = Field(None, description="With `debug: true` only.")


class ErrorDetail(BaseModel):
    type: str = Field(examples=["upstream_timeout"])
    message: str = Field(examples=["the LLM endpoint timed out"])


class ErrorResponse(BaseModel):
    error: ErrorDetail
    request_id: str


def source_models(sources: Sequence[RankedSource]) -> list[Source]:
    """The answer's sources as the API shows them (the payload fields a client can cite)."""
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


#: The error statuses the answering routes return, for OpenAPI.
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
