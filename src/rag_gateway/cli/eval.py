"""``rag-gateway eval``: measure retrieval quality on a labelled question set built from the corpus.

Ingests the corpus into a temporary store, runs every question through the real retrieval path (with the
emulators standing in for OpenAI and SageMaker), writes ``eval-results.json`` and prints markdown tables.
``--check BASELINE`` makes it a CI guard: exit 1 when overall recall@3 or MRR of a mode the baseline
records fell more than ``--tolerance`` below it. See :mod:`rag_gateway.eval`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rag_gateway.cli.arguments import positive_int
from rag_gateway.config import Settings

EXIT_REGRESSION = 1
EXIT_USAGE = 2
SHARED_ARTICLES = Path("../shared/data/articles.json")


def default_paths() -> list[Path]:
    """The real articles when ../shared/data is there (as ``make ingest``), else the sample corpus."""
    from rag_gateway.eval.runner import SAMPLE_CORPUS

    return [SHARED_ARTICLES] if SHARED_ARTICLES.is_file() else [SAMPLE_CORPUS]


def _mode_definition(text: str) -> tuple[str, dict[str, str]]:
    name, sep, assignments = text.partition(":")
    overrides = {}
    for assignment in filter(None, assignments.split(",")):
        key, eq, value = assignment.partition("=")
        if not eq or not key.strip():
            raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE[,KEY=VALUE...], got {text!r}")
        overrides[key.strip().lower()] = value.strip()
    if not sep or not name.strip() or not overrides:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE[,KEY=VALUE...], got {text!r}")
    return name.strip(), overrides


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Measure retrieval quality: build labelled questions from the corpus (titles, headings, facts, "
        "paraphrases, author-scoped, unanswerable), ingest it into a temporary store, run each question "
        "through the gateway's retrieval (emulated OpenAI, no LLM call) per mode, and report recall@1/3/9, "
        "MRR, nDCG@10, author precision and search cost."
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help=f"corpus files or directories (default: {SHARED_ARTICLES} if present, else the sample corpus)",
    )
    parser.add_argument(
        "--modes",
        default="dense,hybrid",
        help="comma-separated retrieval modes to compare, the first as the reference of wins/losses "
        "(known: dense, hybrid; default: %(default)s); a mode this gateway lacks is skipped",
    )
    parser.add_argument(
        "--define-mode",
        action="append",
        default=[],
        type=_mode_definition,
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="a mode made of settings overrides, e.g. wide:search_limit_per_query=10 (then use --modes)",
    )
    parser.add_argument(
        "-k", type=positive_int, default=None, help="sources asked per question (default: 10)"
    )
    parser.add_argument(
        "--output", type=Path, default=Path("eval-results.json"), help="results file (default: %(default)s)"
    )
    parser.add_argument("--check", type=Path, metavar="BASELINE", help="fail on a regression vs BASELINE")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="allowed drop of recall@3 and MRR (default: the baseline's, else 0.02)",
    )
    parser.add_argument(
        "--write-baseline",
        type=Path,
        metavar="BASELINE",
        help="record this run's figures in BASELINE (under this corpus; other corpora are kept)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run_eval(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from rag_gateway.eval.questions import QuestionSetError
    from rag_gateway.eval.report import (
        DEFAULT_TOLERANCE,
        BaselineError,
        check,
        load_baseline,
        markdown,
        results_document,
        write_baseline,
    )
    from rag_gateway.eval.runner import DEFAULT_K, KNOWN_MODES, Mode, run_evaluation
    from rag_gateway.ingest import IngestError

    try:
        from rag_gateway_emulators import EmulatorThread  # noqa: F401  (a development package)
    except ImportError:
        print(
            "rag-gateway eval: the emulators are not installed here; run it from a source checkout "
            "after `make install`.",
            file=sys.stderr,
        )
        return EXIT_USAGE

    known = dict(KNOWN_MODES)
    for name, overrides in args.define_mode:
        known[name] = Mode(name, overrides)
    names = [name.strip() for name in args.modes.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        print(
            f"rag-gateway eval: unknown mode(s) {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(known)} (or define one with --define-mode)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    baseline = None
    if args.check is not None:
        try:
            baseline = load_baseline(args.check)
        except BaselineError as exc:
            print(f"rag-gateway eval: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"rag-gateway eval: invalid settings:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    gateway_logger = logging.getLogger("rag_gateway")
    level = gateway_logger.level
    gateway_logger.setLevel(logging.WARNING)  # hundreds of questions: no per-step info lines

    paths = list(args.paths) or default_paths()
    try:
        run = run_evaluation(
            paths,
            settings,
            [known[name] for name in names],
            k=args.k or DEFAULT_K,
            progress=not args.quiet,
        )
    except (IngestError, QuestionSetError) as exc:
        print(f"rag-gateway eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        gateway_logger.setLevel(level)
    results = results_document(run)
    args.output.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(markdown(results))
    print(
        f"\n{results['question_set']['questions']} questions, ingest {results['seconds']['ingest']} s, "
        f"total {results['seconds']['total']} s; per-question results in {args.output}"
    )
    degraded = sum(m["summary"]["overall"]["degraded"] for m in results["modes"].values())
    if degraded:
        print(f"warning: {degraded} question(s) ran degraded (see `degraded` in {args.output})")
    if args.write_baseline is not None:
        write_baseline(args.write_baseline, results)
        print(f"baseline for corpus {results['corpus']!r} recorded in {args.write_baseline}")
    if baseline is None:
        return 0
    tolerance = args.tolerance if args.tolerance is not None else baseline.get("tolerance", DEFAULT_TOLERANCE)
    try:
        ok, lines = check(results, baseline, float(tolerance))
    except BaselineError as exc:
        print(f"rag-gateway eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"\nCheck against {args.check} (tolerance {tolerance}):")
    for line in lines:
        print(f"  {line}")
    if not ok:
        print("rag-gateway eval: retrieval quality regressed", file=sys.stderr)
        return EXIT_REGRESSION
    return 0
