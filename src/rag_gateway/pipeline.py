"""The RAG request path: understand the query, retrieve, rerank, generate.

Every step is a coroutine on shared clients; CPU work (embedding, reranking, local vector search) goes to
the bounded CPU pool so the event loop only ever waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from rag_gateway.compute import CpuPool
from rag_gateway.corpus import CorpusCatalog
from rag_gateway.embedding import Embedder
from rag_gateway.llm import SageMakerLLM
from rag_gateway.prompt import build_prompt
from rag_gateway.query_expansion import QueryExpander
from rag_gateway.reranking import Reranker, top_k
from rag_gateway.self_query import SelfQuery
from rag_gateway.vector_store import Hit, VectorStore

T = TypeVar("T")


@dataclass
class StageTimings:
    """Wall-clock milliseconds per pipeline stage, for the response and the logs."""

    ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - start) * 1000, 2)

    async def timed(self, name: str, awaitable: Awaitable[T]) -> T:
        with self.stage(name):
            return await awaitable


@dataclass(frozen=True, slots=True)
class RankedSource:
    hit: Hit
    score: float


@dataclass(frozen=True, slots=True)
class RagResult:
    answer: str
    sources: list[RankedSource]
    author: str | None
    queries: list[str]
    timings_ms: dict[str, float]


def deduplicate(result_lists: Sequence[Sequence[Hit]]) -> list[Hit]:
    """Merge hit lists; a chunk found several times keeps its best score and its first position."""
    best: dict[str, Hit] = {}
    for hits in result_lists:
        for hit in hits:
            kept = best.get(hit.id)
            if kept is None or hit.score > kept.score:
                best[hit.id] = hit  # re-assigning an existing key keeps its insertion position
    return list(best.values())


class RagPipeline:
    def __init__(
        self,
        *,
        self_query: SelfQuery,
        expander: QueryExpander,
        catalog: CorpusCatalog,
        embedder: Embedder,
        store: VectorStore,
        reranker: Reranker,
        llm: SageMakerLLM,
        pool: CpuPool,
        search_limit: int,
    ) -> None:
        self._self_query = self_query
        self._expander = expander
        self._catalog = catalog
        self._embedder = embedder
        self._store = store
        self._reranker = reranker
        self._llm = llm
        self._pool = pool
        self._search_limit = search_limit

    async def _understand(self, query: str, timings: StageTimings) -> tuple[str | None, list[str]]:
        """Self-query and expansion, concurrently; the first failure cancels the other."""
        try:
            async with asyncio.TaskGroup() as group:
                author_task = group.create_task(
                    timings.timed("self_query", self._self_query.extract_author(query))
                )
                queries_task = group.create_task(timings.timed("expand", self._expander.expand(query)))
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
        return author_task.result(), queries_task.result()

    async def run(self, query: str, k: int) -> RagResult:
        timings = StageTimings()
        with timings.stage("total"):
            raw_author, queries = await self._understand(query, timings)
            with timings.stage("resolve_author"):
                author = await self._catalog.resolve_author(raw_author)
                collections = await self._catalog.collections()
            with timings.stage("embed"):
                vectors = await self._pool.run(self._embedder.embed, queries)
            with timings.stage("search"):
                per_collection = await asyncio.gather(
                    *(
                        self._store.search_collection(name, vectors, author, self._search_limit)
                        for name in collections
                    )
                )
            candidates = deduplicate([hits for lists in per_collection for hits in lists])
            with timings.stage("rerank"):
                scores = await self._pool.run(self._reranker.score, query, vectors[0], candidates)
            ranked = top_k(candidates, scores, k)
            prompt = build_prompt(query, [hit for hit, _ in ranked])
            answer = await timings.timed("llm", self._llm.generate(prompt))
        return RagResult(
            answer=answer,
            sources=[RankedSource(hit, score) for hit, score in ranked],
            author=author,
            queries=queries,
            timings_ms=timings.ms,
        )
