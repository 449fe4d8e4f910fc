"""Run the labelled questions through the gateway's real retrieval, once per retrieval mode.

The corpus is ingested with the gateway's own ingest into a fresh temporary store; the OpenAI and
SageMaker emulators (zero latency, deterministic self-query and expansion) stand in for the upstreams;
``open_app_state`` builds exactly what ``serve`` runs. Each question goes through
``RagPipeline.prepare`` (understanding, embedding, search, rerank: no LLM call), one at a time, with the
query caches off so every question pays its own way.

A *mode* is a named dict of Settings overrides. A mode naming a setting this gateway does not have is
skipped with the reason (``dense`` falls back to no override, which is what the gateway did before it had
``RETRIEVAL_MODE``). All modes share one ingest.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from rag_gateway.config import Settings
from rag_gateway.errors import GatewayError
from rag_gateway.eval.metrics import QuestionScore
from rag_gateway.eval.questions import Question, build_questions
from rag_gateway.ingest import IngestReport, ingest_paths, load_documents
from rag_gateway.ingest.records import DOCUMENT_ID_KEY
from rag_gateway.observability.metrics import Metrics
from rag_gateway.rag.outcome import RequestOutcome, StageTimings
from rag_gateway.rag.pipeline import RagPipeline
from rag_gateway.rag.retrieval.stores import AUTHOR_NAME_KEY
from rag_gateway.rag.retrieval.stores.folder_copy import copy_store_folder
from rag_gateway.state import open_app_state

SAMPLE_CORPUS = Path(str(files("rag_gateway") / "sample_corpus"))
QUESTIONS_FILE = "QUESTIONS.md"
#: Sources asked of ``prepare``: enough for nDCG@10 and MRR over 9.
DEFAULT_K = 10
#: Settings that decide what retrieval returns; recorded with the results to explain differences.
RETRIEVAL_SETTINGS = (
    "text_embedding_model_id",
    "embedding_model_variant",
    "reranking_cross_encoder_model_id",
    "search_limit_per_query",
    "query_expansion_n",
    "vector_search_ef",
    "edge_quantization",
    "retrieval_mode",
    "hybrid_sparse_weight",
    "hybrid_rerank_weight",
    "hybrid_sparse_queries",
    "hybrid_common_term_share",
    "hybrid_common_term_min_points",
    "retrieval_profile",
    "large_corpus_points",
    "sources_per_document",
)
DEFAULT_MODES = ("dense", "hybrid")


@dataclass(frozen=True)
class Mode:
    """A retrieval configuration to compare: a name and the Settings overrides that make it."""

    name: str
    overrides: Mapping[str, Any]
    #: Used instead of ``overrides`` when they name a setting this gateway lacks; None: skip the mode.
    fallback: Mapping[str, Any] | None = None


KNOWN_MODES: dict[str, Mode] = {
    "dense": Mode("dense", {"retrieval_mode": "dense"}, fallback={}),
    "hybrid": Mode("hybrid", {"retrieval_mode": "hybrid"}),
}


def replace_settings(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """``settings`` with ``overrides`` applied and validated (strings are parsed as from the environment)."""
    return Settings.model_validate({**settings.model_dump(), **overrides})


def resolve_mode(mode: Mode, settings: Settings) -> Settings | str:
    """The settings of ``mode``, or why it cannot run on this gateway."""
    missing = [key for key in mode.overrides if key not in Settings.model_fields]
    overrides = mode.overrides
    if missing:
        if mode.fallback is None:
            names = ", ".join(key.upper() for key in missing)
            return f"mode {mode.name!r} skipped: this gateway has no setting {names} (yet)"
        overrides = mode.fallback
    try:
        return replace_settings(settings, overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        return f"mode {mode.name!r} skipped: its settings are not valid here ({problems})"


def corpus_name(paths: Sequence[Path]) -> str:
    """``sample`` (the packaged sample corpus), ``shared-articles`` (../shared/data/articles.json), or
    the file names: the key of the corpus's figures in a baseline."""
    resolved = [path.resolve() for path in paths]
    sample = SAMPLE_CORPUS.resolve()
    if resolved and all(p == sample or p.parent == sample for p in resolved):
        return "sample"
    if (
        len(resolved) == 1
        and resolved[0].name == "articles.json"
        and resolved[0].parent.parent.name == "shared"
    ):
        return "shared-articles"
    return "+".join(path.stem for path in resolved) or "empty"


def questions_file(paths: Sequence[Path]) -> Path | None:
    """A ``QUESTIONS.md`` beside the corpus files (the sample corpus has one), if any."""
    for path in paths:
        candidate = (path if path.is_dir() else path.parent) / QUESTIONS_FILE
        if candidate.is_file():
            return candidate
    return None


@dataclass
class CpuStageTimings(StageTimings):
    """Stage wall times as usual, plus CPU time per stage: the whole process's and the event loop's.

    Questions run one at a time, so the process's CPU time during ``search`` is the search's cost
    (the embedded engine uses worker threads of its own besides the event loop, which searches inline);
    it may include a little of ONNX's thread pool spinning down after the embedding just before.
    """

    cpu_ms: dict[str, float] = field(default_factory=dict)
    thread_cpu_ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        process, thread = time.process_time(), time.thread_time()
        try:
            with super().stage(name):
                yield
        finally:
            self.cpu_ms[name] = round((time.process_time() - process) * 1000, 3)
            self.thread_cpu_ms[name] = round((time.thread_time() - thread) * 1000, 3)


@dataclass
class ModeRun:
    mode: Mode
    settings: Settings
    scores: list[QuestionScore]
    seconds: float


