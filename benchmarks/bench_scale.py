"""How the embedded vector store behaves as the corpus grows: 10k, 100k, 1M chunks on this machine.

    python -m benchmarks.bench_scale [--sizes 10000,100000,1000000] [--skip-rag] [--keep]   (make bench-scale)

The gateway's default store is Qdrant's engine in-process (`EdgeStore`); the real corpus is 516 chunks,
far too small to show what a production corpus costs. This builds synthetic corpora that look like the real
one to the engine and measures what an operator has to plan for, per size N:

* import rate (`rag-gateway ingest FILE.jsonl`'s `import_jsonl`), HNSW build time (`build_index`, which the
  import runs last), disk size, the importing process's RSS after the import and its peak (VmHWM; the RSS
  just before the index build is recorded too, since building the index is what peaks);
* start-up: `EdgeStore` open + the author catalogue (`authors()`) in a fresh process, and, with the /rag
  load, `rag-gateway serve` start until /readyz answers 200 (this one includes loading the models);
* the search stage as the pipeline issues it (`search_collections` over the collections that hold points,
  as the catalogue hands them over: here the one the corpus fills; 3 dense vectors, plus 3 BM25 queries of
  real questions in hybrid mode, the default; as many hits as the pipeline asks at the default k), plain and with an author filter, p50/p99, dense-only and BM25-only too, and the
  RSS of a process that serves it;
* HNSW recall@10 of the dense search against exact search (numpy brute force over the generated vectors),
  plain and filtered;
* `/rag` p50/p99 at C=1 and C=64 through the existing load generator, with the OpenAI (150 ms) and
  SageMaker (600 ms) emulators standing in for the upstreams;
* the same (minus /rag) for qdrant-client's local mode, the store of earlier versions, up to --local-max;
* int8 quantization (the default: int8 copies in RAM, originals on disk, rescored) against full float32
  vectors in RAM at one size (--quantization-ab).

How the corpus is made: the real articles (../shared/data/articles.json; the sample corpus when absent) are
chunked with the project's own ingest chunking and embedded once with the project's embedder. 80% of those
chunk vectors seed the corpus, 20% are held out to seed the queries (dense: a held-out chunk vector plus
noise; BM25: the real questions of ../shared/data/queries.json). Noise is a gaussian vector of expected norm
--noise (per-dimension sigma = noise / sqrt(384)), added and then re-normalised; at the default 0.3 a vector
keeps a cosine of ~0.96 to what it was.

--corpus mixtures (the default): a synthetic chunk mixes 2 or 3 distinct seed chunks, the first drawn at
random and the others among its --mix-neighbours most similar seeds (a chunk on a neighbouring subject, as
a new article's chunk is); random convex weights (flat Dirichlet). Its vector is the re-normalised weighted
sum of theirs plus noise; its text is consecutive sentences (long ones cut into word spans) of each seed's
text from a random place, in proportion to the weights, ~1,000 characters in all; title and link are those
of the seed with the largest weight. Why: with --corpus noisy-copies (each chunk one seed vector plus noise,
with that seed's text: the corpus of earlier runs) each of the ~410 corpus seeds repeats N/410 times (~2,400
times at 1M), text and all, and the near-copies of the query's nearest seed make its exact top 10 a set of
near-ties that HNSW cannot order (recall@10 0.77 at 1M): a corpus no user has. With mixtures the
neighbourhoods are a continuum. At 100k, copies against mixtures: 92% of a query's exact top 10 are copies
of the same seed as its 1st (64% have the same main seed), the gap between a query's 1st and 10th neighbour
is 0.010 (0.020), a point's nearest other point sits at a cosine of 0.932 (0.913), 411 distinct texts in
10,000 chunks (all distinct), and recall@10 at the default hnsw_ef is 0.92-0.96 depending on the build
(0.995 in each). Partners among a seed's 32
most similar keep a chunk on one subject; --mix-neighbours 0 (any seed) is harder for HNSW (0.968 at 100k).
What stays synthetic: the vocabulary is that of the 516 real chunks, so a question's terms still hold about
the same share of the corpus at any N (their posting lists sum to ~0.6 N either way, recorded as
bm25_query_postings_share), and the BM25 half of a hybrid search costs the same on both corpora, linear in
N. Each size records these statistics of its corpus (`neighbourhood`, `bm25_term_shares`).
Authors (~1,000) follow a zipf law, the two real authors first. Generation is seeded (--seed) and streamed
to JSONL a batch at a time (memory flat in N), then imported into a fresh store folder.

What the store is built and searched with can be varied without editing the gateway: --hnsw-m,
--hnsw-ef-construct and --payload-memory create the shards with those settings instead of `shard_config`'s;
--ef-sweep searches the same store again at other hnsw_ef values (VECTOR_SEARCH_EF is the default pass).
Serving RSS is recorded whole, anonymous (RssAnon) and file-backed (RssFile: mapped segment files, by kind
of file in serving_rss_by_file).

Every build and every measurement of a size runs in its own spawned child process, so RSS and VmHWM belong
to that size alone; a build that exceeds --max-build-minutes is stopped, its time so far reported, and the
rest of that size skipped. Results go to bench-scale-results.json (with the machine) and a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import itertools
import json
import math
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from benchmarks.loadgen import (
    FALLBACK_QUESTIONS,
    load_questions,
    median_stages,
    parse_proc_status_kb,
    percentile,
    process_memory_mb,
)
from benchmarks.local_stack import (
    RAG_GATEWAY,
    SAMPLE_CORPUS,
    TOKENIZER_DIR,
    Processes,
    free_port,
    loopback,
    start_emulators,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SHARED_ARTICLES = SHARED / "articles.json"
SHARED_QUERIES = SHARED / "queries.json"

#: Where every synthetic chunk goes (the real corpus has articles only).
COLLECTION = "embedded_articles"
DIM = 384
#: Queries per request, as the pipeline sends them (the question + 2 expansions).
VECTORS_PER_REQUEST = 3
RECALL_K = 10
CONTENT_CHARS = 1000
CHUNKS_PER_DOCUMENT = 8
#: Point ids are this prefix + 8 hex digits of the point's index, so a hit maps back to its row.
POINT_ID_PREFIX = "5c4e2f10-7b3a-4d6e-9f21-8a3b"
DOCUMENT_ID_PREFIX = "d0c5e2a1-4b6f-4c3d-a7e8-1f2e"
AUTHOR_NAMESPACE = uuid.UUID("0b9d3c8e-2f41-5a6b-8c7d-9e0f1a2b3c4d")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Synthetic author names are first-last combinations (a number is added past 1,200 of them).
FIRST_NAMES = _words(
    "Ada Alan Ana Ben Carla Chen Dara Eli Emma Farah Gita Hugo Ines Ivan Jae Kofi Lena Luca Maya Nia "
    "Omar Priya Quinn Rosa Sami Tara Uma Vik Wen Yara"
)
LAST_NAMES = _words(
    "Abe Bauer Costa Diaz Eze Fischer Garcia Hansen Ito Jensen Kaur Lopez Moreau Novak Okafor Patel "
    "Quist Rossi Sato Tanaka Ueda Vargas Weber Xu Yilmaz Zhou Berg Rivera Kowalski Nakamura Silva "
    "Haddad Murphy Singh Larsen Petrov Mendes Osei Park Dubois"
)

Matrix = npt.NDArray[np.float32]


# --- the machine --------------------------------------------------------------------------------------------
def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _proc_field(path: str, key: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, the instruction sets that matter to int8 search, cores, RAM, date, versions."""
    flags = set((_proc_field("/proc/cpuinfo", "flags") or "").split())
    mem_kb = (_proc_field("/proc/meminfo", "MemTotal") or "0 kB").split()[0]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": cores(),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "amx": any(flag.startswith("amx") for flag in flags),
        "ram_gib": round(int(mem_kb) / 1024**2, 1),
        "python": platform.python_version(),
        "qdrant_edge_py": _version("qdrant-edge-py"),
        "qdrant_client": _version("qdrant-client"),
        **source_state(),
    }


def source_state() -> dict[str, Any]:
    """The project's commit and whether tracked files differ from it (results of a modified tree are not
    those of the commit)."""
    state: dict[str, Any] = {"commit": None, "uncommitted_changes": None}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
        state["commit"] = head.stdout.strip()
        changed = subprocess.run(  # plumbing: reads the index, never writes it
            ["git", "diff-index", "--quiet", "HEAD", "--"], cwd=ROOT, capture_output=True, timeout=10
        )
        state["uncommitted_changes"] = changed.returncode != 0
    return state


def describe_machine(machine: dict[str, Any]) -> str:
    def yes(key: str) -> str:
        return "yes" if machine[key] else "no"

    return (
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM; "
        f"avx2 {yes('avx2')}, avx512f {yes('avx512f')}, avx512_vnni {yes('avx512_vnni')}, amx {yes('amx')}; "
        f"{machine['date']}; qdrant-edge-py {machine['qdrant_edge_py']}, qdrant-client {machine['qdrant_client']}; "
        f"commit {str(machine.get('commit'))[:10]}"
        + (" with uncommitted changes" if machine.get("uncommitted_changes") else "")
    )


# --- the seed: real chunks, embedded once -------------------------------------------------------------------
@dataclass
class Seed:
    """Real chunk vectors (unit length) and their payloads; the synthetic corpus is built around them."""

    vectors: Matrix
    payloads: list[dict[str, Any]]
    source: str


def default_seed_paths() -> list[Path]:
    if SHARED_ARTICLES.is_file():
        return [SHARED_ARTICLES]
    print(
        f"NOTE: {SHARED_ARTICLES} is absent, so the corpus is NOT seeded from the 76 real articles: "
        f"falling back to the project's small sample corpus ({SAMPLE_CORPUS}). Vectors are then less "
        "varied than real ones; treat recall numbers with care.",
        flush=True,
    )
    return sorted(SAMPLE_CORPUS.glob("*.json"))


def embedder_settings(qdrant_path: Path) -> Any:
    from rag_gateway.config import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        embedding_tokenizer_dir=Path(os.environ.get("EMBEDDING_TOKENIZER_DIR", str(TOKENIZER_DIR))),
        qdrant_path=qdrant_path,
        qdrant_url=None,
    )


def _shown(path: Path) -> str:
    """A path as results record it: relative to the project when it can be, so no machine's layout leaks."""
    return os.path.relpath(path.resolve(), ROOT)


def _store_label(store: Path) -> str:
    """A store folder named by size and backend (``n10000/store-edge``), not by its temporary location."""
    return f"{store.parent.name}/{store.name}"


