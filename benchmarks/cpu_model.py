"""CPU seconds of the gateway's local model work for one request, measured in isolation.

    python -m benchmarks.cpu_model [--queries ../shared/data/queries.json] [-n 100]

Settings (QDRANT_PATH, EMBEDDING_TOKENIZER_DIR, RETRIEVAL_MODE...) come from the environment and `.env`, as
for the gateway. The store folder must not be open in another process (the engine locks it).

For each question this does, in this process and with the gateway's own objects, exactly the local work of
its pipeline: embed the question and the expansions the OpenAI emulator would return in one batch, search
every collection of the embedded store (dense queries, plus BM25 queries in hybrid mode, with the author
filter self-query would give), deduplicate, rerank, fuse, keep one source per document, build the prompt.
CPU time is ``time.process_time()`` (every thread of this process, ONNX runtime's included), so the number
is the model work alone: no HTTP, no SDKs, no event loop. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime

from benchmarks.loadgen import load_questions
from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.rag.prompt import build_prompt
from rag_gateway.rag.retrieval.catalog import CorpusCatalog, normalise_name
from rag_gateway.rag.retrieval.embedding import Embedder
from rag_gateway.rag.retrieval.options import RetrievalOptions
from rag_gateway.rag.retrieval.ranking import (
    deduplicate,
    one_per_document,
    rank_by_fusion,
    rank_by_reranker,
    ranked_lists,
)
from rag_gateway.rag.retrieval.reranking import build_reranker
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores.base import SearchVector
from rag_gateway.rag.retrieval.stores.edge import EdgeStore
from rag_gateway.rag.understanding.expansion import parse_expansions
from rag_gateway.rag.understanding.self_query import parse_author
from rag_gateway_emulators import fake_llm


def emulated_understanding(question: str, alternatives: int) -> tuple[str | None, list[str]]:
    """What self-query and expansion return for ``question`` when the OpenAI emulator answers them."""
    author = parse_author(json.dumps({"author": fake_llm.find_person_name(question)}))
    if alternatives <= 0:
        return author, [question]
    content = json.dumps({"queries": fake_llm.expand_query(question, alternatives)})
    return author, [question, *parse_expansions(content, question, alternatives)]


def indexed_authors(store: EdgeStore, collections: Sequence[str]) -> dict[str, str]:
    """Every author name in ``collections``, keyed as the gateway matches names (``normalise_name``)."""
    return {normalise_name(name): name for name in store.author_names(collections)}


async def measure_async(
    settings: Settings, questions: Sequence[str], requests: int, warmup: int
) -> dict[str, Any]:
    embedder = Embedder(settings)
    store = EdgeStore(settings)
    reranker = build_reranker(settings, store)
    sparse = SparseEncoder()
    options = RetrievalOptions.from_settings(settings)
    hybrid = options.mode == "hybrid"
    k = settings.default_top_k
    limit = max(settings.search_limit_per_query, 2 * k * options.per_document)
    try:
        catalog = CorpusCatalog(store, COLLECTIONS, settings.author_cache_ttl_s)
        collections = list(await catalog.collections())
        if not collections:
            raise SystemExit(f"no collections in {settings.qdrant_path}: ingest first")
        alternatives = settings.query_expansion_n - 1
        stage_cpu: dict[str, list[float]] = {"embed": [], "search": [], "rerank": []}
        wall_start = cpu_start = 0.0
        for i in range(warmup + requests):
            if i == warmup:
                wall_start, cpu_start = time.perf_counter(), time.process_time()
            question = questions[i % len(questions)]
            raw_author, queries = emulated_understanding(question, alternatives)
            author = await catalog.resolve_author(raw_author)
            t0 = time.process_time()
            vectors = embedder.embed(queries)
            t1 = time.process_time()
            searches: list[SearchVector] = list(vectors)
            if hybrid:
                searches += [sparse.query(text) for text in options.sparse_texts(queries)]
            found = await store.search_collections(collections, searches, author, limit)
            lists = [ranked for hits in found.values() for ranked in ranked_lists(hits, len(vectors))]
            candidates = deduplicate([ranked.hits for ranked in lists])
            t2 = time.process_time()
            scores = await reranker.score(question, vectors[0], candidates)
            if hybrid:
                ranked = rank_by_fusion(candidates, scores, lists, options.weights)
            else:
                ranked = rank_by_reranker(candidates, scores, lists)
            kept, _ = one_per_document(ranked, k, options.per_document)
            build_prompt(question, [candidate.hit for candidate in kept])
            t3 = time.process_time()
            if i >= warmup:
                stage_cpu["embed"].append(t1 - t0)
                stage_cpu["search"].append(t2 - t1)
                stage_cpu["rerank"].append(t3 - t2)
        cpu_total = time.process_time() - cpu_start
        wall_total = time.perf_counter() - wall_start
    finally:
        await store.close()
    return {
        "method": "in-process time.process_time() of embed+search+rerank (the gateway's local work)",
        "requests": requests,
        "retrieval_mode": settings.retrieval_mode,
        "cpu_s_per_request": cpu_total / requests,
        "wall_s_per_request": wall_total / requests,
        "stage_cpu_ms_median": {k: round(statistics.median(v) * 1000, 3) for k, v in stage_cpu.items()},
        "onnx_threads": settings.effective_onnx_threads,
        "embedding_model": embedder.model_id,
        "onnxruntime": onnxruntime.__version__,
        "providers": embedder.providers,
        "collections": collections,
        "cores": os.cpu_count(),
    }


def measure(settings: Settings, questions: Sequence[str], requests: int, warmup: int = 5) -> dict[str, Any]:
    return asyncio.run(measure_async(settings, questions, requests, warmup))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queries", type=Path, default=None, help="queries.json (default: built-in list)")
    parser.add_argument("-n", "--requests", type=int, default=100, help="measured questions")
    parser.add_argument("--seed", type=int, default=20240917)
    args = parser.parse_args(argv)
    settings = Settings()
    questions = load_questions(args.queries, seed=args.seed)
    print(json.dumps(measure(settings, questions, args.requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
