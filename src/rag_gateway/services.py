"""Everything a request needs that must exist once per process: clients, models, pool, pipeline.

Built in the FastAPI lifespan and torn down in reverse order on shutdown (pool last, once nothing can
submit to it any more).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import openai

from rag_gateway.caches import EmbeddingCache, UnderstandingCache
from rag_gateway.clients import make_openai_client, make_sagemaker_client
from rag_gateway.compute import CpuPool
from rag_gateway.corpus import CorpusCatalog
from rag_gateway.embedding import Embedder
from rag_gateway.generation import LLM
from rag_gateway.llm import SageMakerLLM
from rag_gateway.observability.metrics import Metrics
from rag_gateway.openai_llm import OpenAICompatibleLLM
from rag_gateway.pipeline import RagPipeline
from rag_gateway.query_expansion import QueryExpander
from rag_gateway.reranking import build_reranker
from rag_gateway.resilience import CircuitBreaker, RetryPolicy, UpstreamGuard
from rag_gateway.self_query import SelfQuery
from rag_gateway.settings import COLLECTIONS, Settings
from rag_gateway.vector_store import VectorStore

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


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: CpuPool
    embedder: Embedder
    store: VectorStore
    openai: openai.AsyncOpenAI
    sagemaker: Any
    catalog: CorpusCatalog
    pipeline: RagPipeline
    guards: dict[str, UpstreamGuard]


@asynccontextmanager
async def open_services(settings: Settings, metrics: Metrics) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        pool = CpuPool(settings.cpu_pool_workers, settings.cpu_pool_max_queue)
        metrics.pool_pending.set_function(lambda: pool.pending)
        guards = {
            name: make_guard(name, settings, metrics) for name in ("openai", "qdrant", "sagemaker", "llm")
        }
        stack.callback(pool.shutdown)
        embedder = await pool.run(Embedder, settings)
        reranker = await pool.run(build_reranker, settings, embedder)
        store = VectorStore(settings, pool, guards["qdrant"])
        stack.push_async_callback(store.close)
        openai_client = make_openai_client(settings)
        stack.push_async_callback(openai_client.close)
        sagemaker = await make_sagemaker_client(settings, stack)
        catalog = CorpusCatalog(store, COLLECTIONS, settings.author_cache_ttl_s)
        pipeline = RagPipeline(
            self_query=SelfQuery(openai_client, guards["openai"], settings.openai_model_id),
            expander=QueryExpander(
                openai_client, guards["openai"], settings.openai_model_id, settings.query_expansion_n
            ),
            catalog=catalog,
            embedder=embedder,
            store=store,
            reranker=reranker,
            llm=build_llm(settings, openai_client, sagemaker, guards),
            pool=pool,
            search_limit=settings.search_limit_per_query,
            understanding_budget_s=settings.query_understanding_timeout_s,
            collections=COLLECTIONS,
            understanding_cache=UnderstandingCache(settings.query_cache_size, settings.query_cache_ttl_s),
            embedding_cache=EmbeddingCache(settings.embedding_cache_size),
            embed_batch_window_s=settings.embed_batch_window_ms / 1000,
            embed_batches_in_flight=settings.effective_embed_batches_in_flight,
            embed_batch_max_texts=settings.effective_embed_batch_max_texts,
        )
        logger.info(
            "services ready: embedder=%s reranker=%s store=%s",
            embedder.model_id,
            reranker.name,
            "remote" if settings.uses_remote_qdrant else "local",
        )
        yield Services(settings, pool, embedder, store, openai_client, sagemaker, catalog, pipeline, guards)
