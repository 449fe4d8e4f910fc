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
* the search stage as the pipeline issues it (`search_collections` over the 3 collections with 3 dense
  vectors, plus 3 BM25 queries of real questions in hybrid mode, the default; as many hits as the pipeline
  asks at the default k), plain and with an author filter, p50/p99, dense-only too, and the RSS of a process
  that serves it;
* HNSW recall@10 of the dense search against exact search (numpy brute force over the generated vectors),
  plain and filtered;
* `/rag` p50/p99 at C=1 and C=64 through the existing load generator, with the OpenAI (150 ms) and
  SageMaker (600 ms) emulators standing in for the upstreams;
* the same (minus /rag) for qdrant-client's local mode, the store of earlier versions, up to --local-max;
* int8 quantization (the default: int8 copies in RAM, originals on disk, rescored) against full float32
  vectors in RAM at one size (--quantization-ab).

How the corpus is made: the real articles (../shared/data/articles.json; the sample corpus when absent) are
chunked with the project's own ingest chunking and embedded once with the project's embedder. 80% of those
chunk vectors seed the corpus, 20% are held out to seed the queries. A synthetic chunk is a random seed
vector plus gaussian noise, re-normalised; --noise is the noise vector's expected norm (per-dimension
sigma = noise / sqrt(384)), so at the default 0.3 a synthetic chunk keeps a cosine of ~0.96 to its seed and
neighbourhoods stay those of the real embeddings. Authors (~1,000) follow a zipf law, the two real authors
first; the payload carries ~1,000 characters of the seed chunk's text. The corpus is streamed to JSONL
(never held in memory) and imported into a fresh store folder.

Every build and every measurement of a size runs in its own spawned child process, so RSS and VmHWM belong
to that size alone; a build that exceeds --max-build-minutes is stopped, its time so far reported, and the
rest of that size skipped. Results go to bench-scale-results.json (with the machine) and a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
    }