@dataclass
class EvalRun:
    corpus: str
    paths: list[Path]
    k: int
    questions: list[Question]
    ingest: IngestReport
    runs: list[ModeRun]
    skipped: dict[str, str]
    seconds: float


def _progress(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)


async def ask(pipeline: RagPipeline, question: Question, k: int) -> QuestionScore:
    """One question through ``prepare``, scored."""
    outcome = RequestOutcome(timings=CpuStageTimings())
    started = time.process_time()
    sources = []
    try:
        sources = (await pipeline.prepare(question.text, k, outcome)).sources
    except GatewayError as exc:  # recorded, not fatal: the question scores zero and shows as degraded
        outcome.degraded.append(f"error:{exc.error_type}")
    cpu_ms = (time.process_time() - started) * 1000
    timings = outcome.timings
    assert isinstance(timings, CpuStageTimings)
    return QuestionScore.score(
        question_id=question.id,
        kind=question.kind,
        expected_document_ids=question.expected_document_ids,
        expected_author=question.expected_author,
        source_document_ids=[_str_or_none(s.hit.payload.get(DOCUMENT_ID_KEY)) for s in sources],
        source_authors=[_str_or_none(s.hit.payload.get(AUTHOR_NAME_KEY)) for s in sources],
        source_scores=[s.score for s in sources],
        top_rerank_score=getattr(sources[0], "rerank_score", None) if sources else None,
        author_filter=outcome.author,
        search_ms=timings.ms.get("search", 0.0),
        search_cpu_ms=timings.cpu_ms.get("search", 0.0),
        search_thread_cpu_ms=timings.thread_cpu_ms.get("search", 0.0),
        prepare_cpu_ms=round(cpu_ms, 3),
        degraded=outcome.degraded,
    )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


async def _run_mode(
    mode: Mode, settings: Settings, questions: Sequence[Question], k: int, progress: bool
) -> ModeRun:
    started = time.perf_counter()
    async with open_app_state(settings, Metrics()) as state:
        await state.pipeline.prepare("warm up the models", k, RequestOutcome())  # first-call costs
        scores = []
        for n, question in enumerate(questions, start=1):
            scores.append(await ask(state.pipeline, question, k))
            if n % 100 == 0 or n == len(questions):
                _progress(progress, f"eval: {mode.name}: {n}/{len(questions)} questions")
    return ModeRun(mode, settings, scores, time.perf_counter() - started)


def _index_recipe(settings: Settings) -> tuple[str, str, str]:
    return settings.index_dense_text, settings.index_sparse_text, settings.embedding_model_name


def eval_settings(base: Settings, openai_url: str, sagemaker_url: str, qdrant_path: Path) -> Settings:
    """``base`` pointed at the emulators and a fresh local store, with the query caches off."""
    return replace_settings(
        base,
        {
            "openai_base_url": openai_url,
            "openai_api_key": SecretStr("eval-key"),
            "aws_endpoint_url_sagemaker_runtime": sagemaker_url,
            "aws_access_key": SecretStr("eval"),
            "aws_secret_key": SecretStr("eval"),
            "qdrant_url": None,
            "qdrant_path": qdrant_path,
            "query_cache_size": 0,
            "embedding_cache_size": 0,
        },
    )


def run_evaluation(
    paths: Sequence[Path],
    base: Settings,
    modes: Sequence[Mode],
    *,
    k: int = DEFAULT_K,
    progress: bool = False,
    seed_store: Path | None = None,
) -> EvalRun:
    """Build the questions, ingest, start the emulators, and run every mode that exists here.

    ``seed_store``: a local store folder that already holds this corpus (a test's session fixture): it
    is copied instead of starting empty, and the ingest then only confirms every chunk is there.
    Raises ``IngestError`` for unusable input (as ``rag-gateway ingest`` would), ``QuestionSetError``
    when the questions cannot be built.
    """
    from rag_gateway_emulators import EmulatorThread  # a development package, absent from the image

    started = time.perf_counter()
    paths = list(paths)
    documents = load_documents(paths)
    questions = build_questions(documents, questions_file(paths))
    _progress(progress, f"eval: {len(questions)} questions from {len(documents)} documents")
    runs: list[ModeRun] = []
    skipped: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="rag-eval-") as folder,
        EmulatorThread(endpoint_name=base.sagemaker_endpoint_inference) as emulators,
    ):
        base_store = Path(folder) / "qdrant"
        if seed_store is not None:
            copy_store_folder(seed_store, base_store)
        settings = eval_settings(base, emulators.openai_url, emulators.sagemaker_url, base_store)
        report = asyncio.run(ingest_paths(paths, settings, progress=progress))
        _progress(progress, f"eval: {report.summary()}")
        # a mode that changes what the index holds (INDEX_*_TEXT, the embedding model) gets a store of its own
        stores = {_index_recipe(settings): base_store}
        for mode in modes:
            resolved = resolve_mode(mode, settings)
            if isinstance(resolved, str):
                skipped[mode.name] = resolved
                _progress(True, f"eval: {resolved}")
                continue
            recipe = _index_recipe(resolved)
            if recipe not in stores:
                stores[recipe] = Path(folder) / f"qdrant-{len(stores)}"
                resolved = replace_settings(resolved, {"qdrant_path": stores[recipe]})
                extra = asyncio.run(ingest_paths(paths, resolved, progress=progress))
                _progress(progress, f"eval: {mode.name}: {extra.summary()}")
            resolved = replace_settings(resolved, {"qdrant_path": stores[recipe]})
            runs.append(asyncio.run(_run_mode(mode, resolved, questions, k, progress)))
    return EvalRun(
        corpus=corpus_name(paths),
        paths=paths,
        k=k,
        questions=questions,
        ingest=report,
        runs=runs,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
