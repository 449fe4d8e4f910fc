"""The RAG request path: understand the query, retrieve, rerank, generate.

The pipeline owns a request from the question to the last token: `answer` for a whole answer, `prepare`
then `stream` for a streamed one. Each records its stages, skipped steps and decisions in the request's
`RequestOutcome`, so every API face reports the same stages. CPU work (embedding, reranking, an
in-process vector search) goes to the bounded CPU pool so the event loop only ever waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from rag_gateway.errors import DeadlineExceededError, GatewayError, OverloadedError
from rag_gateway.llm.base import LLM, Generation, StreamEnd, StreamEvent, TokenDelta
from rag_gateway.rag.outcome import RequestOutcome
from rag_gateway.rag.prompt import build_prompt
from rag_gateway.rag.retrieval.catalog import CorpusCatalog
from rag_gateway.rag.retrieval.embedding import Vector
from rag_gateway.rag.retrieval.query_embedding import QueryEmbedder
from rag_gateway.rag.retrieval.reranking import Reranker, top_k
from rag_gateway.rag.retrieval.stores import Hit, VectorStore
from rag_gateway.rag.steps import optional_step
from rag_gateway.rag.understanding import QueryUnderstanding
from rag_gateway.resilience import deadline_scope
from rag_gateway.runtime.cpu_pool import CpuPool


@dataclass(frozen=True, slots=True)
class RankedSource:
    hit: Hit
    score: float


@dataclass(frozen=True, slots=True)
class PreparedAnswer:
    """Retrieval's result: the prompt for the LLM and what the answer will cite."""

    prompt: str
    sources: list[RankedSource]


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: what retrieval prepared and what the LLM generated from it."""

    prepared: PreparedAnswer
    generation: Generation


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
        understanding: QueryUnderstanding,
        catalog: CorpusCatalog,
        query_embedder: QueryEmbedder,
        store: VectorStore,
        reranker: Reranker,
        llm: LLM,
        pool: CpuPool,
        search_limit: int,
        collections: Sequence[str],
    ) -> None:
        self._understanding = understanding
        self._catalog = catalog
        self._query_embedder = query_embedder
        self._store = store
        self._reranker = reranker
        self._llm = llm
        self._pool = pool
        self._search_limit = search_limit
        self._all_collections = tuple(collections)

    async def answer(self, query: str, k: int, outcome: RequestOutcome) -> Answer:
        """Retrieval, then the LLM's whole answer."""
        prepared = await self.prepare(query, k, outcome)
        return Answer(prepared, await self.generate(prepared, outcome))

    async def prepare(self, query: str, k: int, outcome: RequestOutcome) -> PreparedAnswer:
        """Everything before generation: query understanding, retrieval, reranking, the prompt."""
        outcome.begin(query)
        timings = outcome.timings
        raw_author, queries = await self._understanding.understand(query, outcome)
        with timings.stage("resolve_author"):
            author, collections = await optional_step(
                "resolve_author", self._catalog_lookup(raw_author), (None, self._all_collections), outcome
            )
        outcome.author, outcome.queries = author, queries
        with timings.stage("embed"):
            vectors = await self._query_embedder.embed(queries)
        with timings.stage("search"):
            candidates = await self._search(collections, vectors, author, outcome)
        with timings.stage("rerank"):
            ranked = await self._rerank(query, vectors[0], candidates, k, outcome)
        return PreparedAnswer(build_prompt(query, [source.hit for source in ranked]), ranked)

    async def generate(self, prepared: PreparedAnswer, outcome: RequestOutcome) -> Generation:
        """The LLM's whole answer to a prepared prompt."""
        generation = await outcome.timings.timed("llm", self._llm.generate(prepared.prompt))
        outcome.finish()
        return generation

    async def stream(
        self, prepared: PreparedAnswer, outcome: RequestOutcome, timeout_s: float
    ) -> AsyncIterator[StreamEvent]:
        """The LLM's answer as it is produced, under what is left of the request's deadline.

        Raises a `GatewayError` (`DeadlineExceededError` when the deadline passes) once tokens may already
        have been sent; the caller turns it into an error event.
        """
        timings = outcome.timings
        started = asyncio.get_running_loop().time()
        tokens = 0
        with deadline_scope(timeout_s):
            try:
                async with asyncio.timeout(timeout_s):
                    async for event in self._llm.stream(prepared.prompt):
                        if isinstance(event, TokenDelta) and tokens == 0:
                            timings.ms["first_token"] = _ms_since(started)
                        tokens += isinstance(event, TokenDelta)
                        if isinstance(event, StreamEnd) and event.generated_tokens is None:
                            event = StreamEnd(event.finish_reason, tokens)
                        yield event
            except TimeoutError as exc:
                raise DeadlineExceededError(
                    "the answer did not complete within the request's deadline"
                ) from exc
        timings.ms["llm"] = _ms_since(started)
        outcome.finish()

    async def _search(
        self, collections: Sequence[str], vectors: list[Vector], author: str | None, outcome: RequestOutcome
    ) -> list[Hit]:
        """Every collection at once; a collection that fails is left out, the others still answer."""
        results = await self._store.search_collections(collections, vectors, author, self._search_limit)
        lists: list[list[Hit]] = []
        for name, result in results.items():
            if isinstance(result, OverloadedError):
                raise result
            if isinstance(result, GatewayError):
                outcome.skip(f"search:{name}", result.error_type)
                continue
            lists.extend(result)
        return deduplicate(lists)

    async def _rerank(
        self, query: str, vector: Vector, candidates: list[Hit], k: int, outcome: RequestOutcome
    ) -> list[RankedSource]:
        try:
            if self._reranker.is_cheap(candidates):
                scores = self._reranker.score(query, vector, candidates)
            else:
                scores = await self._pool.run(self._reranker.score, query, vector, candidates)
        except OverloadedError:
            raise
        except Exception as exc:  # a reranker bug or model failure must not cost the answer
            outcome.skip("rerank", type(exc).__name__)
            scores = [hit.score for hit in candidates]  # keep vector order
        return [RankedSource(hit, score) for hit, score in top_k(candidates, scores, k)]

    async def _catalog_lookup(self, raw_author: str | None) -> tuple[str | None, tuple[str, ...]]:
        return await self._catalog.resolve_author(raw_author), await self._catalog.collections()


def _ms_since(started: float) -> float:
    return round((asyncio.get_running_loop().time() - started) * 1000, 2)
