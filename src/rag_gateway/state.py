"""The lifespan-owned objects, in one place: clients, models, pool, store and the pipeline built on them.

Built in the FastAPI lifespan and torn down in reverse order on shutdown (pool last, once nothing can
submit to it any more).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import openai

from rag_gateway.clients.aws import make_sagemaker_client
from rag_gateway.clients.openai import make_openai_client
from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.errors import GatewayError
from rag_gateway.llm.base import LLM
from rag_gateway.llm.openai_compatible import OpenAICompatibleLLM
from rag_gateway.llm.sagemaker import SageMakerLLM
from rag_gateway.observability.metrics import Metrics
from rag_gateway.rag.caches import EmbeddingCache, UnderstandingCache
from rag_gateway.rag.pipeline import RagPipeline
from rag_gateway.rag.retrieval.catalog import CorpusCatalog, common_term_policy
from rag_gateway.rag.retrieval.embedding import Embedder
from rag_gateway.rag.retrieval.options import RetrievalProfiles
from rag_gateway.rag.retrieval.query_embedding import QueryEmbedder
from rag_gateway.rag.retrieval.reranking import build_reranker
from rag_gateway.rag.retrieval.schema import IndexSchema, index_schema
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores import StoreUnavailableError, VectorStore, open_vector_store
from rag_gateway.rag.tokens import TokenCounter
from rag_gateway.rag.understanding import QueryUnderstanding
from rag_gateway.rag.understanding.conversation import ConversationRewriter
from rag_gateway.rag.understanding.expansion import QueryExpander
from rag_gateway.rag.understanding.self_query import SelfQuery
from rag_gateway.resilience import CircuitBreaker, RetryPolicy, UpstreamGuard
from rag_gateway.runtime.cpu_pool import CpuPool

logger = logging.getLogger("rag_gateway")


def make_guard(name: str, settings: Settings, metrics: Metrics) -> UpstreamGuard:
    policy = RetryPolicy(settings.retry_max_attempts, settings.retry_base_delay_s, settings.retry_max_delay_s)
    breaker = CircuitBreaker(name, settings.breaker_failure_threshold, settings.breaker_reset_timeout_s)
    metrics.watch_breaker(name, lambda: breaker.state)
    return UpstreamGuard(name, policy, breaker, observer=metrics)


def build_llm(
    settings: Settings, openai_client: openai.AsyncOpenAI, sagemaker: Any, guards: dict[str, UpstreamGuard]
) -> LLM:
    if settings.llm_backend == "openai":
        return OpenAICompatibleLLM(openai_client, guards["llm"], settings)
    return SageMakerLLM(sagemaker, guards["sagemaker"], settings)


def open_store_or_explain(settings: Settings, guard: UpstreamGuard) -> VectorStore:
    """The vector store; when it cannot be opened, the reason and the fix go to the log as one line."""
    try:
        return open_vector_store(settings, guard)
    except StoreUnavailableError as exc:
        logger.error("cannot start: %s", exc)
        raise


async def check_schema_or_explain(store: VectorStore, schema: IndexSchema) -> None:
    """An index of another shape would mix vectors silently: refuse it, saying how to rebuild."""
    try:
        await store.check_schema(schema)
    except StoreUnavailableError as exc:
        logger.error("cannot start: %s", exc)
        raise


async def warm_catalog(catalog: CorpusCatalog) -> None:
    """Read the embedded store's catalogue (authors, common BM25 terms) before serving, so the first
    request does not pay for it; a failure leaves that to the first request, as with a server."""
    try:
        await catalog.refresh()
    except GatewayError as exc:
        logger.warning("the corpus catalogue could not be read at start-up: %s", exc.error_type)


@dataclass(frozen=True)
class AppState:
    """What the routes read: the settings, the pipeline, and what the readiness check probes."""

    settings: Settings
    pipeline: RagPipeline
    store: VectorStore
    embedding_model_id: str


@asynccontextmanager
async def open_app_state(settings: Settings, metrics: Metrics) -> AsyncIterator[AppState]:
    async with AsyncExitStack() as stack:
        # The embedding threads need the GIL back between their model runs; at Python's 5 ms
        # interval each hand-back waits behind the busy event loop (docs/performance.md).
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        stack.callback(sys.setswitchinterval, previous_interval)
        pool = CpuPool(settings.cpu_pool_workers, settings.cpu_pool_max_queue)
        metrics.pool_pending.set_function(lambda: pool.pending)
        guards = {
            name: make_guard(name, settings, metrics) for name in ("openai", "qdrant", "sagemaker", "llm")
        }
        stack.callback(pool.shutdown)
        store = open_store_or_explain(settings, guards["qdrant"])  # first: a locked folder fails fast
        stack.push_async_callback(store.close)
        embedder = await pool.run(Embedder, settings)
        schema = index_schema(settings, embedder.dim)
        await check_schema_or_explain(store, schema)
        reranker = await pool.run(build_reranker, settings, store, pool)
        openai_client = make_openai_client(settings)
        stack.push_async_callback(openai_client.close)
        sagemaker = await make_sagemaker_client(settings, stack)
        profiles = RetrievalProfiles.from_settings(settings)
        catalog = CorpusCatalog(
            store, COLLECTIONS, settings.author_cache_ttl_s, common_term_policy(settings, profiles)
        )
        if not settings.uses_remote_qdrant:
            await warm_catalog(catalog)
        query_embedder = QueryEmbedder(
            embedder,
            EmbeddingCache(settings.embedding_cache_size),
            batch_window_s=settings.embed_batch_window_ms / 1000,
            workers=settings.effective_embed_batches_in_flight,
            batch_max_texts=settings.effective_embed_batch_max_texts,
            nice=settings.embed_thread_nice,
        )
        stack.push_async_callback(asyncio.to_thread, query_embedder.close)
        metrics.embed_queue.set_function(lambda: query_embedder.pending)
        understanding = QueryUnderstanding(
            SelfQuery(openai_client, guards["openai"], settings.openai_model_id),
            QueryExpander(
                openai_client, guards["openai"], settings.openai_model_id, settings.query_expansion_n
            ),
            settings.query_understanding_timeout_s,
            UnderstandingCache(settings.query_cache_size, settings.query_cache_ttl_s),
            ConversationRewriter(
                openai_client,
                guards["openai"],
                settings.openai_model_id,
                max_chars=settings.max_query_chars,
                cache_size=settings.query_cache_size,
                cache_ttl_s=settings.query_cache_ttl_s,
            ),
        )
        pipeline = RagPipeline(
            understanding=understanding,
            catalog=catalog,
            query_embedder=query_embedder,
            store=store,
            reranker=reranker,
            llm=build_llm(settings, openai_client, sagemaker, guards),
            pool=pool,
            search_limit=settings.search_limit_per_query,
            collections=COLLECTIONS,
            profiles=profiles,
            sparse=SparseEncoder(schema.bm25),
            tokens=TokenCounter(settings.embedding_tokenizer_dir / "tokenizer.json"),
            history_tokens=settings.chat_history_tokens,
        )
        logger.info(
            "services ready: embedder=%s reranker=%s store=%s",
            embedder.model_id,
            reranker.name,
            "remote" if settings.uses_remote_qdrant else "local",
        )
        yield AppState(settings, pipeline, store, embedder.model_id)