def describe_machine(machine: dict[str, Any]) -> str:
    def yes(key: str) -> str:
        return "yes" if machine[key] else "no"

    return (
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM; "
        f"avx2 {yes('avx2')}, avx512f {yes('avx512f')}, avx512_vnni {yes('avx512_vnni')}, amx {yes('amx')}; "
        f"{machine['date']}; qdrant-edge-py {machine['qdrant_edge_py']}, qdrant-client {machine['qdrant_client']}"
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


@dataclass
class CorpusFiles:
    """A generated corpus: the JSONL to import, and the exact vectors and authors for ground truth."""

    n: int
    jsonl: Path
    vectors: Path  # .npy, (n, dim) float32: exactly what the JSONL holds
    authors: Path  # .npy, (n,) int32: author index of each point
    seconds: float

    @property
    def jsonl_bytes(self) -> int:
        return self.jsonl.stat().st_size


def chunk_line(
    index: int, vector: npt.NDArray[np.float64], seed: dict[str, Any], author: str, author_id: str
) -> bytes:
    """One JSONL line in the shape `rag-gateway ingest FILE.jsonl` reads."""
    document = index // CHUNKS_PER_DOCUMENT
    payload = {
        "content": trim(str(seed.get("content", ""))),
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
) -> CorpusFiles:
    """Stream ``n`` synthetic chunks to ``folder/corpus.jsonl``, a batch at a time."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    files = CorpusFiles(n, folder / "corpus.jsonl", folder / "vectors.npy", folder / "authors.npy", 0.0)
    exact = np.lib.format.open_memmap(
        files.vectors, mode="w+", dtype=np.float32, shape=(n, seed.vectors.shape[1])
    )
    who = np.empty(n, dtype=np.int32)
    with files.jsonl.open("wb") as out:
        for start in range(0, n, batch):
            count = min(batch, n - start)
            picked = rng.choice(sources, count)
            # 5 decimals keep the file ~40% smaller; the rounded values are the exact ground truth
            vectors = np.round(perturb(seed.vectors[picked], noise, rng).astype(np.float64), 5)
            by = rng.choice(len(authors.names), count, p=authors.weights)
            exact[start : start + count] = vectors
            who[start : start + count] = by
            out.write(
                b"".join(
                    chunk_line(
                        start + j,
                        vectors[j],
                        seed.payloads[picked[j]],
                        authors.names[by[j]],
                        authors.ids[by[j]],
                    )
                    for j in range(count)
                )
            )
    exact.flush()
    del exact
    np.save(files.authors, who)
    files.seconds = time.perf_counter() - started
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


def neighbourhood(corpus: CorpusFiles, workload: Workload) -> dict[str, float]:
    """Mean cosine of a query to its exact 1st and 10th neighbour: how tight the synthetic clusters are."""
    vectors = np.load(corpus.vectors, mmap_mode="r")
    first = [float(vectors[row[0]] @ q) for row, q in zip(workload.truth, workload.recall, strict=True)]
    last = [float(vectors[row[-1]] @ q) for row, q in zip(workload.truth, workload.recall, strict=True)]
    return {
        "mean_cos_top1": round(statistics.fmean(first), 4),
        "mean_cos_top10": round(statistics.fmean(last), 4),
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
        status = Path("/proc/self/status").read_text()
        rss, hwm = process_memory_mb(os.getpid())
        anon = (parse_proc_status_kb(status, "RssAnon") or 0) / 1024
        mapped = (parse_proc_status_kb(status, "RssFile") or 0) / 1024
        self.update(
            **{
                f"{prefix}_rss_mb": round(rss, 1),
                f"{prefix}_rss_anon_mb": round(anon, 1),
                f"{prefix}_rss_file_mb": round(mapped, 1),
                f"{prefix}_peak_rss_mb": round(hwm, 1),
                "peak_rss_mb": round(hwm, 1),
            }
        )


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


def store_settings(path: Path, quantization: bool = True) -> Any:
    from rag_gateway.config import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        qdrant_path=path,
        qdrant_url=None,
        edge_quantization=quantization,
        embedding_tokenizer_dir=TOKENIZER_DIR,
    )


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


def edge_build(spec: dict[str, Any], report: ChildReport) -> None:
    """Child: `import_jsonl` into a fresh edge folder (validation, upserts, then the HNSW index)."""
    from rag_gateway.ingest.jsonl import import_jsonl

    jsonl, store = Path(spec["jsonl"]), Path(spec["store"])
    settings = store_settings(store, spec["quantization"])
    report.update(phase="import")
    timer = IndexTimer(report)
    started = time.perf_counter()
    with ReadProgress(jsonl, report), timer.installed():
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
    report.update(disk_mb=round(disk_bytes(store) / 2**20, 1))


def pipeline_limit(settings: Any) -> int:
    """Hits asked per (collection, query), as the pipeline asks at the default k."""
    per_document = settings.sources_per_document
    return int(max(settings.search_limit_per_query, 2 * settings.default_top_k * per_document))


def pipeline_searches(work: Workload, settings: Any) -> list[list[Any]]:
    """Each request's queries as the pipeline builds them: the dense vectors, then in hybrid mode (the
    default) a BM25 query per question, encoded with the gateway's SparseEncoder (before the timing, as
    the pipeline does before its search stage)."""
    from rag_gateway.rag.retrieval.sparse import SparseEncoder

    sparse = SparseEncoder() if settings.retrieval_mode == "hybrid" else None
    searches: list[list[Any]] = []
    for vectors, texts in zip(work.requests, work.request_texts, strict=True):
        queries: list[Any] = list(vectors)
        if sparse is not None:
            queries += [sparse.query(text) for text in texts]
        searches.append(queries)
    return searches


async def _edge_measure(spec: dict[str, Any], report: ChildReport) -> None:
    from rag_gateway.config import COLLECTIONS
    from rag_gateway.errors import GatewayError
    from rag_gateway.rag.retrieval.stores.edge import EdgeStore

    work = Workload.load(Path(spec["workload"]))
    settings = store_settings(Path(spec["store"]), spec["quantization"])
    started = time.perf_counter()
    store = EdgeStore(settings)
    open_s = time.perf_counter() - started
    try:
        present = await store.existing_collections()
        collections = [c for c in COLLECTIONS if c in present]  # what the catalogue hands the pipeline
        started = time.perf_counter()
        names = await store.authors(collections)
        report.update(
            open_s=round(open_s, 3),
            authors_s=round(time.perf_counter() - started, 3),
            authors=len(names),
            collections=collections,
        )
        report.memory("after_open")
        limit, errors = pipeline_limit(settings), 0
        searches = pipeline_searches(work, settings)

        async def timed_pass(requests: Sequence[list[Any]], authors: Sequence[str | None]) -> list[float]:
            nonlocal errors
            samples: list[float] = []
            for queries, author in zip(requests, authors, strict=True):
                began = time.perf_counter()
                result = await store.search_collections(collections, queries, author, limit)
                samples.append((time.perf_counter() - began) * 1000)
                errors += sum(isinstance(r, GatewayError) for r in result.values())
            return samples

        no_filter = [None] * len(searches)
        await timed_pass(searches[:20], no_filter[:20])  # page in what the first searches touch
        report.update(
            retrieval_mode=settings.retrieval_mode,
            queries_per_request=len(searches[0]),
            limit=limit,
            search=latency_summary(await timed_pass(searches, no_filter)),
            search_filtered=latency_summary(await timed_pass(searches, work.request_authors)),
            search_dense=latency_summary(await timed_pass([list(r) for r in work.requests], no_filter)),
        )
        report.update(search_errors=errors)

        def ids(vector: np.ndarray, author: str | None) -> list[int]:
            hits = store.search(COLLECTION, [vector], author, RECALL_K)[0]
            return [point_index(h.id) for h in hits]

        report.update(
            recall=recall_at_k([ids(q, None) for q in work.recall], work.truth),
            recall_filtered=recall_at_k(
                [ids(q, a) for q, a in zip(work.recall, work.recall_authors, strict=True)],
                work.truth_filtered,
            ),
        )
        report.memory("serving")
    finally:
        await store.close()


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
        collections = [c for c in COLLECTIONS if c in present]
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
    name: str, corpus: CorpusFiles, workload_path: Path, folder: Path, quantization: bool, budget_s: float
) -> dict[str, Any]:
    """Import + index in one child (capped at ``budget_s``), then open + search in a second one."""
    store = folder / f"store-{name}"
    spec = {"jsonl": str(corpus.jsonl), "store": str(store), "n": corpus.n, "quantization": quantization}
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
    spec = {"store": str(store), "workload": str(workload_path), "quantization": quantization}
    result["serve"] = serve = run_child(edge_measure, spec, folder / f"{name}-serve.json")
    print(_phase(f"  {name}: serve", serve), flush=True)
    if not serve.get("error"):
        print(f"    {_describe_serving(serve)}", flush=True)
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
    queries = f"{serve.get('retrieval_mode')}: {serve.get('queries_per_request')} queries x {serve.get('limit')} hits"
    return (
        f"open {serve.get('open_s')} s{authors}; RSS serving {serve.get('serving_rss_mb')} MB\n"
        f"    search ({queries}) {pair('search')}; filtered {pair('search_filtered')}; "
        f"dense only {pair('search_dense')}\n"
        f"    recall@10 {_fmt(serve.get('recall'), '.3f')}, filtered {_fmt(serve.get('recall_filtered'), '.3f')}"
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
    corpus = write_corpus(folder, n, seed, corpus_seeds, authors, args.noise, rng)
    print(
        f"  corpus: {corpus.jsonl_bytes / 2**20:.0f} MB of JSONL written in {corpus.seconds:.1f} s",
        flush=True,
    )
    started = time.perf_counter()
    workload = make_workload(
        corpus, seed, query_seeds, authors, args.noise, rng, args.requests, args.recall_queries, questions
    )
    workload_path = folder / "workload.npz"
    workload.save(workload_path)
    shape = neighbourhood(corpus, workload)
    print(f"  exact ground truth in {time.perf_counter() - started:.1f} s; {shape}", flush=True)
    result: dict[str, Any] = {
        "n": n,
        "corpus": {
            "jsonl_mb": round(corpus.jsonl_bytes / 2**20, 1),
            "generate_s": round(corpus.seconds, 2),
            **shape,
        },
        "backends": [],
    }
    budget_s = args.max_build_minutes * 60
    edge = build_and_measure_edge("edge", corpus, workload_path, folder, True, budget_s)
    result["backends"].append(edge)
    if "serve" not in edge:
        result["skipped"] = f"the edge store could not be built within {args.max_build_minutes:g} minutes"
        print(f"  skipping the rest of N = {n:,}: {result['skipped']}", flush=True)
        return result
    if rag is not None:
        print("  /rag through the gateway:", flush=True)
        try:
            edge["rag"] = rag.measure(Path(edge["store"]))
        except SystemExit as exc:  # the gateway did not start or get ready: wait_for says why
            edge["rag"] = {"error": str(exc)}
            print(f"    /rag: FAILED: {exc}", flush=True)
    if plan.edge_quantization_ab:
        result["backends"].append(
            build_and_measure_edge("edge-float32", corpus, workload_path, folder, False, budget_s)
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
                    + ["–"] * (9 + len(rag_levels))
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
                    f"{_fmt(serve.get('serving_rss_mb'))} ({_fmt(serve.get('serving_rss_anon_mb'))})",
                    f"{startup} / {_fmt(rag.get('ready_s'), '.1f')}",
                    _p50_p99(serve.get("search")),
                    _p50_p99(serve.get("search_filtered")),
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
        "RSS serving (anon) MB",
        "open+authors / ready s",
        "search p50 / p99 ms",
        "filtered p50 / p99 ms",
        "recall@10 / filtered",
    ] + [f"/rag C={c} p50 / p99 ms" for c in rag_levels]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(sizes, rag_levels)]
    return "\n".join(lines)


TABLE_NOTES = """\
import pts/s: `import_jsonl` (validation, BM25 vectors, upserts; edge) or `upsert` batches of 1,000 (local
mode), the index build excluded; index s: `build_index` (HNSW), which `import_jsonl` runs after its last batch;
RSS import / peak: the importing process after the import / its VmHWM; RSS serving: a fresh process after
opening the store and running every search (anon: its anonymous part; the rest is mapped files, such as a
write-ahead log per shard); open+authors / ready: store open + the author catalogue in that process /
`rag-gateway serve` start until /readyz is 200 (includes loading the models); search: `search_collections`
as the pipeline calls it (3 dense vectors + 3 BM25 queries in hybrid mode, the default; hits per query as at
the default k; the 3 collections; local mode: the 3 dense vectors only, as earlier versions searched);
filtered: the same with an author filter; recall@10: dense HNSW against numpy brute force over the same
vectors; /rag: closed-loop load with emulated OpenAI/SageMaker latency (bench.py's measure_level)."""


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
    p.add_argument("--output", type=Path, default=ROOT / "bench-scale-results.json")
    return p


def plan_sizes(args: argparse.Namespace) -> list[SizePlan]:
    if args.quantization_ab and args.quantization_ab not in args.sizes:
        print(
            f"NOTE: --quantization-ab {args.quantization_ab} is not among --sizes: no int8/float32 comparison",
            flush=True,
        )
    return [SizePlan(n, n == args.quantization_ab, n <= args.local_max) for n in args.sizes]


def write_results(
    path: Path, machine: dict[str, Any], args: argparse.Namespace, seed: Seed, sizes: list[dict[str, Any]]
) -> None:
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "seed_paths"}
    body = {
        "machine": machine,
        "settings": settings,
        "seed": {"source": seed.source, "chunks": len(seed.vectors)},
        "vector_search_ef": store_settings(Path()).vector_search_ef,
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
        f"{len(authors.names)} authors (zipf {args.zipf:g}); noise {args.noise:g}",
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


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.bench import sigterm_as_interrupt

    args = build_parser().parse_args(argv)
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