def embed_seed(paths: Sequence[Path], settings: Any, limit: int | None = None) -> Seed:
    """Chunk the documents as `rag-gateway ingest` does and embed the chunks with the gateway's embedder."""
    from rag_gateway.ingest import load_documents
    from rag_gateway.ingest.records import chunk_documents
    from rag_gateway.rag.retrieval.embedding import Embedder

    records = chunk_documents(load_documents(list(paths)))[:limit]
    if len(records) < 2:
        raise SystemExit(
            f"bench-scale: {len(records)} chunks in {', '.join(map(str, paths))}; need at least 2"
        )
    embedder = Embedder(settings)
    vectors = np.asarray(embedder.embed([r.content for r in records]), dtype=np.float32)
    source = ", ".join(_shown(p) for p in paths)
    return Seed(vectors=vectors, payloads=[dict(r.payload) for r in records], source=source)


def split_seed(count: int, rng: np.random.Generator, held_out: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(corpus seeds, query seeds): the queries come from chunks the corpus was not built from."""
    order = rng.permutation(count)
    n_queries = min(count - 1, max(1, round(count * held_out)))
    return order[n_queries:], order[:n_queries]


# --- the synthetic corpus -----------------------------------------------------------------------------------
@dataclass
class Authors:
    names: list[str]
    ids: list[str]
    weights: npt.NDArray[np.float64]  # zipf: the probability that a chunk is by each author


def make_authors(count: int, real: dict[str, str], zipf_s: float = 1.0) -> Authors:
    """``count`` authors, the real ones (name -> id) first, chunk shares falling as 1/rank^s."""
    names = list(real)[:count]
    k = 0
    while len(names) < count:
        name = f"{FIRST_NAMES[k % len(FIRST_NAMES)]} {LAST_NAMES[(k // len(FIRST_NAMES)) % len(LAST_NAMES)]}"
        if k >= len(FIRST_NAMES) * len(LAST_NAMES):
            name += f" {k // (len(FIRST_NAMES) * len(LAST_NAMES)) + 1}"
        if name not in real:
            names.append(name)
        k += 1
    ids = [real.get(name) or str(uuid.uuid5(AUTHOR_NAMESPACE, name)) for name in names]
    ranks = np.arange(1, count + 1, dtype=np.float64)
    weights = ranks**-zipf_s
    return Authors(names=names, ids=ids, weights=weights / weights.sum())


def perturb(vectors: Matrix, noise: float, rng: np.random.Generator) -> Matrix:
    """Each row plus gaussian noise of expected norm ``noise``, back to unit length."""
    sigma = noise / math.sqrt(vectors.shape[1])
    out = vectors + rng.normal(0.0, sigma, vectors.shape).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def point_id(index: int) -> str:
    return f"{POINT_ID_PREFIX}{index:08x}"


def point_index(pid: str) -> int:
    """The row of a point id written by `point_id` (-1 for any other id)."""
    return int(pid[-8:], 16) if pid.startswith(POINT_ID_PREFIX) else -1


def trim(text: str, limit: int = CONTENT_CHARS) -> str:
    """The first ~``limit`` characters, cut at whitespace."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit]


#: The corpus kinds: `mixtures` (the default) and `noisy-copies` (the corpus of earlier runs); see the module doc.
CORPORA = ("mixtures", "noisy-copies")
#: A text unit is a sentence; a longer one (code, a list) is cut into word spans of about this many characters.
UNIT_CHARS = 240
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: How many chunks' texts `write_corpus` checks for duplicates (a set of hashes; bounded so memory stays flat).
DISTINCT_SAMPLE = 10_000
#: Mixtures: partners are drawn among a seed's this many most similar seeds (--mix-neighbours).
MIX_NEIGHBOURS = 32


def text_units(text: str, span: int = UNIT_CHARS) -> list[str]:
    """A chunk's text as sentences, long ones cut into word spans of ~``span`` characters (never empty)."""
    units: list[str] = []
    for sentence in SENTENCE_END.split(text.strip()):
        piece: list[str] = []
        size = 0
        for word in sentence.split():
            piece.append(word)
            size += len(word) + 1
            if size >= span:
                units.append(" ".join(piece))
                piece, size = [], 0
        if piece:
            units.append(" ".join(piece))
    return units or [""]


def partner_table(vectors: Matrix, sources: np.ndarray, neighbours: int | None) -> npt.NDArray[np.int64]:
    """For each corpus seed (a position in ``sources``), the positions of the seeds it may be mixed with:
    its ``neighbours`` most similar other seeds, most similar first (all others when None or too many)."""
    count = len(sources)
    if count < 2:
        return np.zeros((count, 0), dtype=np.int64)
    seeds = vectors[sources]
    sims = seeds @ seeds.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, : count - 1]
    return order[:, : min(neighbours or count - 1, count - 1)].astype(np.int64)


