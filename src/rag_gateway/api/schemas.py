"""The public JSON shapes of the API (requests, answers, errors), with the examples /docs shows."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
)

from rag_gateway.rag.pipeline import RankedSource

#: The rule a question's text follows, as a JSON-schema pattern (ECMA and Python regex alike): no control
#: characters except tab, newline and carriage return, and at least one character that is not whitespace.
QUERY_PATTERN = (
    r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
)
QUERY_RULE = (
    "At least one non-whitespace character, at most MAX_QUERY_CHARS (default 2000) once trimmed, and no "
    "control characters other than tab, newline and carriage return."
)
#: Placeholder for MAX_QUERY_CHARS in the schemas; the app's OpenAPI document carries the configured value.
DEFAULT_MAX_QUERY_CHARS = 2000
QUERY_TEXT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": DEFAULT_MAX_QUERY_CHARS,
    "pattern": QUERY_PATTERN,
    "description": QUERY_RULE,
}
#: ``stop``: what the schema promises (at most TGI's 4 non-empty sequences); more is a 400 naming ``stop``.
STOP_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4},
        {"type": "null"},
    ],
    "description": "Up to 4 sequences that end the answer (not included in it). More than 4: 400.",
}
Stop = Annotated[str | list[StrictStr] | None, WithJsonSchema(STOP_SCHEMA)]
MaxTokens = Annotated[
    StrictInt | None,
    Field(ge=1, description="Most tokens to generate; above MAX_NEW_TOKENS_LIMIT it is lowered to it."),
]
Temperature = Annotated[
    StrictFloat | None,
    Field(
        ge=0, le=2, description="Sampling temperature; 0 = greedy decoding. Default TEMPERATURE_INFERENCE."
    ),
]
TopP = Annotated[
    StrictFloat | None,
    Field(gt=0, le=1, description="Nucleus sampling; 1 = off. Default TOP_P_INFERENCE."),
]
Seed = Annotated[
    StrictInt | None,
    Field(
        ge=-(2**63),
        le=2**64 - 1,
        description="Sampling seed, for repeatable answers (negative values are taken modulo 2^64).",
    ),
]
FinishReason = Literal["stop", "length"]

#: TGI's (and OpenAI's) finish reasons, in OpenAI's vocabulary.
FINISH_REASONS: dict[str, FinishReason] = {
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "stop": "stop",
}


def finish_reason(reason: str | None) -> FinishReason:
    """``length`` when the token limit cut the answer, ``stop`` otherwise."""
    return FINISH_REASONS.get(reason or "stop", "stop")


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

    query: Annotated[StrictStr, WithJsonSchema(QUERY_TEXT_SCHEMA)] = Field(
        min_length=1, description=f"The question. {QUERY_RULE}"
    )
    k: StrictInt | None = Field(
        None, ge=1, le=20, description="Sources (documents) to keep after reranking; default DEFAULT_TOP_K."
    )
    stream: StrictBool = Field(
        False, description="Answer with server-sent events (also chosen by Accept: text/event-stream)."
    )
    debug: StrictBool = Field(
        False, description="Add a retrieval trace: how each source and runner-up was ranked, and why."
    )
    citations: StrictBool | None = Field(
        None,
        description="Append the numbered sources to the answer (`Sources:` `[1] Title — link`); default "
        "APPEND_CITATIONS.",
    )
    max_tokens: MaxTokens = None
    temperature: Temperature = None
    top_p: TopP = None
    stop: Stop = None
    seed: Seed = None

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
    profile: str | None = Field(
        None, description="RETRIEVAL_PROFILE as applied to this corpus: standard or large."
    )
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
        description="Optional steps that failed and were skipped: rewrite, self_query, expand, "
        "resolve_author, search:<collection>, rerank. Empty when the answer is complete.",
    )
    request_id: str
    finish_reason: FinishReason = Field(
        "stop", description="`length` when the token limit cut the answer, else `stop`."
    )
    usage: Usage | None = Field(None, description="Tokens of the generation.")
    trace: RetrievalTrace | None = Field(None, description="With `debug: true` only.")


class Usage(BaseModel):
    """Tokens of the generation: ``prompt_tokens + completion_tokens == total_tokens``."""

    prompt_tokens: int = Field(
        ge=0, description="The prompt's tokens: the LLM's own count where it gives one, else the gateway's."
    )
    completion_tokens: int = Field(
        ge=0, description="Tokens the LLM generated (appended citations excluded)."
    )
    total_tokens: int = Field(ge=0)


def usage(prompt_tokens: int | None, completion_tokens: int | None) -> Usage:
    prompt, completion = prompt_tokens or 0, completion_tokens or 0
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


class ErrorDetail(BaseModel):
    type: str = Field(examples=["upstream_timeout"])
    message: str = Field(examples=["the LLM endpoint timed out"])
    param: str | None = Field(None, description="The request parameter at fault, when there is one.")


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


#: The statuses only API-key auth adds (API_KEYS_SHA256 set).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Auth is on and no valid `Authorization: Bearer` key."},
    429: {
        "model": ErrorResponse,
        "description": "Auth is on and this key is over its rate limit; Retry-After says when to retry.",
    },
}

#: The error statuses the answering routes return, for OpenAPI.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "The body could not be decoded (e.g. not UTF-8), or a parameter cannot be honoured "
        "(e.g. more than 4 `stop` sequences); `param` names it.",
    },
    **AUTH_RESPONSES,
    413: {"model": ErrorResponse, "description": "The request body is larger than MAX_BODY_BYTES."},
    415: {"model": ErrorResponse, "description": "The request body is not application/json."},
    422: {
        "model": ErrorResponse,
        "description": "Invalid request (nothing upstream was called): a field out of its range, a blank "
        "or too long question, control characters, a bad X-Request-Timeout.",
    },
    502: {"model": ErrorResponse, "description": "An upstream answered with an error or an unusable body."},
    503: {
        "model": ErrorResponse,
        "description": "An upstream is unreachable, overloaded, throttling or its circuit is open; or the "
        "gateway is at capacity. Retry-After says when to try again.",
    },
    504: {"model": ErrorResponse, "description": "An upstream or the request's deadline timed out."},
}
