"""Query understanding: a chat's follow-up rewritten to stand alone (only when there is a history), then
self-query and expansion together: concurrent, budgeted, cached, each allowed to fail alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rag_gateway.rag.caches import UnderstandingCache
from rag_gateway.rag.outcome import RequestOutcome
from rag_gateway.rag.steps import optional_step
from rag_gateway.rag.understanding.conversation import ConversationRewriter, Turn
from rag_gateway.rag.understanding.expansion import QueryExpander
from rag_gateway.rag.understanding.self_query import SelfQuery

#: The author named in the question (as the model wrote it), and the queries to search: the question first
#: (a chat's follow-up as rewritten to stand alone).
Understood = tuple[str | None, list[str]]


class QueryUnderstanding:
    def __init__(
        self,
        self_query: SelfQuery,
        expander: QueryExpander,
        budget_s: float,
        cache: UnderstandingCache | None = None,
        rewriter: ConversationRewriter | None = None,
    ) -> None:
        self._self_query = self_query
        self._expander = expander
        self._budget_s = budget_s
        self._cache = cache or UnderstandingCache(0, 0)
        self._rewriter = rewriter

    async def understand(
        self, query: str, outcome: RequestOutcome, history: Sequence[Turn] = ()
    ) -> Understood:
        """With a ``history``, first the rewrite of ``query`` into a standalone question (its own budget; on
        failure, ``query`` as it is). Then both OpenAI calls at once on that question; a late or failed one
        costs only its own part of the answer.

        Only complete results are cached: a degraded one would pin the degradation for the cache's TTL.
        """
        if history and self._rewriter is not None:
            query = await optional_step(
                "rewrite",
                outcome.timings.timed("rewrite", self._rewriter.rewrite(query, history)),
                query,
                outcome,
                self._budget_s,
            )
        cached = self._cache.get(query)
        if cached is not None:
            outcome.timings.ms["understanding_cache"] = 0.0
            return cached
        skipped_before = len(outcome.degraded)
        timings = outcome.timings
        # the self-query in a task of its own, the expansion in this one: a gather would make each a task
        # and cost two more turns of the event loop before the request goes on
        self_query = asyncio.create_task(
            optional_step(
                "self_query",
                timings.timed("self_query", self._self_query.extract_author(query)),
                None,
                outcome,
                self._budget_s,
            )
        )
        try:
            queries = await optional_step(
                "expand",
                timings.timed("expand", self._expander.expand(query)),
                [query],
                outcome,
                self._budget_s,
            )
            author = await self_query
        finally:
            self_query.cancel()  # a no-op once it is done; else this request was cancelled
        if len(outcome.degraded) == skipped_before:
            self._cache.put(query, author, queries)
        return author, queries
