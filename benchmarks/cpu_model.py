"""CPU seconds of the gateway's local model work for one request, measured in isolation.

    python -m benchmarks.cpu_model [--queries ../shared/data/queries.json] [-n 100]

Settings (QDRANT_PATH, EMBEDDING_TOKENIZER_DIR, ONNX_THREADS...) come from the environment and `.env`, as
for the gateway. The Qdrant folder must not be open in another process (local mode locks it).

For each question this does, synchronously and in this process, exactly the local work of the gateway's
pipeline: embed the question and the expansions the OpenAI emulator would return in one batch, search every
collection with the gateway's own local-mode search (and the author filter self-query would give),
deduplicate, rerank, build the prompt. CPU time is ``time.process_time()`` (every thread of this process,
ONNX runtime's included), so the number is the model work alone: no HTTP, no SDKs, no event loop. Prints
one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime
from qdrant_client import QdrantClient

from benchmarks.loadgen import load_questions
from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.rag.prompt import build_prompt
from rag_gateway.rag.retrieval.catalog import normalise_name
from rag_gateway.rag.retrieval.embedding import Embedder
from rag_gateway.rag.retrieval.ranking import deduplicate
from rag_gateway.rag.retrieval.reranking import build_reranker, top_k
from rag_gateway.rag.retrieval.stores import AUTHOR_NAME_KEY
from rag_gateway.rag.retrieval.stores.local import search_local
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


def indexed_authors(client: QdrantClient, collections: Sequence[str]) -> dict[str, str]:
    """Every author name in ``collections``, keyed as the gateway matches names (``normalise_name``)."""
    names: dict[str, str] = {}
    for name in collections:
        result = client.facet(name, key=AUTHOR_NAME_KEY, limit=10_000, exact=True)
        names.update({normalise_name(str(hit.value)): str(hit.value) for hit in result.hits})
    return names


def measure(settings: Settings, questions: Sequence[str], requests: int, warmup: int = 5) -> dict[str, Any]:
    embedder = Embedder(settings)
    reranker = build_reranker(settings, embedder)
    client = QdrantClient(path=str(settings.qdrant_path))
    try:
        present = {c.name for c in client.get_collections().collections}
        collections = [c for c in COLLECTIONS if c in present]
        authors = indexed_authors(client, collections)
        alternatives = settings.query_expansion_n - 1
        stage_cpu: dict[str, list[float]] = {"embed": [], "search": [], "rerank": []}
        totals: list[float] = []
        wall_start = cpu_start = 0.0
        for i in range(warmup + requests):
            if i == warmup:
                wall_start, cpu_start = time.perf_counter(), time.process_time()
            question = questions[i % len(questions)]
            raw_author, queries = emulated_understanding(question, alternatives)
            author = authors.get(normalise_name(raw_author)) if raw_author else None
            t0 = time.process_time()
            vectors = embedder.embed(queries)
            t1 = time.process_time()
            found = search_local(client, collections, vectors, author, settings.search_limit_per_query)
            hits = [per_query for name in collections for per_query in found[name]]
            candidates = deduplicate(hits)
            t2 = time.process_time()
            scores = reranker.score(question, vectors[0], candidates)
            build_prompt(question, [hit for hit, _ in top_k(candidates, scores, settings.default_top_k)])
            t3 = time.process_time()
            if i >= warmup:
                stage_cpu["embed"].append(t1 - t0)
                stage_cpu["search"].append(t2 - t1)
                stage_cpu["rerank"].append(t3 - t2)
                totals.append(t3 - t0)
        cpu_total = time.process_time() - cpu_start
        wall_total = time.perf_counter() - wall_start
    finally:
        client.close()
    return {
        "method": "in-process time.process_time() of embed+search+rerank (the gateway's local work)",
        "requests": requests,
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
