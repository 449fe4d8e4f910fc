"""The RAG request path: understand the query, retrieve, rerank, generate.

Every step is a coroutine on shared clients; CPU work (embedding, reranking, local vector search) goes to
the bounded CPU pool so the event loop only ever waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from rag_gateway.batching import MicroBatcher
from rag_gateway.caches import EmbeddingCache, UnderstandingCache
from rag_gateway.compute import CpuPool
from rag_gateway.corpus import CorpusCatalog
from rag_gateway.embedding import Embedder, Vector
from rag_gateway.errors import GatewayError, OverloadedError
from rag_gateway.generation import LLM
from rag_gateway.prompt import build_prompt
from rag_gateway.query_expansion import QueryExpander
from rag_gateway.reranking import Reranker, top_k
from rag_gateway.self_query import SelfQuery
from rag_gateway.vector_store import Hit, VectorStore

T = TypeVar("T")
logger = logging.getLogger("rag_gateway.pipeline")


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
class PreparedAnswer:
    """Retrieval's outcome: the prompt for the LLM and what the answer will cite."""

    prompt: str
    sources: list[RankedSource]
    author: str | None
    queries: list[str]
    degraded: list[str]


@dataclass(frozen=True, slots=True)
class RagResult:
    answer: str
    sources: list[RankedSource]
    author: str | None
    queries: list[str]
    timings_ms: dict[str, float]
    #: Optional steps that failed and were skipped (e.g. ``expand``, ``search:embedded_posts``, ``rerank``).
    degraded: list[str]


