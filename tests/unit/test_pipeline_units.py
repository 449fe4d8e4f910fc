"""Merging search results and building the prompt."""

from __future__ import annotations

from typing import Any

import pytest

from rag_gateway.config import Settings
from rag_gateway.rag.outcome import RequestOutcome
from rag_gateway.rag.pipeline import RagPipeline
from rag_gateway.rag.prompt import INSTRUCTION, build_prompt
from rag_gateway.rag.retrieval.query_embedding import QueryEmbedder
from rag_gateway.rag.retrieval.ranking import deduplicate
from rag_gateway.rag.retrieval.stores import Hit
from rag_gateway.runtime.cpu_pool import CpuPool


def _hit(id_: str, score: float, collection: str = "embedded_articles") -> Hit:
    payload = {
        "content": f"text {id_}",
        "platform": "medium",
        "author_full_name": "Ada Byron",
        "type": "article",
    }
    return Hit(id=id_, collection=collection, score=score, payload=payload)


def test_deduplicate_keeps_best_score_and_first_position() -> None:
    merged = deduplicate([[_hit("a", 0.5), _hit("b", 0.4)], [_hit("c", 0.9), _hit("a", 0.8)]])
    assert [(h.id, h.score) for h in merged] == [("a", 0.8), ("b", 0.4), ("c", 0.9)]


def test_prompt_has_instruction_query_and_numbered_chunks() -> None:
    prompt = build_prompt("What is RAG?", [_hit("a", 0.5), _hit("b", 0.4, "embedded_posts")])
    assert prompt.startswith(INSTRUCTION)
    assert "User query: What is RAG?" in prompt
    assert "Chunk 1:\nType: article\nPlatform: medium\nAuthor: Ada Byron\nContent: text a" in prompt
    assert "Chunk 2:" in prompt and "Content: text b" in prompt


class _BrokenReranker:
    name = "broken"

    def __init__(self, where: str, pool: CpuPool) -> None:
        self.where, self.pool = where, pool

    async def score(self, query: str, query_vector: object, hits: object) -> list[float]:
        if self.where == "pool":
            return await self.pool.run(self.fail)
        return self.fail()

    def fail(self) -> list[float]:
        raise RuntimeError("model file corrupt")


def _pipeline_with(pool: CpuPool, **parts: Any) -> RagPipeline:
    """A pipeline with only the parts a test exercises; the rest are never touched."""
    unused: dict[str, Any] = dict.fromkeys(
        ("understanding", "catalog", "query_embedder", "store", "reranker", "llm")
    )
    return RagPipeline(**{**unused, **parts}, pool=pool, search_limit=5, collections=())


@pytest.mark.parametrize("where", ["inline", "pool"])
async def test_a_failing_reranker_keeps_vector_order_and_says_so(where: str) -> None:
    pool = CpuPool(1)
    pipeline = _pipeline_with(pool, reranker=_BrokenReranker(where, pool))
    outcome = RequestOutcome()
    try:
        scores = await pipeline._rerank("q", None, [_hit("a", 0.2), _hit("b", 0.9), _hit("c", 0.5)], outcome)  # type: ignore[arg-type]
    finally:
        pool.shutdown()
    assert scores == [0.2, 0.9, 0.5]  # the search's own scores: vector order
    assert outcome.degraded == ["rerank"]


class _RecordingEmbedder:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def embed(self, texts: list[str]) -> list[Any]:
        self.batches.append(list(texts))
        return [float(len(text)) for text in texts]


async def test_concurrent_requests_embed_in_batches_no_larger_than_the_cap() -> None:
    import asyncio

    embedder = _RecordingEmbedder()
    query_embedder = QueryEmbedder(
        embedder,  # type: ignore[arg-type]
        batch_window_s=0.05,
        batch_max_texts=5,
        workers=1,
    )
    requests = [["q1", "q1a", "q1b"], ["q2", "q2a"], ["q3", "q3a", "q3b"]]
    try:
        vectors = await asyncio.gather(*(query_embedder.embed(texts) for texts in requests))
    finally:
        query_embedder.close()
    assert vectors == [[2.0, 3.0, 3.0], [2.0, 3.0], [2.0, 3.0, 3.0]]
    assert embedder.batches == [requests[0] + requests[1], requests[2]]  # 3 + 2 texts fit in 5, 3 more do not


async def test_an_optional_step_that_fails_or_runs_late_falls_back_and_says_why() -> None:
    import asyncio

    from rag_gateway.errors import OverloadedError, UpstreamTimeoutError
    from rag_gateway.rag.steps import optional_step

    async def fails() -> str:
        raise UpstreamTimeoutError("late", upstream="openai")

    async def hangs() -> str:
        await asyncio.Event().wait()
        return "never"

    async def sheds() -> str:
        raise OverloadedError("full")

    outcome = RequestOutcome()
    assert await optional_step("expand", fails(), "fallback", outcome) == "fallback"
    assert await optional_step("self_query", hangs(), "fallback", outcome, budget_s=0.01) == "fallback"
    assert outcome.degraded == ["expand", "self_query"]
    with pytest.raises(OverloadedError):  # the gateway's own overload sheds the request, not a step
        await optional_step("rerank", sheds(), "fallback", outcome)
    assert outcome.degraded == ["expand", "self_query"]


def test_no_route_dependency_or_handler_runs_in_a_worker_thread(model_settings: Settings) -> None:
    """FastAPI runs a plain ``def`` dependency or handler in a thread: a hop per request on the hot path."""
    import inspect

    from fastapi.routing import APIRoute

    from rag_gateway.app import create_app

    def calls(dependant: Any) -> list[Any]:
        found = [dependant.call] if dependant.call is not None else []
        for sub in dependant.dependencies:
            found += calls(sub)
        return found

    def api_routes(routes: list[Any]) -> list[APIRoute]:
        found: list[APIRoute] = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            included = getattr(route, "original_router", None)  # include_router() wraps the router
            if included is not None:
                found += api_routes(included.routes)
        return found

    routes = api_routes(create_app(model_settings).routes)
    assert {"/rag", "/v1/chat/completions"} <= {route.path for route in routes}
    sync = [
        f"{route.path}: {call.__name__}"
        for route in routes
        for call in calls(route.dependant)
        if not inspect.iscoroutinefunction(call) and not inspect.isasyncgenfunction(call)
    ]
    assert sync == []
