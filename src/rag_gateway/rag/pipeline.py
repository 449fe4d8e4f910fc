"""The RAG request path: understand the query, retrieve, rerank, generate.

The pipeline owns a request from the question to the last token: `answer` for a whole answer, `prepare`
then `stream` for a streamed one. A chat's earlier turns (a `Conversation`) make `prepare` rewrite the
follow-up into a standalone question first, and ride in the prompt within CHAT_HISTORY_TOKENS; a
request's `GenerationParams` go to the LLM as they are. Each records its stages, skipped steps and
decisions in the request's `RequestOutcome`, so every API face reports the same stages. Model work
(embedding, a cross-encoder, token counts) goes to the bounded CPU pool; the embedded store's calls run
inline (they hold the GIL, see `stores.edge`) and take well under a millisecond.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

from rag_gateway.errors import DeadlineExceededError, GatewayError, OverloadedError
from rag_gateway.llm.base import (
    DEFAULT_PARAMS,
    LLM,
    Generation,
    GenerationParams,
    StreamEnd,
    StreamEvent,
    TokenDelta,
)
from rag_gateway.rag.outcome import RequestOutcome
from rag_gateway.rag.prompt import build_prompt
from rag_gateway.rag.retrieval.catalog import CorpusCatalog
from rag_gateway.rag.retrieval.embedding import Vector
from rag_gateway.rag.retrieval.fusion import RankedList
from rag_gateway.rag.retrieval.options import RetrievalOptions, RetrievalProfiles
from rag_gateway.rag.retrieval.query_embedding import QueryEmbedder
from rag_gateway.rag.retrieval.ranking import (
    Candidate,
    deduplicate,
    one_per_document,
    rank_by_fusion,
    rank_by_reranker,
    ranked_lists,
)
from rag_gateway.rag.retrieval.reranking import Reranker
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores import Hit, VectorStore
from rag_gateway.rag.retrieval.stores.base import SearchVector, SparseVector
from rag_gateway.rag.steps import optional_step
from rag_gateway.rag.tokens import PromptTokens, TokenCounter
from rag_gateway.rag.understanding import QueryUnderstanding
from rag_gateway.rag.understanding.conversation import NO_CONVERSATION, Conversation, recent_history
from rag_gateway.resilience import deadline_scope
from rag_gateway.runtime.cpu_pool import CpuPool


@dataclass(frozen=True, slots=True)
class RankedSource:
    hit: Hit
    score: float
    #: How retrieval ranked it: 1-based ranks per signal (dense, sparse, rerank) and the scores.
    ranks: dict[str, int] = field(default_factory=dict)
    rerank_score: float | None = None
    fused_score: float | None = None


@dataclass(frozen=True, slots=True)
class PreparedAnswer:
    """Retrieval's result: the prompt for the LLM, what the answer will cite, and the next best."""

    prompt: str
    sources: list[RankedSource]
    runners_up: list[RankedSource] = field(default_factory=list)
    #: The question retrieval answered: the query, or a chat's follow-up rewritten to stand alone.
    question: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: what retrieval prepared and what the LLM generated from it."""

    prepared: PreparedAnswer
    generation: Generation


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
        options: RetrievalOptions | None = None,
        profiles: RetrievalProfiles | None = None,
        sparse: SparseEncoder | None = None,
        tokens: TokenCounter | None = None,
        history_tokens: int = 1024,
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
        self._profiles = profiles or RetrievalProfiles.single(options or RetrievalOptions())
        self._sparse = sparse or SparseEncoder()
        self._tokens = tokens or TokenCounter()
        self._prompt_tokens = PromptTokens(self._tokens, pool)
        self._history_tokens = history_tokens

    async def answer(
        self,
        query: str,
        k: int,
        outcome: RequestOutcome,
        conversation: Conversation = NO_CONVERSATION,
        params: GenerationParams = DEFAULT_PARAMS,
    ) -> Answer:
        """Retrieval, then the LLM's whole answer."""
        prepared = await self.prepare(query, k, outcome, conversation)
        return Answer(prepared, await self.generate(prepared, outcome, params))

    async def prepare(
        self, query: str, k: int, outcome: RequestOutcome, conversation: Conversation = NO_CONVERSATION
    ) -> PreparedAnswer:
        """Everything before generation: query understanding, retrieval, reranking, the prompt."""
        outcome.begin(query)
        timings = outcome.timings
        if conversation.history:
            history = await self._pool.run(
                recent_history, conversation.history, self._history_tokens, self._tokens
            )
            conversation = Conversation(history, conversation.system)
        raw_author, queries = await self._understanding.understand(query, outcome, conversation.history)
        question = queries[0]
        with timings.stage("resolve_author"):
            author, collections = await optional_step(
                "resolve_author", self._catalog_lookup(raw_author), (None, self._all_collections), outcome
            )
        outcome.author, outcome.queries = author, queries
        options = self._profiles.options_for(self._catalog.points())
        outcome.profile = options.profile
        with timings.stage("embed"):
            vectors = await self._query_embedder.embed(queries)
        hybrid = options.mode == "hybrid"
        searches: list[SearchVector] = list(vectors)
        if hybrid:
            searches += [self._sparse.query(text) for text in options.sparse_texts(queries)]
        limit = max(self._search_limit, 2 * k * options.per_document)
        with timings.stage("search"):
            lists = await self._search(collections, searches, len(vectors), author, limit, options, outcome)
        with timings.stage("rerank"):
            candidates = deduplicate([ranked.hits for ranked in lists])
            scores = await self._rerank(question, vectors[0], candidates, outcome)
            if hybrid:
                ranked = rank_by_fusion(candidates, scores, lists, options.weights)
            else:
                ranked = rank_by_reranker(candidates, scores, lists)
            kept, runners_up = one_per_document(ranked, k, options.per_document)
        sources = [_source(candidate) for candidate in kept]
        return PreparedAnswer(
            build_prompt(question, [source.hit for source in sources], conversation),
            sources,
            [_source(candidate) for candidate in runners_up[:k]],
            question,
        )

    async def generate(
        self, prepared: PreparedAnswer, outcome: RequestOutcome, params: GenerationParams = DEFAULT_PARAMS
    ) -> Generation:
        """The LLM's whole answer to a prepared prompt, with its token counts (the backend's, else counted
        here)."""
        generation = await outcome.timings.timed("llm", self._llm.generate(prepared.prompt, params))
        if generation.prompt_tokens is None:
            generation = replace(generation, prompt_tokens=await self.count_prompt(prepared))
        if generation.generated_tokens is None:
            counted = await self._pool.run(self._tokens.count, generation.text)  # a backend that says not
            generation = replace(generation, generated_tokens=counted)
        outcome.finish()
        return generation

    async def count_prompt(self, prepared: PreparedAnswer) -> int:
        """The prompt's tokens by the gateway's own counter (see `rag.tokens`): only new lines cost."""
        return await self._prompt_tokens.count(prepared.prompt)

    async def stream(
        self,
        prepared: PreparedAnswer,
        outcome: RequestOutcome,
        timeout_s: float,
        params: GenerationParams = DEFAULT_PARAMS,
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
                    async for event in self._llm.stream(prepared.prompt, params):
                        if isinstance(event, TokenDelta) and tokens == 0:
                            timings.ms["first_token"] = _ms_since(started)
                        tokens += isinstance(event, TokenDelta)
                        if isinstance(event, StreamEnd):
                            if event.generated_tokens is None:
                                event = replace(event, generated_tokens=tokens)
                            if event.prompt_tokens is None:
                                event = replace(event, prompt_tokens=await self.count_prompt(prepared))
                        yield event
            except TimeoutError as exc:
                raise DeadlineExceededError(
                    "the answer did not complete within the request's deadline"
                ) from exc
        timings.ms["llm"] = _ms_since(started)
        outcome.finish()

    async def _search(
        self,
        collections: Sequence[str],
        searches: list[SearchVector],
        dense_count: int,
        author: str | None,
        limit: int,
        options: RetrievalOptions,
        outcome: RequestOutcome,
    ) -> list[RankedList]:
        """Every collection at once, every query in one batch per collection; a collection that fails is
        left out, the others still answer."""
        results: dict[str, list[list[Hit]] | GatewayError] = {}
        for group_searches, group in self._search_groups(collections, searches, options.common_term_share):
            results.update(await self._store.search_collections(group, group_searches, author, limit))
        lists: list[RankedList] = []
        for name, result in results.items():
            if isinstance(result, OverloadedError):
                raise result
            if isinstance(result, GatewayError):
                outcome.skip(f"search:{name}", result.error_type)
                continue
            lists += ranked_lists(result, dense_count)
        return lists

    def _search_groups(
        self, collections: Sequence[str], searches: list[SearchVector], common_term_share: float
    ) -> list[tuple[tuple[SearchVector, ...], list[str]]]:
        """The collections by the searches they run: a large collection's BM25 queries leave out its
        common terms (`common_terms`); collections that run the same searches share one call."""
        common = self._catalog.common_terms(common_term_share)
        if not common.by_collection:  # dense mode, a small corpus, or the cut off: one call for all
            return [(tuple(searches), list(collections))]
        groups: dict[tuple[SparseVector, ...], tuple[tuple[SearchVector, ...], list[str]]] = {}
        for name in collections:
            queries = common.queries_for(name, searches)
            key = tuple(query for query in queries if isinstance(query, SparseVector))
            groups.setdefault(key, (queries, []))[1].append(name)
        return list(groups.values())

    async def _rerank(
        self, query: str, vector: Vector, candidates: list[Hit], outcome: RequestOutcome
    ) -> list[float]:
        """A relevance score per candidate against the original question."""
        try:
            return await self._reranker.score(query, vector, candidates)
        except OverloadedError:
            raise
        except Exception as exc:  # a reranker bug or model failure must not cost the answer
            outcome.skip("rerank", type(exc).__name__)
            return [hit.score for hit in candidates]  # keep vector order

    async def _catalog_lookup(self, raw_author: str | None) -> tuple[str | None, tuple[str, ...]]:
        return await self._catalog.resolve_author(raw_author), await self._catalog.collections()


def _source(candidate: Candidate) -> RankedSource:
    """A cited chunk; its score is the reranker's (an absolute relevance to the question, comparable across
    questions), while the order may come from fusion, whose scores only rank within one question."""
    return RankedSource(
        candidate.hit, candidate.rerank_score, candidate.ranks, candidate.rerank_score, candidate.fused_score
    )


def _ms_since(started: float) -> float:
    return round((asyncio.get_running_loop().time() - started) * 1000, 2)
