"""The LLM Engineer's Handbook's inference design, kept as the benchmark's reference point.

    python -m benchmarks.handbook_baseline --port 8010      (settings from the environment, as the gateway)

The Handbook serves ``POST /rag`` from an ``async def`` FastAPI endpoint that calls its synchronous RAG code
directly, so the event loop is blocked for the whole request and one process answers one request at a
time. Reproduced here on purpose, with the same emulators, embedder, reranker and prompt as the gateway:

- ``async def rag`` runs everything synchronously, in the event loop's thread;
- self-query, then query expansion, one after the other, each on a new synchronous ``openai.OpenAI``
  client (the Handbook builds a new LangChain ``ChatOpenAI`` in each ``generate``);
- per expanded query (in a per-request ``ThreadPoolExecutor``, as the Handbook's ``ContextRetriever``):
  embed that one query, then search the collections one after the other;
- rerank synchronously, build the Handbook's prompt (``rag_gateway.rag.prompt.build_prompt``);
- call SageMaker on a synchronous ``boto3`` ``sagemaker-runtime`` client created for this request (the
  Handbook builds ``LLMInferenceSagemakerEndpoint``, and its ``boto3.client``, per call).

Deviations, to run on one machine with no accounts:

- Qdrant: the embedded engine instead of a Qdrant server, called synchronously (its calls are). It locks
  its folder per process, so ONE store is opened at start-up (the Handbook also keeps one module-level
  client) on this process's own copy of the folder (``QDRANT_PATH``; ``benchmarks/bench.py`` copies the
  gateway's).
- Authors: the Handbook resolves the self-queried name through MongoDB (``UserDocument.get_or_create``)
  and filters on ``author_id``; here the indexed names are read once at start-up (the gateway caches them
  too) and the filter is on ``author_full_name``, like the gateway's.
- Work per request is the gateway's dense retrieval: the same models (MiniLM, the configured reranker),
  the same engine's search (one query at a time, collection after collection; no BM25), the same
  number of expansions (``QUERY_EXPANSION_N``) and of hits per (collection, query) search
  (``SEARCH_LIMIT_PER_QUERY``; the Handbook keeps ``k // 3``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import openai
from fastapi import FastAPI, Request

from benchmarks.cpu_model import indexed_authors
from rag_gateway.api.schemas import RagRequest
from rag_gateway.clients.aws import aws_credentials
from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.llm.sagemaker import parse_generated_text
from rag_gateway.rag.outcome import StageTimings
from rag_gateway.rag.prompt import build_prompt
from rag_gateway.rag.retrieval.catalog import normalise_name
from rag_gateway.rag.retrieval.embedding import Embedder, Vector
from rag_gateway.rag.retrieval.ranking import deduplicate
from rag_gateway.rag.retrieval.reranking import (
    CrossEncoderReranker,
    Reranker,
    build_reranker,
    ids_by_collection,
    scores_in_order,
    top_k,
)
from rag_gateway.rag.retrieval.stores import Hit
from rag_gateway.rag.retrieval.stores.edge import EdgeStore
from rag_gateway.rag.understanding.expansion import SYSTEM_PROMPT as EXPANSION_PROMPT
from rag_gateway.rag.understanding.expansion import expansion_schema, parse_expansions
from rag_gateway.rag.understanding.self_query import SCHEMA as SELF_QUERY_SCHEMA
from rag_gateway.rag.understanding.self_query import SYSTEM_PROMPT as SELF_QUERY_PROMPT
from rag_gateway.rag.understanding.self_query import parse_author


@dataclass
class BaselineState:
    settings: Settings
    embedder: Embedder
    reranker: Reranker
    store: EdgeStore
    collections: list[str]
    authors: dict[str, str]


def _chat(settings: Settings, system: str, user: str, schema_name: str, schema: dict[str, Any]) -> str:
    """One structured chat call on a brand-new synchronous client, as the Handbook does per step."""
    with openai.OpenAI(
        api_key=settings.openai_api_key.get_secret_value() or "missing-key",
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_s,  # retries: the SDK's default (2), as LangChain's ChatOpenAI
    ) as client:
        completion = client.chat.completions.create(
            model=settings.openai_model_id,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            },
            temperature=0,
        )
    return completion.choices[0].message.content or ""


def self_query(settings: Settings, query: str) -> str | None:
    return parse_author(_chat(settings, SELF_QUERY_PROMPT, query, "self_query", SELF_QUERY_SCHEMA))


def expand(settings: Settings, query: str) -> list[str]:
    n = settings.query_expansion_n - 1
    if n <= 0:
        return [query]
    content = _chat(settings, EXPANSION_PROMPT.format(n=n), query, "query_expansion", expansion_schema(n))
    return [query, *parse_expansions(content, query, n)]


def search_one_query(state: BaselineState, query: str, author: str | None) -> tuple[Vector, list[Hit]]:
    """The Handbook's ``_search``: embed one query, then search each collection in turn."""
    vector = state.embedder.embed([query])[0]
    limit = state.settings.search_limit_per_query
    return vector, [
        hit
        for collection in state.collections
        for hit in state.store.search(collection, [vector], author, limit)[0]
    ]