def _skip(step: str, reason: str, degraded: list[str]) -> None:
    """Note an optional step the answer goes without: a warning with the reason, and ``degraded``."""
    logger.warning("degraded answer: skipped %s (%s)", step, reason, extra={"step": step, "reason": reason})
    degraded.append(step)


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
        llm: LLM,
        pool: CpuPool,
        search_limit: int,
        understanding_budget_s: float,
        collections: Sequence[str],
        understanding_cache: UnderstandingCache | None = None,
        embedding_cache: EmbeddingCache | None = None,
        embed_batch_window_s: float = 0.0,
        embed_batches_in_flight: int = 1,
        embed_batch_max_texts: int = 64,
    ) -> None:
        self._self_query = self_query
        self._expander = expander
        self._catalog = catalog
        self._embedder = embedder
        self._store = store
        self._reranker = reranker
        self.llm = llm
        self._pool = pool
        self._search_limit = search_limit
        self._understanding_budget_s = understanding_budget_s
        self._all_collections = tuple(collections)
        self._understanding_cache = understanding_cache or UnderstandingCache(0, 0)
        self._embedding_cache = embedding_cache or EmbeddingCache(0)
        self._batcher = (
            MicroBatcher(
                self._embed_now,
                embed_batch_window_s,
                max_texts=embed_batch_max_texts,
                max_in_flight=embed_batches_in_flight,
            )
            if embed_batch_window_s > 0
            else None
        )

    async def _optional(self, step: str, work: Awaitable[T], fallback: T, degraded: list[str]) -> T:
        """Run a step the answer can live without; on failure, note it and carry on with ``fallback``."""
        try:
            return await work
        except OverloadedError:
            raise  # the gateway itself is full: shed the request (503), don't answer half of it
        except (GatewayError, TimeoutError) as exc:
            _skip(step, exc.error_type if isinstance(exc, GatewayError) else "step budget exceeded", degraded)
            return fallback

    async def _within(self, budget_s: float, work: Awaitable[T]) -> T:
        async with asyncio.timeout(budget_s):
            return await work

    async def _understand(
        self, query: str, timings: StageTimings, degraded: list[str]
    ) -> tuple[str | None, list[str]]:
        """Self-query and expansion, concurrently; each may fail or run late without failing the request."""
        cached = self._understanding_cache.get(query)
        if cached is not None:
            timings.ms["understanding_cache"] = 0.0
            return cached
        author, queries = await self._understand_uncached(query, timings, degraded)
        if not degraded:
            self._understanding_cache.put(query, author, queries)
        return author, queries

    async def _understand_uncached(
        self, query: str, timings: StageTimings, degraded: list[str]
    ) -> tuple[str | None, list[str]]:
        budget = self._understanding_budget_s
        return await asyncio.gather(
            self._optional(
                "self_query",
                timings.timed("self_query", self._within(budget, self._self_query.extract_author(query))),
                None,
                degraded,
            ),
            self._optional(
                "expand",
                timings.timed("expand", self._within(budget, self._expander.expand(query))),
                [query],
                degraded,
            ),
        )

    async def _search(
        self, collections: Sequence[str], vectors: list[Vector], author: str | None, degraded: list[str]
    ) -> list[Hit]:
        """Every collection at once; a collection that fails is left out, the others still answer."""
        results = await self._store.search_collections(collections, vectors, author, self._search_limit)
        lists: list[list[Hit]] = []
        for name, result in results.items():
            if isinstance(result, OverloadedError):
                raise result
            if isinstance(result, GatewayError):
                _skip(f"search:{name}", result.error_type, degraded)
                continue
            lists.extend(result)
        return deduplicate(lists)

    async def _rerank(
        self, query: str, vector: Vector, candidates: list[Hit], k: int, degraded: list[str]
    ) -> list[RankedSource]:
        try:
            if self._reranker.is_cheap(candidates):
                scores = self._reranker.score(query, vector, candidates)
            else:
                scores = await self._pool.run(self._reranker.score, query, vector, candidates)
        except OverloadedError:
            raise
        except Exception as exc:  # a reranker bug or model failure must not cost the answer
            _skip("rerank", type(exc).__name__, degraded)
            scores = [hit.score for hit in candidates]  # keep vector order
        return [RankedSource(hit, score) for hit, score in top_k(candidates, scores, k)]

    async def prepare(self, query: str, k: int, timings: StageTimings) -> PreparedAnswer:
        """Everything before generation: query understanding, retrieval, reranking, the prompt."""
        degraded: list[str] = []
        raw_author, queries = await self._understand(query, timings, degraded)
        with timings.stage("resolve_author"):
            author, collections = await self._optional(
                "resolve_author", self._catalog_lookup(raw_author), (None, self._all_collections), degraded
            )
        with timings.stage("embed"):
            vectors = await self._embedding_cache.embed(queries, self._embed)
        with timings.stage("search"):
            candidates = await self._search(collections, vectors, author, degraded)
        with timings.stage("rerank"):
            ranked = await self._rerank(query, vectors[0], candidates, k, degraded)
        prompt = build_prompt(query, [source.hit for source in ranked])
        return PreparedAnswer(prompt, ranked, author, queries, degraded)

    async def run(self, query: str, k: int, timings: StageTimings | None = None) -> RagResult:
        timings = timings if timings is not None else StageTimings()
        with timings.stage("total"):
            prepared = await self.prepare(query, k, timings)
            generation = await timings.timed("llm", self.llm.generate(prepared.prompt))
        return RagResult(
            answer=generation.text,
            sources=prepared.sources,
            author=prepared.author,
            queries=prepared.queries,
            timings_ms=timings.ms,
            degraded=prepared.degraded,
        )

    async def _embed(self, texts: list[str]) -> list[Vector]:
        """Through the micro-batcher when it is on, so concurrent requests share one model run."""
        if self._batcher is not None:
            return await self._batcher.embed(texts)
        return await self._embed_now(texts)

    async def _embed_now(self, texts: list[str]) -> list[Vector]:
        return await self._pool.run(self._embedder.embed, texts)

    async def _catalog_lookup(self, raw_author: str | None) -> tuple[str | None, tuple[str, ...]]:
        return await self._catalog.resolve_author(raw_author), await self._catalog.collections()