def mixture_batch(
    count: int, partners: npt.NDArray[np.int64], rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """``count`` mixtures: (members, weights), each (count, 3). Members are positions in the corpus seeds:
    a uniformly drawn first seed and 1 or 2 distinct partners from its row of ``partners``; weights are a
    flat Dirichlet draw over the 2 or 3 members (a third weight of 0 for a pair), largest first, so column
    0 is the chunk's primary seed."""
    n_seeds, n_partners = partners.shape
    first = rng.integers(0, n_seeds, count)
    members = np.stack([first, first, first], axis=1)
    gamma = rng.exponential(1.0, (count, 3))
    if n_partners == 0:  # a single seed: nothing to mix with
        gamma[:, 1:] = 0.0
    else:
        a = rng.integers(0, n_partners, count)
        members[:, 1] = partners[first, a]
        if n_partners >= 2:
            b = rng.integers(0, n_partners - 1, count)
            b += b >= a  # distinct from a
            members[:, 2] = partners[first, b]
            pairs = rng.random(count) < 0.5  # half the chunks mix 2 seeds, half 3
        else:
            pairs = np.ones(count, dtype=bool)
        gamma[pairs, 2] = 0.0
    weights = gamma / gamma.sum(axis=1, keepdims=True)
    order = np.argsort(-weights, axis=1, kind="stable")
    return np.take_along_axis(members, order, axis=1), np.take_along_axis(weights, order, axis=1)


def mixed_text(
    units: Sequence[Sequence[str]], weights: Sequence[float], starts: Sequence[float], limit: int
) -> str:
    """A chunk's text from its seeds' texts: for each seed (``units``, its text units), consecutive units
    from a random place (``starts``, fractions in [0, 1)), wrapping around, at most ``weight * limit``
    characters of them, cut after a whole word; the parts in the order given (the primary seed first)."""
    parts = []
    for seed_units, weight, start in zip(units, weights, starts, strict=True):
        budget = int(weight * limit)
        if budget <= 0:
            continue
        first = int(start * len(seed_units))
        taken: list[str] = []
        size = 0
        for step in range(len(seed_units)):
            if size >= budget:
                break
            unit = seed_units[(first + step) % len(seed_units)]
            taken.append(unit)
            size += len(unit) + 1
        text = " ".join(taken)
        if len(text) > budget:  # cut after the last whole word that fits (none: the seed gives no text)
            cut = text.rfind(" ", 0, budget + 1)
            text = text[:cut] if cut > 0 else ""
        parts.append(text)
    return " ".join(p for p in parts if p)


@dataclass
class CorpusFiles:
    """A generated corpus: the JSONL to import, and the exact vectors and authors for ground truth."""

    n: int
    jsonl: Path
    vectors: Path  # .npy, (n, dim) float32: exactly what the JSONL holds
    authors: Path  # .npy, (n,) int32: author index of each point
    seconds: float
    primary: Path | None = None  # .npy, (n,) int32: the seed chunk (a row of Seed) each point mostly is
    kind: str = "mixtures"
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def jsonl_bytes(self) -> int:
        return self.jsonl.stat().st_size


def chunk_line(
    index: int,
    vector: npt.NDArray[np.float64],
    seed: dict[str, Any],
    author: str,
    author_id: str,
    content: str | None = None,
) -> bytes:
    """One JSONL line in the shape `rag-gateway ingest FILE.jsonl` reads; ``content`` replaces the seed
    chunk's text (whose first ~1,000 characters are the default)."""
    document = index // CHUNKS_PER_DOCUMENT
    payload = {
        "content": trim(str(seed.get("content", ""))) if content is None else content,
        "title": seed.get("title", ""),
        "link": f"{seed.get('link', 'https://example.invalid/')}#synthetic-{document}",
        "platform": seed.get("platform", "synthetic"),
        "author_id": author_id,
        "author_full_name": author,
        "document_id": f"{DOCUMENT_ID_PREFIX}{document:08x}",
        "chunk_index": index % CHUNKS_PER_DOCUMENT,
        "type": "article",
    }
    line = {"id": point_id(index), "collection": COLLECTION, "vector": vector, "payload": payload}
    return orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


def write_corpus(
    folder: Path,
    n: int,
    seed: Seed,
    sources: np.ndarray,
    authors: Authors,
    noise: float,
    rng: np.random.Generator,
    batch: int = 10_000,
    kind: str = "mixtures",
    mix_neighbours: int | None = None,
) -> CorpusFiles:
    """Stream ``n`` synthetic chunks to ``folder/corpus.jsonl``, a batch at a time (memory flat in ``n``).

    ``kind`` "mixtures": each chunk mixes 2 or 3 distinct seeds (the first drawn uniformly, its partners
    among its ``mix_neighbours`` most similar seeds, or among all when None): its vector is the
    re-normalised convex combination of theirs plus noise, its text is sentences of those seeds' texts in
    proportion to the weights, about as long as theirs (at most ~1,000 characters). "noisy-copies": each
    chunk is one seed vector plus noise, with that seed's text (the corpus of earlier runs)."""
    if kind not in CORPORA:
        raise ValueError(f"unknown corpus kind {kind!r}; one of {', '.join(CORPORA)}")
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    files = CorpusFiles(
        n,
        folder / "corpus.jsonl",
        folder / "vectors.npy",
        folder / "authors.npy",
        0.0,
        primary=folder / "primary.npy",
        kind=kind,
    )
    exact = np.lib.format.open_memmap(
        files.vectors, mode="w+", dtype=np.float32, shape=(n, seed.vectors.shape[1])
    )
    who = np.empty(n, dtype=np.int32)
    primary = np.empty(n, dtype=np.int32)
    mixing = kind == "mixtures"
    partners = partner_table(seed.vectors, sources, mix_neighbours) if mixing else None
    texts = [str(p.get("content", "")) for p in seed.payloads]
    units = [text_units(t) for t in texts] if mixing else []
    lengths = np.array([len(t) for t in texts], dtype=np.float64)
    distinct: set[int] = set()
    content_chars = 0
    with files.jsonl.open("wb") as out:
        for start in range(0, n, batch):
            count = min(batch, n - start)
            contents: list[str | None]
            if partners is not None:
                members, weights = mixture_batch(count, partners, rng)
                rows = sources[members]  # (count, 3) rows of the seed
                mixed = sum(weights[:, [m]] * seed.vectors[rows[:, m]] for m in range(rows.shape[1]))
                mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
                base = mixed.astype(np.float32)
                starts = rng.random((count, 3))
                limits = np.minimum(CONTENT_CHARS, (weights * lengths[rows]).sum(axis=1)).astype(int)
                picked = rows[:, 0]
                contents = [
                    mixed_text([units[r] for r in rows[j]], weights[j], starts[j], int(limits[j]))
                    for j in range(count)
                ]
            else:
                picked = rng.choice(sources, count)
                base = seed.vectors[picked]
                contents = [None] * count
            # 5 decimals keep the file ~40% smaller; the rounded values are the exact ground truth
            vectors = np.round(perturb(base, noise, rng).astype(np.float64), 5)
            by = rng.choice(len(authors.names), count, p=authors.weights)
            exact[start : start + count] = vectors
            who[start : start + count] = by
            primary[start : start + count] = picked
            lines = []
            for j in range(count):
                text = contents[j]
                if text is None:
                    text = trim(texts[picked[j]])
                content_chars += len(text)
                if start + j < DISTINCT_SAMPLE:
                    distinct.add(hash(text))
                lines.append(
                    chunk_line(
                        start + j,
                        vectors[j],
                        seed.payloads[picked[j]],
                        authors.names[by[j]],
                        authors.ids[by[j]],
                        text,
                    )
                )
            out.write(b"".join(lines))
    exact.flush()
    del exact
    np.save(files.authors, who)
    np.save(files.primary, primary)
    files.seconds = time.perf_counter() - started
    files.stats = {
        "kind": kind,
        "mix_neighbours": mix_neighbours if mixing else None,
        "mean_content_chars": round(content_chars / max(1, n), 1),
        "distinct_texts": len(distinct),
        "distinct_texts_of": min(n, DISTINCT_SAMPLE),
    }
    return files


# --- queries and the exact answers --------------------------------------------------------------------------
@dataclass
class Workload:
    """What the measuring children send: requests (3 vectors each) and recall queries, with their truth."""

    requests: Matrix  # (R, 3, dim)
    request_texts: list[list[str]]  # (R, 3) the questions behind each request's BM25 queries (hybrid mode)
    request_authors: list[str]  # the filter of the filtered pass, one per request
    recall: Matrix  # (Q, dim)
    recall_authors: list[str]
    truth: npt.NDArray[np.int64]  # (Q, k) exact top-k rows, plain
    truth_filtered: npt.NDArray[np.int64]  # (Q, k) exact top-k rows among the query author's points; -1 pads

    def save(self, path: Path) -> None:
        np.savez(
            path,
            requests=self.requests,
            recall=self.recall,
            truth=self.truth,
            truth_filtered=self.truth_filtered,
            request_texts=np.asarray(self.request_texts, dtype=object),
            request_authors=np.asarray(self.request_authors, dtype=object),
            recall_authors=np.asarray(self.recall_authors, dtype=object),
        )

    @classmethod
    def load(cls, path: Path) -> Workload:
        data = np.load(path, allow_pickle=True)
        return cls(
            requests=data["requests"],
            request_texts=[[str(t) for t in texts] for texts in data["request_texts"]],
            request_authors=[str(a) for a in data["request_authors"]],
            recall=data["recall"],
            recall_authors=[str(a) for a in data["recall_authors"]],
            truth=data["truth"],
            truth_filtered=data["truth_filtered"],
        )


def exact_top_k(
    vectors: np.ndarray,
    queries: Matrix,
    k: int,
    point_authors: np.ndarray | None = None,
    query_authors: np.ndarray | None = None,
    block: int = 65_536,
) -> npt.NDArray[np.int64]:
    """Rows of the ``k`` best dot products per query by brute force (a memmap is read a block at a time);
    with authors, only points by the query's author count. Rows are -1 where fewer than ``k`` match."""
    n_q = len(queries)
    best_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    best_rows = np.full((n_q, k), -1, dtype=np.int64)
    for start in range(0, len(vectors), block):
        scores = np.asarray(vectors[start : start + block], dtype=np.float32) @ queries.T  # (b, Q)
        if point_authors is not None and query_authors is not None:
            same = point_authors[start : start + block, None] == query_authors[None, :]
            scores[~same] = -np.inf
        rows = np.arange(start, start + len(scores), dtype=np.int64)
        all_scores = np.concatenate([best_scores, scores.T], axis=1)
        all_rows = np.concatenate([best_rows, np.broadcast_to(rows, (n_q, len(rows)))], axis=1)
        top = np.argpartition(-all_scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(all_scores, top, axis=1)
        best_rows = np.take_along_axis(all_rows, top, axis=1)
    best_rows[~np.isfinite(best_scores)] = -1
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, axis=1)


def make_workload(
    corpus: CorpusFiles,
    seed: Seed,
    query_sources: np.ndarray,
    authors: Authors,
    noise: float,
    rng: np.random.Generator,
    n_requests: int,
    n_recall: int,
    questions: Sequence[str] = FALLBACK_QUESTIONS,
) -> Workload:
    """Dense queries from held-out real chunks + noise, BM25 queries from real questions; each filter
    names the author of a random corpus point, so filters are as popular as the authors are and never name
    an author the corpus lacks."""
    point_authors = np.load(corpus.authors)

    def queries(count: int) -> Matrix:
        return perturb(seed.vectors[rng.choice(query_sources, count)], noise, rng)

    requests = np.stack([queries(VECTORS_PER_REQUEST) for _ in range(n_requests)])
    texts = [
        [questions[i] for i in rng.integers(0, len(questions), VECTORS_PER_REQUEST)]
        for _ in range(n_requests)
    ]
    request_authors = [authors.names[i] for i in point_authors[rng.integers(0, corpus.n, n_requests)]]
    recall = queries(n_recall)
    recall_author_rows = point_authors[rng.integers(0, corpus.n, n_recall)]
    vectors = np.load(corpus.vectors, mmap_mode="r")
    k = min(RECALL_K, corpus.n)
    return Workload(
        requests=requests,
        request_texts=texts,
        request_authors=request_authors,
        recall=recall,
        recall_authors=[authors.names[i] for i in recall_author_rows],
        truth=exact_top_k(vectors, recall, k),
        truth_filtered=exact_top_k(vectors, recall, k, point_authors, recall_author_rows),
    )


def neighbourhood(corpus: CorpusFiles, workload: Workload, sample: int = 200) -> dict[str, float]:
    """How tight the corpus is, around the queries and around its own points (means, cosines):

    * ``mean_cos_top1`` / ``mean_cos_top10``: a query to its exact 1st / 10th neighbour, and their gap
      ``mean_gap_top1_top10`` (near 0: the top 10 are near-ties, which HNSW cannot order);
    * ``top10_same_primary``: the share of a query's exact top 10 that are (mostly) the same seed chunk as
      its 1st (1.0: the top 10 are copies of one chunk);
    * ``point_cos_nn`` / ``point_cos_10th``: ``sample`` corpus points to their nearest / 10th nearest other
      point (near-copies sit as close as the noise allows)."""
    vectors = np.load(corpus.vectors, mmap_mode="r")
    first = [float(vectors[row[0]] @ q) for row, q in zip(workload.truth, workload.recall, strict=True)]
    last = [float(vectors[row[-1]] @ q) for row, q in zip(workload.truth, workload.recall, strict=True)]
    stats = {
        "mean_cos_top1": round(statistics.fmean(first), 4),
        "mean_cos_top10": round(statistics.fmean(last), 4),
        "mean_gap_top1_top10": round(statistics.fmean(a - b for a, b in zip(first, last, strict=True)), 4),
    }
    if corpus.primary is not None and corpus.primary.exists():
        primary = np.load(corpus.primary)
        shares = [float((primary[row] == primary[row[0]]).mean()) for row in workload.truth]
        stats["top10_same_primary"] = round(statistics.fmean(shares), 3)
    k = min(RECALL_K, corpus.n - 1)
    if k >= 1:
        rows = np.sort(np.random.default_rng(corpus.n).choice(corpus.n, min(sample, corpus.n), replace=False))
        points = np.asarray(vectors[rows], dtype=np.float32)
        found = exact_top_k(vectors, points, k + 1)
        cos: list[list[float]] = []
        for row, own, point in zip(found, rows, points, strict=True):
            others = [int(r) for r in row if r != own][:k]
            cos.append([float(vectors[r] @ point) for r in others])
        stats["point_cos_nn"] = round(statistics.fmean(c[0] for c in cos), 4)
        stats["point_cos_10th"] = round(statistics.fmean(c[-1] for c in cos), 4)
    return stats


def bm25_term_shares(
    jsonl: Path, questions: Sequence[str], sample: int = DISTINCT_SAMPLE
) -> dict[str, float]:
    """How long the BM25 posting lists of the questions' terms are, as a share of the corpus (over its first
    ``sample`` chunks, indexed as the importer indexes them): ``bm25_term_share``, the mean over distinct
    question terms of the share of chunks holding the term; ``bm25_query_postings_share``, the mean over
    questions of the sum over their terms (a BM25 query walks about this times N postings)."""
    from rag_gateway.rag.retrieval.schema import chunk_texts, index_schema
    from rag_gateway.rag.retrieval.sparse import SparseEncoder

    schema = index_schema(store_settings(Path()), DIM)
    encoder = SparseEncoder(schema.bm25)
    holding: dict[int, int] = {}
    count = 0
    with jsonl.open("rb") as lines:
        for line in itertools.islice(lines, sample):
            payload = orjson.loads(line)["payload"]
            text = chunk_texts(schema, payload.get("title"), payload["content"])[1]
            for term in set(encoder.document(text).indices):
                holding[term] = holding.get(term, 0) + 1
            count += 1
    queries = [set(encoder.query(q).indices) for q in questions]
    terms = set().union(*queries)
    if not count or not terms:
        return {}
    return {
        "bm25_term_share": round(statistics.fmean(holding.get(t, 0) / count for t in terms), 4),
        "bm25_query_postings_share": round(
            statistics.fmean(sum(holding.get(t, 0) for t in q) / count for q in queries), 4
        ),
    }


def recall_at_k(found: Sequence[Sequence[int]], truth: npt.NDArray[np.int64]) -> float | None:
    """Mean over queries of |found ∩ exact| / |exact| (queries with no exact answer are left out)."""
    values = []
    for got, row in zip(found, truth, strict=True):
        want = {int(r) for r in row if r >= 0}
        if want:
            values.append(len(want & set(got)) / len(want))
    return statistics.fmean(values) if values else None


def latency_summary(ms: Sequence[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "mean_ms": None}
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


# --- child processes ----------------------------------------------------------------------------------------
class ChildReport:
    """A child's results, rewritten to a JSON file at each update, so a stopped child still leaves its
    numbers so far (which phase it was in, how far the import had read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = {"started": time.time()}
        self._lock = threading.Lock()

    def update(self, **values: Any) -> None:
        with self._lock:
            self.values.update(values)
            self.values["elapsed_s"] = round(time.time() - self.values["started"], 3)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(self.values, option=orjson.OPT_SERIALIZE_NUMPY))
            tmp.replace(self.path)

    def memory(self, prefix: str) -> None:
        """VmRSS now (and its anonymous and file-backed parts: the engine maps its files, e.g. a WAL per
        shard) and VmHWM so far."""
        values = memory_now(prefix)
        self.update(**values, peak_rss_mb=values[f"{prefix}_peak_rss_mb"])


def memory_now(prefix: str) -> dict[str, float]:
    """This process's VmRSS, its anonymous (RssAnon) and file-backed (RssFile: mapped files such as the
    engine's segments, which the kernel may drop and read again) parts, and VmHWM, in MiB."""
    status = Path("/proc/self/status").read_text()
    rss, hwm = process_memory_mb(os.getpid())
    anon = (parse_proc_status_kb(status, "RssAnon") or 0) / 1024
    mapped = (parse_proc_status_kb(status, "RssFile") or 0) / 1024
    return {
        f"{prefix}_rss_mb": round(rss, 1),
        f"{prefix}_rss_anon_mb": round(anon, 1),
        f"{prefix}_rss_file_mb": round(mapped, 1),
        f"{prefix}_peak_rss_mb": round(hwm, 1),
    }


def _child_entry(
    target: Callable[[dict[str, Any], ChildReport], None], spec: dict[str, Any], out: str
) -> None:
    report = ChildReport(Path(out))
    report.memory("baseline")  # the interpreter and imports, before any store is touched
    target(spec, report)
    report.update(done=True)


def run_child(
    target: Callable[[dict[str, Any], ChildReport], None],
    spec: dict[str, Any],
    out: Path,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """``target(spec, report)`` in a fresh spawned interpreter; its report, with ``timed_out`` when it had
    to be stopped after ``timeout_s`` and ``error`` when it failed."""
    process = multiprocessing.get_context("spawn").Process(target=_child_entry, args=(target, spec, str(out)))
    process.start()
    try:
        process.join(timeout_s)
        timed_out = process.is_alive()
        if timed_out:
            process.kill()
            process.join()
    except BaseException:
        if process.is_alive():
            process.kill()
            process.join()
        raise
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if timed_out:
        result["timed_out"] = True
    elif process.exitcode != 0 or not result.get("done"):
        result["error"] = f"child exited with status {process.exitcode} (see its traceback above)"
    return result


def store_settings(path: Path, quantization: bool = True, search_ef: int | None = None) -> Any:
    """The gateway's settings for a store folder (VECTOR_SEARCH_EF and the rest from the environment);
    ``search_ef`` replaces the HNSW search breadth."""
    from rag_gateway.config import Settings

    extra = {} if search_ef is None else {"vector_search_ef": search_ef}
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        qdrant_path=path,
        qdrant_url=None,
        edge_quantization=quantization,
        embedding_tokenizer_dir=TOKENIZER_DIR,
        **extra,
    )


def rss_by_file(root: Path, status: str = "/proc/self/smaps") -> dict[str, float]:
    """MiB resident of the files under ``root`` this process maps, by kind of file (the path inside a
    segment, e.g. ``payload_storage/page_0.dat``, digits dropped; the WAL): what the file-backed RSS is."""
    kinds: dict[str, float] = {}
    prefix = str(root.resolve())
    current: str | None = None
    with contextlib.suppress(OSError):
        for line in Path(status).read_text().splitlines():
            head = line.split(maxsplit=5)
            if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):  # a mapping's header
                path = head[5] if len(head) == 6 else ""
                current = _file_kind(path[len(prefix) :]) if path.startswith(prefix) else None
            elif current is not None and line.startswith("Rss:"):
                kinds[current] = kinds.get(current, 0.0) + int(line.split()[1]) / 1024
    return {kind: round(mb, 1) for kind, mb in sorted(kinds.items(), key=lambda item: -item[1]) if mb >= 0.1}


def _file_kind(relative: str) -> str:
    """``/embedded_articles/segments/<uuid>/payload_storage/page_0.dat`` -> ``payload_storage/page_N.dat``."""
    parts = relative.strip("/").split("/")
    if "segments" in parts:
        parts = parts[parts.index("segments") + 2 :]
    elif "wal" in parts:
        parts = ["wal"]
    kind = re.sub(r"[a-z0-9]{16,}-", "", "/".join(parts))  # a payload index folder's random prefix
    return re.sub(r"\d+", "N", kind) or "other"


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (sparse files count what they really use)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


class ReadProgress:
    """Reports how far a reader has got in a file, from /proc/self/fdinfo, while the reader runs."""

    def __init__(self, path: Path, report: ChildReport, interval_s: float = 1.0) -> None:
        self.path = str(path.resolve())
        self.size = path.stat().st_size
        self.report = report
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-progress", daemon=True)

    def position(self) -> int | None:
        with contextlib.suppress(OSError):
            for fd in Path("/proc/self/fd").iterdir():
                with contextlib.suppress(OSError):
                    if str(fd.readlink()) == self.path:
                        fdinfo = _proc_field(f"/proc/self/fdinfo/{fd.name}", "pos")
                        return int(fdinfo) if fdinfo else None
        return None

    def _run(self) -> None:
        last, passes = -1, 0
        while not self._stop.wait(self.interval_s):
            pos = self.position()
            if pos is None:
                continue
            if pos < last or passes == 0:  # the file was opened again: the next pass
                passes += 1
            last = pos
            self.report.update(jsonl_pass=passes, jsonl_fraction_read=round(pos / max(1, self.size), 4))

    def __enter__(self) -> ReadProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class IndexTimer:
    """Times `EdgeStore.build_index` while `import_jsonl` runs (it builds the index after its last batch),
    so the import and the HNSW build are reported apart; marks the child's phase for a stopped run."""

    def __init__(self, report: ChildReport) -> None:
        self.report = report
        self.seconds = 0.0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from rag_gateway.rag.retrieval.stores.edge import EdgeStore

        original = EdgeStore.build_index
        timer = self

        async def build_index(store: EdgeStore, collection: str) -> None:
            if timer.seconds == 0.0:  # the first collection: what the import alone held and peaked at
                timer.report.memory("before_index")
            timer.report.update(phase="index")
            started = time.perf_counter()
            try:
                await original(store, collection)
            finally:
                timer.seconds += time.perf_counter() - started

        EdgeStore.build_index = build_index  # type: ignore[method-assign]
        try:
            yield
        finally:
            EdgeStore.build_index = original  # type: ignore[method-assign]


#: --payload-memory's choices: how the engine holds the payload storage (mapped either way).
PAYLOAD_MEMORY = ("cold", "cached")


def engine_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The shard settings a run tries instead of `shard_config`'s (only those given)."""
    wanted = {
        "hnsw_m": args.hnsw_m,
        "hnsw_ef_construct": args.hnsw_ef_construct,
        "payload_memory": args.payload_memory,
    }
    return {key: value for key, value in wanted.items() if value is not None}


def overridden_config(config: Any, overrides: dict[str, Any]) -> Any:
    """`shard_config`'s EdgeConfig with the HNSW ``m``/``ef_construct`` and the payload memory of
    ``overrides`` (its fields are read-only, so a new one is made from the same parts)."""
    import qdrant_edge as engine

    if not overrides:
        return config
    hnsw = config.hnsw_config
    memory = {"cold": engine.Memory.Cold, "cached": engine.Memory.Cached}
    return engine.EdgeConfig(
        vectors=config.vectors,
        sparse_vectors=config.sparse_vectors,
        hnsw_config=engine.HnswIndexConfig(
            m=overrides.get("hnsw_m", hnsw.m),
            ef_construct=overrides.get("hnsw_ef_construct", hnsw.ef_construct),
            full_scan_threshold=hnsw.full_scan_threshold,
            max_indexing_threads=hnsw.max_indexing_threads,
            on_disk=hnsw.on_disk,
            payload_m=hnsw.payload_m,
            inline_storage=hnsw.inline_storage,
            memory=hnsw.memory,
        ),
        quantization_config=config.quantization_config,
        optimizers=config.optimizers,
        max_search_threads=config.max_search_threads,
        search_pool_core=config.search_pool_core,
        payload_memory=memory[overrides["payload_memory"]]
        if "payload_memory" in overrides
        else config.payload_memory,
        id_tracker_memory=config.id_tracker_memory,
        wal_enabled=config.wal_enabled,
    )


@contextlib.contextmanager
def shard_config_overridden(overrides: dict[str, Any]) -> Iterator[None]:
    """`EdgeStore` creates its shards with ``overrides`` applied to `shard_config` (a build child only:
    a shard keeps the settings it was created with, so the serving child needs nothing)."""
    from rag_gateway.rag.retrieval.stores import edge as edge_store

    original = edge_store.shard_config

    def patched(dim: int, quantization: bool, search_threads: int) -> Any:
        return overridden_config(original(dim, quantization, search_threads), overrides)

    edge_store.shard_config = patched  # type: ignore[assignment]
    try:
        yield
    finally:
        edge_store.shard_config = original  # type: ignore[assignment]


def recorded_shard_config(store: Path) -> dict[str, Any]:
    """What the engine recorded for the synthetic collection: HNSW m/ef_construct, memory placements."""
    with contextlib.suppress(OSError, ValueError):
        config = json.loads((store / COLLECTION / "edge_config.json").read_text())
        hnsw = config.get("hnsw_config") or {}
        dense = next(iter((config.get("vectors") or {}).values()), {})
        return {
            "hnsw_m": hnsw.get("m"),
            "hnsw_ef_construct": hnsw.get("ef_construct"),
            "full_scan_threshold": hnsw.get("full_scan_threshold"),
            "payload_memory": config.get("payload_memory"),
            "vector_memory": dense.get("memory"),
        }
    return {}


def edge_build(spec: dict[str, Any], report: ChildReport) -> None:
    """Child: `import_jsonl` into a fresh edge folder (validation, upserts, then the HNSW index)."""
    from rag_gateway.ingest.jsonl import import_jsonl

    jsonl, store = Path(spec["jsonl"]), Path(spec["store"])
    settings = store_settings(store, spec["quantization"])
    report.update(phase="import")
    timer = IndexTimer(report)
    started = time.perf_counter()
    overrides = shard_config_overridden(spec.get("overrides") or {})
    with ReadProgress(jsonl, report), timer.installed(), overrides:
        outcome = asyncio.run(import_jsonl(jsonl, settings, progress=False))
    total_s = time.perf_counter() - started
    import_s = total_s - timer.seconds
    report.update(
        phase="done",
        total_s=round(total_s, 3),
        import_s=round(import_s, 3),
        import_rate=round(spec["n"] / import_s, 1),
        index_s=round(timer.seconds, 3),
        points=outcome.read,
    )
    report.memory("after_import")
    report.update(disk_mb=round(disk_bytes(store) / 2**20, 1), store_config=recorded_shard_config(store))


def pipeline_limit(settings: Any) -> int:
    """Hits asked per (collection, query), as the pipeline asks at the default k."""
    per_document = settings.sources_per_document
    return int(max(settings.search_limit_per_query, 2 * settings.default_top_k * per_document))


def pipeline_searches(work: Workload, settings: Any, sparse_texts: str = "all") -> list[list[Any]]:
    """Each request's queries as the pipeline builds them: the dense vectors, then in hybrid mode (the
    default) a BM25 query per question text (``sparse_texts`` "all"), or for the question only
    ("original"), encoded with the gateway's SparseEncoder (before the timing, as the pipeline does before
    its search stage)."""
    from rag_gateway.rag.retrieval.sparse import SparseEncoder

    sparse = SparseEncoder() if settings.retrieval_mode == "hybrid" else None
    searches: list[list[Any]] = []
    for vectors, texts in zip(work.requests, work.request_texts, strict=True):
        queries: list[Any] = list(vectors)
        if sparse is not None:
            queries += [sparse.query(text) for text in (texts if sparse_texts == "all" else texts[:1])]
        searches.append(queries)
    return searches


async def searched_collections(store: Any) -> list[str]:
    """The collections the catalogue hands the pipeline: the configured ones that exist and hold points."""
    from rag_gateway.config import COLLECTIONS
    from rag_gateway.rag.retrieval.catalog import CorpusCatalog

    return list(await CorpusCatalog(store, COLLECTIONS, ttl_s=60.0).collections())


@dataclass
class PipelineRequests:
    """The searches of the workload's requests as the pipeline makes them on this store."""

    profile: str  #: the retrieval profile the store's size gets (RETRIEVAL_PROFILE)
    searches: list[list[Any]]  #: as the pipeline issues them under that profile
    question: list[list[Any]]  #: the large profile's: 3 dense + the question's BM25 without common terms
    question_all_terms: list[list[Any]]  #: the same with every term
    info: dict[str, Any]


async def pipeline_requests(
    store: Any, collections: Sequence[str], settings: Any, work: Workload
) -> PipelineRequests:
    """The searches as the pipeline runs them in the (one) searched collection: the profile its size gets,
    BM25 queries without the collection's common terms, and what estimating those cost."""
    from rag_gateway.config import COLLECTIONS
    from rag_gateway.rag.retrieval.catalog import CorpusCatalog, common_term_policy
    from rag_gateway.rag.retrieval.options import RetrievalProfiles

    began = time.perf_counter()
    profiles = RetrievalProfiles.from_settings(settings)
    catalog = CorpusCatalog(store, COLLECTIONS, 60.0, common_term_policy(settings, profiles))
    await catalog.refresh()
    estimated_s = time.perf_counter() - began
    options, large = profiles.options_for(catalog.points()), profiles.large

    def without_common(searches: list[list[Any]], share: float) -> list[list[Any]]:
        common = catalog.common_terms(share)
        if len(collections) != 1:
            return searches
        return [list(common.queries_for(collections[0], queries)) for queries in searches]

    question_all_terms = pipeline_searches(work, settings, "original")
    large_common = catalog.common_terms(large.common_term_share).by_collection
    return PipelineRequests(
        profile=options.profile,
        searches=without_common(
            pipeline_searches(work, settings, options.sparse_queries), options.common_term_share
        ),
        question=without_common(question_all_terms, large.common_term_share),
        question_all_terms=question_all_terms,
        info={
            "profile": options.profile,
            "common_term_share": options.common_term_share,
            "common_terms": {
                name: len(terms)
                for name, terms in catalog.common_terms(options.common_term_share).by_collection.items()
            },
            "large_common_term_share": large.common_term_share,
            "large_common_terms": {name: len(terms) for name, terms in large_common.items()},
            "common_terms_s": round(estimated_s, 3),
        },
    )


async def _measure_edge_store(store: Any, work: Workload, settings: Any) -> dict[str, Any]:
    """Time the pipeline's searches (plain, filtered, dense only) and measure recall@10 on an open store,
    then the process's RSS (``serving_*``)."""
    from rag_gateway.errors import GatewayError

    collections = await searched_collections(store)
    limit, errors = pipeline_limit(settings), 0
    requests = await pipeline_requests(store, collections, settings, work)
    searches = requests.searches

    scoring: list[float] = []

    async def timed_pass(
        requests: Sequence[list[Any]], authors: Sequence[str | None], score: bool = False
    ) -> list[float]:
        """Search timings; with ``score``, also the reranker's call (`dense_scores` of the first dense
        vector against the deduplicated hits, as the pipeline's rerank stage makes it) into ``scoring``."""
        nonlocal errors
        samples: list[float] = []
        for queries, author in zip(requests, authors, strict=True):
            began = time.perf_counter()
            result = await store.search_collections(collections, queries, author, limit)
            samples.append((time.perf_counter() - began) * 1000)
            errors += sum(isinstance(r, GatewayError) for r in result.values())
            if score:
                ids = {
                    name: list({hit.id: None for hits in lists for hit in hits})
                    for name, lists in result.items()
                    if not isinstance(lists, GatewayError)
                }
                began = time.perf_counter()
                await store.dense_scores(queries[0], ids)
                scoring.append((time.perf_counter() - began) * 1000)
        return samples

    no_filter = [None] * len(searches)
    await timed_pass(searches[:20], no_filter[:20])  # page in what the first searches touch
    sparse_only = [queries[VECTORS_PER_REQUEST:] for queries in searches]
    # the large profile's: the dense vectors and the question's BM25 query, with and without common terms
    question_sparse, question_all_terms = requests.question, requests.question_all_terms
    result: dict[str, Any] = {
        **requests.info,
        "vector_search_ef": settings.vector_search_ef,
        "retrieval_mode": settings.retrieval_mode,
        "queries_per_request": len(searches[0]),
        "limit": limit,
        "search": latency_summary(await timed_pass(searches, no_filter, score=True)),
        "search_filtered": latency_summary(await timed_pass(searches, work.request_authors)),
        "search_dense": latency_summary(await timed_pass([list(r) for r in work.requests], no_filter)),
        "search_dense_filtered": latency_summary(
            await timed_pass([list(r) for r in work.requests], work.request_authors)
        ),
        # the BM25 queries alone (hybrid mode): what the other half of the search costs
        "search_sparse": latency_summary(await timed_pass(sparse_only, no_filter) if sparse_only[0] else []),
        "search_question_bm25": latency_summary(
            await timed_pass(question_sparse, no_filter) if sparse_only[0] else []
        ),
        "search_question_bm25_filtered": latency_summary(
            await timed_pass(question_sparse, work.request_authors) if sparse_only[0] else []
        ),
        # the same with every query term (HYBRID_COMMON_TERM_SHARE=1): what leaving common terms out saves
        "search_question_bm25_all_terms": latency_summary(
            await timed_pass(question_all_terms, no_filter) if sparse_only[0] else []
        ),
        "search_question_bm25_all_terms_filtered": latency_summary(
            await timed_pass(question_all_terms, work.request_authors) if sparse_only[0] else []
        ),
    }
    result["rerank_scores"] = latency_summary(scoring)
    result["search_errors"] = errors

    def ids(vector: np.ndarray, author: str | None) -> list[int]:
        hits = store.search(COLLECTION, [vector], author, RECALL_K)[0]
        return [point_index(h.id) for h in hits]

    result["recall"] = recall_at_k([ids(q, None) for q in work.recall], work.truth)
    result["recall_filtered"] = recall_at_k(
        [ids(q, a) for q, a in zip(work.recall, work.recall_authors, strict=True)], work.truth_filtered
    )
    result.update(memory_now("serving"))
    return result


async def _edge_measure(spec: dict[str, Any], report: ChildReport) -> None:
    from rag_gateway.rag.retrieval.stores.edge import EdgeStore

    work = Workload.load(Path(spec["workload"]))
    path = Path(spec["store"])
    settings = store_settings(path, spec["quantization"])
    started = time.perf_counter()
    store = EdgeStore(settings)
    open_s = time.perf_counter() - started
    try:
        collections = await searched_collections(store)
        started = time.perf_counter()
        names = await store.authors(collections)
        report.update(
            open_s=round(open_s, 3),
            authors_s=round(time.perf_counter() - started, 3),
            authors=len(names),
            collections=collections,
            store_config=recorded_shard_config(path),
        )
        report.memory("after_open")
        measured = await _measure_edge_store(store, work, settings)
        report.update(
            **measured, serving_rss_by_file=rss_by_file(path), peak_rss_mb=measured["serving_peak_rss_mb"]
        )
    finally:
        await store.close()
    sweep: list[dict[str, Any]] = []
    for ef in spec.get("ef_sweep") or []:  # the same store searched at other hnsw_ef values, reopened
        ef_settings = store_settings(path, spec["quantization"], ef)
        store = EdgeStore(ef_settings)
        try:
            sweep.append(await _measure_edge_store(store, work, ef_settings))
        finally:
            await store.close()
        report.update(ef_sweep=sweep)


def edge_measure(spec: dict[str, Any], report: ChildReport) -> None:
    """Child: open the edge folder as the gateway does, then time searches and measure recall."""
    asyncio.run(_edge_measure(spec, report))


def local_build(spec: dict[str, Any], report: ChildReport) -> None:
    """Child: fill a qdrant-client local-mode folder with the JSONL's points, within ``deadline_s``."""
    from qdrant_client import QdrantClient, models

    from rag_gateway.config import COLLECTIONS

    warnings.filterwarnings("ignore", message="Local mode is not recommended")  # measuring it is the point

    jsonl, store, deadline_s = Path(spec["jsonl"]), Path(spec["store"]), float(spec["deadline_s"])
    started = time.perf_counter()
    client = QdrantClient(path=str(store))
    written = 0
    try:
        for name in COLLECTIONS:
            client.create_collection(
                name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
            )
        report.update(phase="import")
        with jsonl.open("rb") as lines:
            for batch in _batches(lines, 1000):
                points = [
                    models.PointStruct(id=p["id"], vector=p["vector"], payload=p["payload"]) for p in batch
                ]
                client.upsert(COLLECTION, points=points, wait=True)
                written += len(points)
                elapsed = time.perf_counter() - started
                report.update(points_written=written)
                if elapsed > deadline_s and written < spec["n"]:
                    report.update(phase="stopped", import_s=round(elapsed, 3), capped=True)
                    return
    finally:
        client.close()
    import_s = time.perf_counter() - started
    report.update(import_s=round(import_s, 3), import_rate=round(written / import_s, 1), phase="done")
    report.memory("after_import")
    report.update(disk_mb=round(disk_bytes(store) / 2**20, 1))


def _batches(lines: Any, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for line in lines:
        batch.append(orjson.loads(line))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def local_measure(spec: dict[str, Any], report: ChildReport) -> None:
    """Child: open the local-mode folder (it loads every point) and time `search_local` (dense only, as
    the versions that served from it searched), each pass capped at ``budget_s`` seconds."""
    from qdrant_client import QdrantClient

    from rag_gateway.config import COLLECTIONS
    from rag_gateway.rag.retrieval.stores.local import search_local

    warnings.filterwarnings("ignore", message="Local mode is not recommended")
    work = Workload.load(Path(spec["workload"]))
    budget_s = float(spec["budget_s"])
    started = time.perf_counter()
    client = QdrantClient(path=spec["store"])
    try:
        present = {c.name for c in client.get_collections().collections}
        # as the catalogue hands them over: the collections that exist and hold points
        collections = [c for c in COLLECTIONS if c in present and client.count(c).count > 0]
        report.update(open_s=round(time.perf_counter() - started, 3), collections=collections, authors_s=None)
        report.memory("after_open")
        limit = pipeline_limit(store_settings(Path(spec["store"])))

        def timed_pass(authors: Sequence[str | None]) -> list[float]:
            samples: list[float] = []
            deadline = time.perf_counter() + budget_s
            for vectors, author in zip(work.requests[: len(authors)], authors, strict=True):
                began = time.perf_counter()
                search_local(client, collections, list(vectors), author, limit)
                samples.append((time.perf_counter() - began) * 1000)
                if time.perf_counter() > deadline:
                    break
            return samples

        timed_pass([None] * min(5, len(work.requests)))
        plain = timed_pass([None] * len(work.requests))
        filtered = timed_pass(work.request_authors)
        report.update(
            retrieval_mode="dense",
            queries_per_request=VECTORS_PER_REQUEST,
            limit=limit,
            search=latency_summary(plain),
            search_filtered=latency_summary(filtered),
            search_dense=latency_summary(plain),
            search_errors=0,
        )

        def ids(vector: np.ndarray, author: str | None) -> list[int]:
            hits = search_local(client, [COLLECTION], [vector], author, RECALL_K)[COLLECTION][0]
            return [point_index(h.id) for h in hits]

        n_recall = min(len(work.recall), 20)  # it is exact: a sample only checks the ground truth
        report.update(
            recall=recall_at_k([ids(q, None) for q in work.recall[:n_recall]], work.truth[:n_recall]),
            recall_filtered=recall_at_k(
                [
                    ids(q, a)
                    for q, a in zip(work.recall[:n_recall], work.recall_authors[:n_recall], strict=True)
                ],
                work.truth_filtered[:n_recall],
            ),
        )
        report.memory("serving")
    finally:
        client.close()


# --- /rag through the gateway -------------------------------------------------------------------------------
class RagStack:
    """The emulators (started on first use) and one `rag-gateway serve` per store folder."""

    def __init__(
        self, procs: Processes, workdir: Path, args: argparse.Namespace, questions: Sequence[str]
    ) -> None:
        self.procs = procs
        self.workdir = workdir
        self.args = args
        self.questions = questions
        self.env: dict[str, str] | None = None
        self.emulator_pid = 0

    def _start_emulators(self) -> dict[str, str]:
        from benchmarks.bench import base_env

        openai_port, sagemaker_port = free_port(), free_port()
        env = base_env(self.workdir, openai_port, sagemaker_port)
        emulator = start_emulators(
            self.procs,
            env,
            openai_port,
            sagemaker_port,
            openai_latency=self.args.openai_latency,
            sagemaker_latency=self.args.sagemaker_latency,
            deadline_s=30,
        )
        self.emulator_pid = emulator.pid
        return env

    def measure(self, store: Path) -> dict[str, Any]:
        """Start a gateway on ``store``, time it until /readyz is 200, then run each load level."""
        from benchmarks.bench import measure_level

        if self.env is None:
            self.env = self._start_emulators()
        env = {**self.env, "QDRANT_PATH": str(store)}
        port = free_port()
        url = loopback(port)
        started = time.monotonic()
        gateway = self.procs.start("gateway", [RAG_GATEWAY, "serve", "--port", str(port)], env)
        try:
            wait_for(f"{url}/readyz", 600, procs=self.procs, name="gateway")
            result: dict[str, Any] = {"ready_s": round(time.monotonic() - started, 2)}
            result["ready_rss_mb"] = round(process_memory_mb(gateway.pid)[0], 1)
            print(
                f"    gateway ready (/readyz 200) {result['ready_s']} s after start, RSS {result['ready_rss_mb']} MB",
                flush=True,
            )
            levels = []
            for concurrency in self.args.rag_levels:
                m = measure_level(
                    url,
                    gateway.pid,
                    self.questions,
                    concurrency,
                    self.args.rag_duration,
                    self.args.rag_warmup,
                    60.0,
                    {"emulators": self.emulator_pid},
                )
                lv = m.level
                levels.append(
                    {
                        "concurrency": concurrency,
                        "rps": round(lv.rps, 2),
                        "p50_ms": _num(lv.p(50)),
                        "p99_ms": _num(lv.p(99)),
                        "n": lv.completed,
                        "errors": lv.errors,
                        "degraded": lv.degraded,
                        "search_stage_median_ms": _num(median_stages(lv.stage_timings).get("search")),
                        "peak_rss_mb": round(m.peak_rss_mb, 1),
                    }
                )
                print(f"    /rag C={concurrency}: {_describe_level(levels[-1])}", flush=True)
            result["levels"] = levels
            return result
        finally:
            self.procs.stop("gateway")


def _num(value: float | None, digits: int = 1) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


def _describe_level(level: dict[str, Any]) -> str:
    errors = f", {level['errors']} errors" if level["errors"] else ""
    return (
        f"{level['rps']} rps, p50 {level['p50_ms']} ms, p99 {level['p99_ms']} ms (n={level['n']}{errors}); "
        f"search stage median {level['search_stage_median_ms']} ms"
    )


# --- one size -----------------------------------------------------------------------------------------------
def build_progress(result: dict[str, Any]) -> str:
    """Where a stopped build was: e.g. "import pass, 40% of the JSONL read" or "building the index"."""
    if result.get("phase") == "index":
        return "building the index"
    if result.get("points_written") is not None:
        return f"{result['points_written']:,} points written"
    fraction = result.get("jsonl_fraction_read")
    if fraction is None:
        return f"phase {result.get('phase')}"
    step = "validation" if result.get("jsonl_pass", 1) == 1 else "import"
    return f"{step} pass, {fraction:.0%} of the JSONL read"


def _phase(label: str, result: dict[str, Any]) -> str:
    if result.get("timed_out"):
        return f"{label}: STOPPED after {result.get('elapsed_s', 0):.0f} s ({build_progress(result)})"
    if result.get("error"):
        return f"{label}: FAILED ({result['error']})"
    return label


def build_and_measure_edge(
    name: str,
    corpus: CorpusFiles,
    workload_path: Path,
    folder: Path,
    quantization: bool,
    budget_s: float,
    overrides: dict[str, Any] | None = None,
    ef_sweep: Sequence[int] = (),
) -> dict[str, Any]:
    """Import + index in one child (capped at ``budget_s``; shards created with ``overrides`` of
    `shard_config`), then open + search in a second one (again at each hnsw_ef of ``ef_sweep``)."""
    store = folder / f"store-{name}"
    spec = {
        "jsonl": str(corpus.jsonl),
        "store": str(store),
        "n": corpus.n,
        "quantization": quantization,
        "overrides": overrides or {},
    }
    build = run_child(edge_build, spec, folder / f"{name}-build.json", timeout_s=budget_s)
    print(_phase(f"  {name}: build", build), flush=True)
    result: dict[str, Any] = {"backend": name, "store": _store_label(store), "build": build}
    if build.get("timed_out") or build.get("error"):
        return result
    print(
        f"    import {build['import_s']:.1f} s ({build['import_rate']:.0f} points/s), index {build['index_s']:.1f} s, "
        f"disk {build['disk_mb']:.0f} MB, RSS after import {build['after_import_rss_mb']:.0f} MB, "
        f"peak {build['peak_rss_mb']:.0f} MB (before the index build: {build.get('before_index_rss_mb')} MB, "
        f"peak {build.get('before_index_peak_rss_mb')} MB)",
        flush=True,
    )
    spec = {
        "store": str(store),
        "workload": str(workload_path),
        "quantization": quantization,
        "ef_sweep": list(ef_sweep),
    }
    result["serve"] = serve = run_child(edge_measure, spec, folder / f"{name}-serve.json")
    print(_phase(f"  {name}: serve", serve), flush=True)
    if not serve.get("error"):
        print(f"    {_describe_serving(serve)}", flush=True)
        for entry in serve.get("ef_sweep", []):
            print(f"    hnsw_ef {entry['vector_search_ef']}: {_describe_serving(entry)}", flush=True)
    return result


def build_and_measure_local(
    corpus: CorpusFiles, workload_path: Path, folder: Path, budget_s: float
) -> dict[str, Any]:
    store = folder / "store-local"
    spec = {"jsonl": str(corpus.jsonl), "store": str(store), "n": corpus.n, "deadline_s": budget_s}
    build = run_child(local_build, spec, folder / "local-build.json", timeout_s=budget_s + 120)
    result: dict[str, Any] = {"backend": "local", "store": _store_label(store), "build": build}
    if build.get("capped") or build.get("timed_out"):
        written = build.get("points_written", 0)
        rate = written / max(1e-9, build.get("import_s") or build.get("elapsed_s", 1))
        print(
            f"  local: upsert STOPPED at the {budget_s / 60:.0f}-minute cap: {written} of {corpus.n} points in "
            f"{build.get('import_s') or build.get('elapsed_s')} s ({rate:.0f} points/s); size skipped for local mode",
            flush=True,
        )
        return result
    print(_phase("  local: build", build), flush=True)
    if build.get("error"):
        return result
    print(
        f"    upsert {build['import_s']:.1f} s ({build['import_rate']:.0f} points/s), disk {build['disk_mb']:.0f} MB, "
        f"RSS after import {build['after_import_rss_mb']:.0f} MB, peak {build['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    spec = {"store": str(store), "workload": str(workload_path), "budget_s": 60.0}
    result["serve"] = serve = run_child(local_measure, spec, folder / "local-serve.json")
    print(_phase("  local: serve", serve), flush=True)
    if not serve.get("error"):
        print(f"    {_describe_serving(serve)}", flush=True)
    return result


def _describe_serving(serve: dict[str, Any]) -> str:
    def pair(key: str) -> str:
        s = serve.get(key) or {}
        return f"p50 {s.get('p50_ms')} / p99 {s.get('p99_ms')} ms (n={s.get('n')})"

    authors = (
        f" + authors() {serve['authors_s']} s ({serve.get('authors')} names)"
        if serve.get("authors_s") is not None
        else ""
    )
    opened = f"open {serve.get('open_s')} s{authors}; " if serve.get("open_s") is not None else ""
    profile = f", {serve['profile']} profile" if serve.get("profile") else ""
    queries = f"{serve.get('retrieval_mode')}{profile}: {serve.get('queries_per_request')} queries x {serve.get('limit')} hits"
    dense_filtered = (
        f", filtered {pair('search_dense_filtered')}" if serve.get("search_dense_filtered") else ""
    )
    bm25 = (
        f"    question's BM25: {pair('search_question_bm25')}, filtered {pair('search_question_bm25_filtered')};"
        f" every term: {pair('search_question_bm25_all_terms')}, filtered "
        f"{pair('search_question_bm25_all_terms_filtered')}\n"
        f"    common terms left out: {serve.get('common_terms')} (share > {serve.get('common_term_share')}),"
        f" the large profile's {serve.get('large_common_terms')} (share > "
        f"{serve.get('large_common_term_share')}), estimated in {serve.get('common_terms_s')} s\n"
        if serve.get("search_question_bm25")
        else ""
    )
    return (
        f"{opened}RSS serving {serve.get('serving_rss_mb')} MB (anon {serve.get('serving_rss_anon_mb')}, "
        f"file {serve.get('serving_rss_file_mb')}); hnsw_ef {serve.get('vector_search_ef')}\n"
        f"    search ({queries}) {pair('search')}; filtered {pair('search_filtered')}\n"
        f"    dense only {pair('search_dense')}{dense_filtered}; BM25 only {pair('search_sparse')}\n"
        + bm25
        + f"    recall@10 {_fmt(serve.get('recall'), '.3f')}, filtered {_fmt(serve.get('recall_filtered'), '.3f')}"
    )


@dataclass
class SizePlan:
    n: int
    edge_quantization_ab: bool
    local: bool


def run_size(
    plan: SizePlan,
    seed: Seed,
    authors: Authors,
    questions: Sequence[str],
    args: argparse.Namespace,
    workdir: Path,
    rag: RagStack | None,
) -> dict[str, Any]:
    n = plan.n
    rng = np.random.default_rng(args.seed + n)
    corpus_seeds, query_seeds = split_seed(len(seed.vectors), np.random.default_rng(args.seed))
    folder = workdir / f"n{n}"
    print(f"\n== N = {n:,} ==", flush=True)
    corpus = write_corpus(
        folder,
        n,
        seed,
        corpus_seeds,
        authors,
        args.noise,
        rng,
        kind=args.corpus,
        mix_neighbours=args.mix_neighbours or None,
    )
    print(
        f"  corpus ({args.corpus}): {corpus.jsonl_bytes / 2**20:.0f} MB of JSONL written in {corpus.seconds:.1f} s; "
        f"{corpus.stats['distinct_texts']:,} distinct texts in the first {corpus.stats['distinct_texts_of']:,} "
        f"chunks, {corpus.stats['mean_content_chars']:.0f} characters on average",
        flush=True,
    )
    started = time.perf_counter()
    # the queries do not depend on the corpus kind (their filters name authors of the corpus's points)
    workload_rng = np.random.default_rng([args.seed, n, 1])
    workload = make_workload(
        corpus,
        seed,
        query_seeds,
        authors,
        args.noise,
        workload_rng,
        args.requests,
        args.recall_queries,
        questions,
    )
    workload_path = folder / "workload.npz"
    workload.save(workload_path)
    shape = neighbourhood(corpus, workload)
    shape.update(
        bm25_term_shares(corpus.jsonl, sorted({t for texts in workload.request_texts for t in texts}))
    )
    print(f"  exact ground truth in {time.perf_counter() - started:.1f} s; {shape}", flush=True)
    result: dict[str, Any] = {
        "n": n,
        "corpus": {
            **corpus.stats,
            "jsonl_mb": round(corpus.jsonl_bytes / 2**20, 1),
            "generate_s": round(corpus.seconds, 2),
            **shape,
        },
        "backends": [],
    }
    budget_s = args.max_build_minutes * 60
    overrides = engine_overrides(args)
    edge = build_and_measure_edge(
        "edge", corpus, workload_path, folder, True, budget_s, overrides, args.ef_sweep
    )
    result["backends"].append(edge)
    if "serve" not in edge:
        result["skipped"] = f"the edge store could not be built within {args.max_build_minutes:g} minutes"
        print(f"  skipping the rest of N = {n:,}: {result['skipped']}", flush=True)
        return result
    if rag is not None:
        print("  /rag through the gateway:", flush=True)
        try:
            edge["rag"] = rag.measure(folder / "store-edge")  # edge["store"] is only a label
        except SystemExit as exc:  # the gateway did not start or get ready: wait_for says why
            edge["rag"] = {"error": str(exc)}
            print(f"    /rag: FAILED: {exc}", flush=True)
    if plan.edge_quantization_ab:
        result["backends"].append(
            build_and_measure_edge("edge-float32", corpus, workload_path, folder, False, budget_s, overrides)
        )
    if plan.local:
        result["backends"].append(build_and_measure_local(corpus, workload_path, folder, budget_s))
    else:
        result["local_skipped"] = f"N > --local-max {args.local_max}"
        print(f"  local: skipped ({result['local_skipped']}: its upsert and load take too long)", flush=True)
    return result


# --- the report ---------------------------------------------------------------------------------------------
def _fmt(value: Any, spec: str = ".0f", missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, spec)


def _p50_p99(summary: dict[str, Any] | None) -> str:
    if not summary or not summary.get("n"):
        return "–"
    few = f" (n={summary['n']})" if summary["n"] < 200 else ""  # a pass stopped at its time budget
    return f"{_fmt(summary['p50_ms'], '.2f')} / {_fmt(summary['p99_ms'], '.2f')}{few}"


BACKEND_LABELS = {"edge": "edge (int8)", "edge-float32": "edge (float32)", "local": "local mode"}


def table_rows(sizes: Sequence[dict[str, Any]], rag_levels: Sequence[int]) -> list[list[str]]:
    rows = []
    for size in sizes:
        for backend in size["backends"]:
            build, serve = backend.get("build", {}), backend.get("serve", {})
            if build.get("timed_out") or build.get("capped"):
                seconds = build.get("import_s") or build.get("elapsed_s")
                note = f"stopped after {_fmt(seconds)} s ({build_progress(build)})"
                rows.append(
                    [f"{size['n']:,}", BACKEND_LABELS[backend["backend"]], note]
                    + ["–"] * (12 + len(rag_levels))
                )
                continue
            rag = backend.get("rag") or {}
            levels = {lv["concurrency"]: lv for lv in rag.get("levels", [])}
            open_s = serve.get("open_s")
            startup = _fmt(open_s, ".2f") if open_s is not None else "–"
            if serve.get("authors_s") is not None:
                startup += f" + {serve['authors_s']:.2f}"
            rows.append(
                [
                    f"{size['n']:,}",
                    BACKEND_LABELS[backend["backend"]],
                    _fmt(build.get("import_rate")),
                    _fmt(build.get("index_s"), ".1f"),
                    _fmt(build.get("disk_mb")),
                    f"{_fmt(build.get('after_import_rss_mb'))} / {_fmt(build.get('peak_rss_mb'))}",
                    f"{_fmt(serve.get('serving_rss_anon_mb'))} + {_fmt(serve.get('serving_rss_file_mb'))}",
                    f"{startup} / {_fmt(rag.get('ready_s'), '.1f')}",
                    _p50_p99(serve.get("search")),
                    _p50_p99(serve.get("search_filtered")),
                    f"{_p50_p99(serve.get('search_question_bm25'))}; "
                    f"{_p50_p99(serve.get('search_question_bm25_filtered'))}",
                    f"{_p50_p99(serve.get('search_question_bm25_all_terms'))}; "
                    f"{_p50_p99(serve.get('search_question_bm25_all_terms_filtered'))}",
                    _p50_p99(serve.get("rerank_scores")),
                    f"{_fmt(serve.get('recall'), '.3f')} / {_fmt(serve.get('recall_filtered'), '.3f')}",
                ]
                + [_rag_cell(levels.get(c)) for c in rag_levels]
            )
    return rows


def _rag_cell(level: dict[str, Any] | None) -> str:
    if level is None:
        return "–"
    return f"{_fmt(level['p50_ms'])} / {_fmt(level['p99_ms'])} ({level['rps']:.1f} rps)"


def markdown_table(sizes: Sequence[dict[str, Any]], rag_levels: Sequence[int]) -> str:
    header = [
        "N",
        "store",
        "import pts/s",
        "index s",
        "disk MB",
        "RSS import / peak MB",
        "RSS serving anon + file MB",
        "open+authors / ready s",
        "search p50 / p99 ms",
        "filtered p50 / p99 ms",
        "question's BM25 only: search; filtered p50 / p99 ms",
        "the same, every term: search; filtered p50 / p99 ms",
        "rerank scores p50 / p99 ms",
        "recall@10 / filtered",
    ] + [f"/rag C={c} p50 / p99 ms" for c in rag_levels]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(sizes, rag_levels)]
    return "\n".join(lines)


TABLE_NOTES = """\
import pts/s: `import_jsonl` (validation, BM25 vectors, upserts; edge) or `upsert` batches of 1,000 (local
mode), the index build excluded; index s: `build_index` (HNSW), which `import_jsonl` runs after its last batch;
RSS import / peak: the importing process after the import / its VmHWM; RSS serving: a fresh process after
opening the store and running every search, anonymous (RssAnon) + file-backed (RssFile: mapped segment files
and write-ahead logs, pages the kernel can drop and read again); open+authors / ready: store open + the
author catalogue in that process / `rag-gateway serve` start until /readyz is 200 (includes loading the
models); search: `search_collections` as the pipeline calls it under the retrieval profile the store's size
gets (RETRIEVAL_PROFILE=auto: standard, 3 dense vectors + 3 BM25 queries, below LARGE_CORPUS_POINTS chunks;
large, 3 dense + the question's BM25 query, from there; BM25 queries without the collection's common terms
in collections of HYBRID_COMMON_TERM_MIN_POINTS or more; hits per query as at the default k; the
collections that hold points; local mode: the 3 dense vectors only, as earlier versions searched);
filtered: the same with an author filter; question's BM25 only: the large profile's searches at any size (3
dense vectors + the question's BM25 query without the terms in more than a tenth of the chunks); the same,
every term: those searches with all their terms; rerank scores: the embedding reranker's
`dense_scores` call over the deduplicated hits of a search; recall@10: dense HNSW against numpy brute force over
the same vectors; /rag: closed-loop load with emulated OpenAI/SageMaker latency (bench.py's measure_level)."""


# --- the run ------------------------------------------------------------------------------------------------
def parse_ints(text: str) -> list[int]:
    try:
        values = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"comma-separated integers, e.g. 10000,100000: {exc}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("comma-separated positive integers, e.g. 10000,100000")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_scale", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument(
        "--sizes",
        type=parse_ints,
        default=[10_000, 100_000, 1_000_000],
        help="corpus sizes (10000,100000,1000000)",
    )
    p.add_argument("--authors", type=int, default=1000, help="distinct authors, zipf-distributed (1000)")
    p.add_argument("--zipf", type=float, default=1.0, help="zipf exponent of chunks per author (1.0)")
    p.add_argument(
        "--noise", type=float, default=0.3, help="noise norm around a seed vector (0.3; see the module doc)"
    )
    p.add_argument(
        "--corpus",
        choices=CORPORA,
        default="mixtures",
        help="mixtures: each chunk mixes 2-3 seed chunks (vectors and sentences); noisy-copies: each is one "
        "seed chunk plus noise, the corpus of earlier runs (mixtures; see the module doc)",
    )
    p.add_argument(
        "--mix-neighbours",
        type=int,
        default=MIX_NEIGHBOURS,
        metavar="K",
        help=f"mixtures: a chunk's partner seeds are among its first seed's K most similar ({MIX_NEIGHBOURS}; "
        "0 = any seed)",
    )
    p.add_argument(
        "--ef-sweep",
        type=parse_ints,
        default=[],
        metavar="EF,...",
        help="also search the edge store at these hnsw_ef values (default: VECTOR_SEARCH_EF only)",
    )
    p.add_argument("--hnsw-m", type=int, default=None, help="build with this HNSW m (default: the store's)")
    p.add_argument(
        "--hnsw-ef-construct", type=int, default=None, help="build with this HNSW ef_construct (the store's)"
    )
    p.add_argument(
        "--payload-memory",
        choices=PAYLOAD_MEMORY,
        default=None,
        help="build with the payload storage cold (mapped, read on demand) or cached (the store's)",
    )
    p.add_argument("--requests", type=int, default=250, help="timed search requests per pass (250)")
    p.add_argument("--recall-queries", type=int, default=200, help="queries for recall@10 (200)")
    p.add_argument(
        "--local-max", type=int, default=100_000, help="largest N tried in qdrant-client local mode (100000)"
    )
    p.add_argument(
        "--quantization-ab",
        type=int,
        default=100_000,
        metavar="N",
        help="N (one of --sizes) where int8 is compared with float32; 0 = off",
    )
    p.add_argument(
        "--max-build-minutes", type=float, default=15.0, help="cap on one store's import + index (15)"
    )
    p.add_argument("--skip-rag", action="store_true", help="no /rag load through the gateway")
    p.add_argument("--rag-levels", type=parse_ints, default=[1, 64], help="/rag concurrency levels (1,64)")
    p.add_argument("--rag-duration", type=float, default=15.0, help="measured seconds per /rag level (15)")
    p.add_argument(
        "--rag-warmup", type=float, default=3.0, help="unmeasured seconds before each /rag level (3)"
    )
    p.add_argument(
        "--openai-latency", type=float, default=0.15, help="emulated seconds per OpenAI call (0.15)"
    )
    p.add_argument(
        "--sagemaker-latency", type=float, default=0.6, help="emulated seconds per SageMaker call (0.6)"
    )
    p.add_argument(
        "--seed-paths",
        type=Path,
        nargs="+",
        default=None,
        metavar="PATH",
        help="documents the vectors are seeded from (default: ../shared/data/articles.json, else the sample corpus)",
    )
    p.add_argument("--seed-limit", type=int, default=None, help="embed at most this many seed chunks")
    p.add_argument("--seed", type=int, default=20240917, help="random seed")
    p.add_argument(
        "--workdir", type=Path, default=None, help="parent folder of the run's data (default: the temp dir)"
    )
    p.add_argument("--keep", action="store_true", help="keep the corpora and stores")
    p.add_argument(
        "--remeasure",
        type=Path,
        default=None,
        metavar="SIZE_DIR",
        help="only search a store a --keep run left (its nN folder) again, under the settings of the "
        "environment (e.g. HYBRID_COMMON_TERM_SHARE=0.1), and print its row",
    )
    p.add_argument("--output", type=Path, default=ROOT / "bench-scale-results.json")
    return p


def plan_sizes(args: argparse.Namespace) -> list[SizePlan]:
    if args.quantization_ab and args.quantization_ab not in args.sizes:
        print(
            f"NOTE: --quantization-ab {args.quantization_ab} is not among --sizes: no int8/float32 comparison",
            flush=True,
        )
    return [SizePlan(n, n == args.quantization_ab, n <= args.local_max) for n in args.sizes]


def _setting_path(path: Path) -> str:
    """A path setting as results record it: relative to the project, or just its name when outside it."""
    shown = _shown(path)
    return path.name if shown.startswith("..") else shown


def write_results(
    path: Path, machine: dict[str, Any], args: argparse.Namespace, seed: Seed, sizes: list[dict[str, Any]]
) -> None:
    settings = {k: (_setting_path(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.pop("seed_paths", None)
    body = {
        "machine": machine,
        "settings": settings,
        "seed": {"source": seed.source, "chunks": len(seed.vectors)},
        "corpus": args.corpus,
        "vector_search_ef": store_settings(Path()).vector_search_ef,
        "engine_overrides": engine_overrides(args),
        "sizes": sizes,
        "table": markdown_table(sizes, [] if args.skip_rag else args.rag_levels),
    }
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")


def run(args: argparse.Namespace, workdir: Path, procs: Processes) -> int:
    from benchmarks.bench import machine_busy_now

    machine = machine_info()
    machine["busy_before_start"] = round(machine_busy_now(), 3)
    print(describe_machine(machine), flush=True)
    if machine["busy_before_start"] > 0.10:
        print(
            f"WARNING: the machine is already {machine['busy_before_start']:.0%} busy (other processes): "
            "expect slower builds and noisier latencies",
            flush=True,
        )
    plans = plan_sizes(args)
    started = time.perf_counter()
    seed_paths = args.seed_paths or default_seed_paths()
    seed = embed_seed(seed_paths, embedder_settings(workdir / "unused-qdrant"), args.seed_limit)
    real = {p["author_full_name"]: p["author_id"] for p in seed.payloads}
    authors = make_authors(args.authors, real, args.zipf)
    print(
        f"seed: {len(seed.vectors)} real chunks from {seed.source}, embedded in {time.perf_counter() - started:.1f} s; "
        f"{len(authors.names)} authors (zipf {args.zipf:g}); noise {args.noise:g}; corpus {args.corpus}"
        + (
            f" (partners among {args.mix_neighbours or 'all'} nearest seeds)"
            if args.corpus == "mixtures"
            else ""
        )
        + (f"; engine overrides {engine_overrides(args)}" if engine_overrides(args) else ""),
        flush=True,
    )
    questions = load_questions(SHARED_QUERIES if SHARED_QUERIES.is_file() else None, seed=args.seed)
    rag = None if args.skip_rag else RagStack(procs, workdir, args, questions)
    sizes: list[dict[str, Any]] = []
    for plan in plans:
        sizes.append(run_size(plan, seed, authors, questions, args, workdir, rag))
        write_results(args.output, machine, args, seed, sizes)
        if not args.keep:
            shutil.rmtree(workdir / f"n{plan.n}", ignore_errors=True)
    levels = [] if args.skip_rag else args.rag_levels
    print(f"\n{describe_machine(machine)}\n\n{markdown_table(sizes, levels)}\n\n{TABLE_NOTES}\n")
    print(f"wrote {args.output} ({time.perf_counter() - started:.0f} s in all)")
    return 0


def remeasure(folder: Path, output: Path) -> int:
    """The serving measurements of an edge store a --keep run left in ``folder`` (``store-edge`` and
    ``workload.npz``), again, in a fresh process: how the same store searches under other settings."""
    store, workload = folder / "store-edge", folder / "workload.npz"
    if not (store.is_dir() and workload.is_file()):
        print(
            f"error: {folder} holds no store-edge/ and workload.npz (keep a run with --keep)", file=sys.stderr
        )
        return 2
    machine = machine_info()
    print(describe_machine(machine), flush=True)
    spec = {"store": str(store), "workload": str(workload), "quantization": True, "ef_sweep": []}
    serve = run_child(edge_measure, spec, output.with_suffix(".serve.json"))
    print(_phase("  edge: serve", serve), flush=True)
    if serve.get("error"):
        return 1
    print(f"    {_describe_serving(serve)}", flush=True)
    n = int(folder.name[1:]) if folder.name[1:].isdigit() else serve.get("points", 0)
    size = {"n": n, "backends": [{"backend": "edge", "serve": serve}]}
    table = markdown_table([size], [])
    output.write_bytes(
        orjson.dumps({"machine": machine, "remeasured": _shown(folder), "sizes": [size], "table": table})
        + b"\n"
    )
    print(f"\n{table}\n\nwrote {output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.bench import sigterm_as_interrupt

    args = build_parser().parse_args(argv)
    if args.remeasure is not None:
        return remeasure(args.remeasure, args.output)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="rag-bench-scale-", dir=args.workdir))
    procs = Processes(workdir, cwd=ROOT)
    try:
        with sigterm_as_interrupt():
            return run(args, workdir, procs)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if args.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