def rerank_sync(state: BaselineState, query: str, vector: Vector, hits: Sequence[Hit]) -> list[float]:
    """The configured reranker's scores, synchronously."""
    if isinstance(state.reranker, CrossEncoderReranker):
        return state.reranker.score_now(query, hits)
    return scores_in_order(hits, state.store.exact_scores(vector, ids_by_collection(hits)))


def generate(settings: Settings, prompt: str) -> str:
    """InvokeEndpoint on a ``boto3`` client created for this call (the Handbook's per-request client)."""
    client = boto3.client(
        "sagemaker-runtime",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url_sagemaker_runtime,
        **aws_credentials(settings.aws_access_key, settings.aws_secret_key),
    )
    response = client.invoke_endpoint(
        EndpointName=settings.sagemaker_endpoint_inference,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(
            {
                "inputs": prompt,
                "parameters": {
                    "max_new_tokens": settings.max_new_tokens_inference,
                    "temperature": settings.temperature_inference,
                    "top_p": settings.top_p_inference,
                    "repetition_penalty": settings.repetition_penalty_inference,
                    "return_full_text": False,
                },
            }
        ),
    )
    text = parse_generated_text(response["Body"].read())
    return text.removeprefix(prompt).strip()


def rag_sync(state: BaselineState, query: str, k: int) -> dict[str, Any]:
    """The whole request, synchronously (called straight from ``async def``: it blocks the event loop)."""
    settings = state.settings
    timings = StageTimings()
    with timings.stage("total"):
        with timings.stage("self_query"):
            raw_author = self_query(settings, query)
        with timings.stage("expand"):
            queries = expand(settings, query)
        author = state.authors.get(normalise_name(raw_author)) if raw_author else None
        with timings.stage("retrieve"), concurrent.futures.ThreadPoolExecutor() as executor:
            results = list(executor.map(lambda q: search_one_query(state, q, author), queries))
        candidates = deduplicate([hits for _, hits in results])
        with timings.stage("rerank"):
            scores = rerank_sync(state, query, results[0][0], candidates)
        ranked = top_k(candidates, scores, k)
        prompt = build_prompt(query, [hit for hit, _ in ranked])
        with timings.stage("llm"):
            answer = generate(settings, prompt)
    return {
        "answer": answer,
        "sources": [
            {
                "id": hit.id,
                "collection": hit.collection,
                "title": hit.payload.get("title"),
                "link": hit.payload.get("link"),
                "author": hit.payload.get("author_full_name"),
                "platform": hit.payload.get("platform"),
                "score": round(score, 6),
            }
            for hit, score in ranked
        ],
        "author_filter": author,
        "queries": queries,
        "timings_ms": timings.ms,
        "request_id": uuid.uuid4().hex,
    }


def open_state(settings: Settings) -> BaselineState:
    embedder = Embedder(settings)  # the Handbook's embedding model is a process-wide singleton too
    store = EdgeStore(settings)
    reranker = build_reranker(settings, store)
    collections = [c for c in COLLECTIONS if c in store.collection_names()]
    return BaselineState(
        settings, embedder, reranker, store, collections, indexed_authors(store, collections)
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    resolved = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = open_state(resolved)
        app.state.baseline = state
        try:
            yield
        finally:
            await state.store.close()

    app = FastAPI(title="handbook-baseline", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/rag")
    async def rag(body: RagRequest, request: Request) -> dict[str, Any]:
        # Deliberately synchronous inside ``async def``: this is the design being measured.
        state: BaselineState = request.app.state.baseline
        return rag_sync(state, body.query, body.k or state.settings.default_top_k)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve the Handbook-style baseline (one process).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
