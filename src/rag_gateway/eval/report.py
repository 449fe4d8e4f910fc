"""The eval's outputs: the results document, the markdown tables, wins/losses and the baseline guard.

Everything here works on the JSON-able results document (``results_document``), so a saved
``eval-results.json`` can be re-rendered or checked without re-running anything.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_gateway.eval.metrics import NDCG_DEPTH, ranked_articles, score_separation, summarize_by_kind
from rag_gateway.eval.questions import KINDS, Question
from rag_gateway.eval.runner import RETRIEVAL_SETTINGS, EvalRun

#: The overall figures the guard compares with the baseline.
GUARDED_METRICS = ("recall@3", "mrr")
DEFAULT_TOLERANCE = 0.02
#: Figures recorded in a baseline per mode (overall, and recall@3/MRR per kind).
BASELINE_METRICS = ("recall@1", "recall@3", "recall@9", "mrr", f"ndcg@{NDCG_DEPTH}")
EXAMPLES_SHOWN = 8


def question_fingerprint(questions: Sequence[Question]) -> str:
    """A short hash of the question set: equal fingerprints mean figures are directly comparable."""
    payload = [[q.id, q.kind, q.text, list(q.expected_document_ids), q.expected_author] for q in questions]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def results_document(run: EvalRun) -> dict[str, Any]:
    """The whole run as one JSON-able document (written to ``eval-results.json``)."""
    modes: dict[str, Any] = {}
    for mode_run in run.runs:
        modes[mode_run.mode.name] = {
            "overrides": dict(mode_run.mode.overrides),
            "settings": {
                key: _jsonable(getattr(mode_run.settings, key))
                for key in RETRIEVAL_SETTINGS
                if hasattr(mode_run.settings, key)
            },
            "seconds": round(mode_run.seconds, 1),
            "summary": summarize_by_kind(mode_run.scores, KINDS),
            "score_separation": score_separation(mode_run.scores),
        }
    by_id = {mode_run.mode.name: {s.question_id: s for s in mode_run.scores} for mode_run in run.runs}
    questions = []
    for question in run.questions:
        per_mode = {}
        for name, scores in by_id.items():
            s = scores[question.id]
            per_mode[name] = {
                "article_rank": s.article_rank,
                "reciprocal_rank": round(s.reciprocal_rank, 4),
                "ndcg": round(s.ndcg, 4),
                "top_score": None if s.top_score is None else round(s.top_score, 4),
                "top_rerank_score": None if s.top_rerank_score is None else round(s.top_rerank_score, 4),
                "author_filter": s.author_filter,
                "articles": ranked_articles(s.source_document_ids),
                "search_ms": s.search_ms,
                "search_cpu_ms": s.search_cpu_ms,
                "search_thread_cpu_ms": s.search_thread_cpu_ms,
                "prepare_cpu_ms": s.prepare_cpu_ms,
                "degraded": list(s.degraded),
            }
        questions.append(
            {
                "id": question.id,
                "kind": question.kind,
                "text": question.text,
                "expected_document_ids": list(question.expected_document_ids),
                "expected_author": question.expected_author,
                "modes": per_mode,
            }
        )
    document: dict[str, Any] = {
        "corpus": run.corpus,
        "paths": [str(path) for path in run.paths],
        "k": run.k,
        "question_set": {
            "questions": len(run.questions),
            "by_kind": dict(Counter(q.kind for q in run.questions)),
            "fingerprint": question_fingerprint(run.questions),
        },
        "ingest": {"documents": run.ingest.documents, "chunks": run.ingest.chunks},
        "seconds": {"ingest": round(run.ingest.seconds, 1), "total": round(run.seconds, 1)},
        "modes": modes,
        "skipped_modes": run.skipped,
        "questions": questions,
    }
    names = list(modes)
    if len(names) >= 2:
        document["comparison"] = compare(document, names[0], names[1])
    return document


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _rank_key(rank: int | None) -> float:
    return float("inf") if rank is None else float(rank)


def compare(results: dict[str, Any], first: str, second: str) -> dict[str, Any]:
    """Questions where ``second`` ranks the expected article higher (wins) or lower (losses)."""
    wins, losses = [], []
    ties = 0
    for question in results["questions"]:
        if not question["expected_document_ids"]:
            continue
        a = question["modes"][first]["article_rank"]
        b = question["modes"][second]["article_rank"]
        entry = {"id": question["id"], "kind": question["kind"], first: a, second: b}
        if _rank_key(b) < _rank_key(a):
            wins.append(entry)
        elif _rank_key(b) > _rank_key(a):
            losses.append(entry)
        else:
            ties += 1

    def gain(entry: dict[str, Any]) -> float:
        return abs(1 / _rank_key(entry[first]) - 1 / _rank_key(entry[second]))

    wins.sort(key=lambda e: (-gain(e), e["id"]))
    losses.sort(key=lambda e: (-gain(e), e["id"]))
    kinds = sorted({e["kind"] for e in wins + losses}, key=KINDS.index)
    return {
        "modes": [first, second],
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "by_kind": {
            kind: {
                "wins": sum(1 for e in wins if e["kind"] == kind),
                "losses": sum(1 for e in losses if e["kind"] == kind),
            }
            for kind in kinds
        },
    }


# --- markdown --------------------------------------------------------------------------------------

_COLUMNS = (
    ("R@1", "recall@1", 3),
    ("R@3", "recall@3", 3),
    ("R@9", "recall@9", 3),
    ("MRR", "mrr", 3),
    (f"nDCG@{NDCG_DEPTH}", f"ndcg@{NDCG_DEPTH}", 3),
    ("dup@3", "duplicate_top3", 3),
    ("search ms", "search_ms", 2),
    ("search CPU ms", "search_cpu_ms", 2),
)


def _cell(value: Any, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(results: dict[str, Any]) -> str:
    """The README-ready tables: quality per kind (modes side by side), author scoping, unanswerable."""
    names = list(results["modes"])
    question_set = results["question_set"]
    lines = [
        f"Retrieval eval: corpus `{results['corpus']}`, {question_set['questions']} questions, "
        f"k={results['k']} sources per question",
        "",
    ]
    for name, reason in results.get("skipped_modes", {}).items():
        lines.append(f"- {name}: {reason}")
    if not names:
        return "\n".join([*lines, "", "No mode ran."])
    if results.get("skipped_modes"):
        lines.append("")
    header = ["kind", "n"]
    for label, _, _ in _COLUMNS:
        header.extend(label if len(names) == 1 else f"{label} {name}" for name in names)
    lines += [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    first = results["modes"][names[0]]["summary"]
    for kind in first:
        cells = [f"**{kind}**" if kind == "overall" else kind, str(first[kind]["questions"])]
        for _, key, digits in _COLUMNS:
            cells.extend(_cell(results["modes"][name]["summary"][kind].get(key), digits) for name in names)
        lines.append(_row(cells))
    lines += [
        "",
        "R@k: the expected article among the first k distinct articles of the sources; MRR: 1/position of "
        "its first source (up to 9); nDCG@10 by article; dup@3: questions whose top 3 sources repeat an "
        "article; search ms / CPU ms: the search stage's wall time / process CPU time per question (mean). "
        "`overall` leaves out the unanswerable questions.",
        "",
        _row(["mode", "author questions", "author filter = expected", "author precision"]),
        _row(["---", "---:", "---:", "---:"]),
    ]
    for name in names:
        overall = results["modes"][name]["summary"]["overall"]
        lines.append(
            _row(
                [
                    name,
                    str(overall["author_questions"]),
                    _cell(overall["author_filter_accuracy"], 3),
                    _cell(overall["author_precision"], 3),
                ]
            )
        )
    lines += [
        "",
        _row(
            [
                "mode",
                "top score, unanswerable p50 (p90)",
                "top score, answerable p50 (p10)",
                "AUROC",
                "AUROC of the rerank score",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:"]),
    ]
    for name in names:
        separation = results["modes"][name]["score_separation"]
        un, an = separation["unanswerable_top_score"], separation["answerable_top_score"]
        lines.append(
            _row(
                [
                    name,
                    "–" if un is None else f"{un['p50']:.3f} ({un['p90']:.3f})",
                    "–" if an is None else f"{an['p50']:.3f} ({an['p10']:.3f})",
                    _cell(separation["auroc"], 3),
                    _cell(separation.get("rerank_auroc"), 3),
                ]
            )
        )
    comparison = results.get("comparison")
    if comparison:
        lines += ["", *_comparison_lines(results, comparison)]
    return "\n".join(lines)


def _comparison_lines(results: dict[str, Any], comparison: dict[str, Any]) -> list[str]:
    first, second = comparison["modes"]
    wins, losses = comparison["wins"], comparison["losses"]
    lines = [
        f"{second} vs {first}: the expected article ranks higher on {len(wins)} questions, lower on "
        f"{len(losses)}, the same on {comparison['ties']}.",
        "",
    ]
    if comparison["by_kind"]:
        lines += [_row(["kind", "wins", "losses"]), _row(["---", "---:", "---:"])]
        lines += [_row([k, str(v["wins"]), str(v["losses"])]) for k, v in comparison["by_kind"].items()]
        lines.append("")
    texts = {q["id"]: q["text"] for q in results["questions"]}
    for title, entries in (("wins", wins), ("losses", losses)):
        if entries:
            lines.append(f"Largest {title} ({second} rank vs {first} rank):")
            for e in entries[:EXAMPLES_SHOWN]:
                text = texts[e["id"]]
                text = text if len(text) <= 80 else text[:77] + "..."
                lines.append(f"- {e['kind']}: {_rank(e[second])} vs {_rank(e[first])}: {text}")
    return lines


def _rank(rank: int | None) -> str:
    return "-" if rank is None else str(rank)


# --- baseline --------------------------------------------------------------------------------------


def baseline_entry(results: dict[str, Any]) -> dict[str, Any]:
    """What a baseline records for the corpus this run used."""
    modes = {}
    for name, mode in results["modes"].items():
        summary = mode["summary"]
        figures: dict[str, Any] = {key: summary["overall"][key] for key in BASELINE_METRICS}
        figures["by_kind"] = {
            kind: {"questions": s["questions"], "recall@3": s["recall@3"], "mrr": s["mrr"]}
            for kind, s in summary.items()
            if kind != "overall" and s["recall@3"] is not None
        }
        figures["settings"] = mode["settings"]
        modes[name] = figures
    return {
        "k": results["k"],
        "questions": results["question_set"]["questions"],
        "question_fingerprint": results["question_set"]["fingerprint"],
        "modes": modes,
    }


def write_baseline(path: Path, results: dict[str, Any]) -> None:
    """Record this run's figures in ``path`` under its corpus, keeping other corpora and modes."""
    baseline: dict[str, Any] = {}
    if path.is_file():
        baseline = json.loads(path.read_text(encoding="utf-8"))
    baseline.setdefault(
        "about",
        "Recorded by `rag-gateway eval --write-baseline`; `rag-gateway eval --check` fails when overall "
        "recall@3 or MRR of a recorded mode drops more than the tolerance below these figures.",
    )
    baseline.setdefault("tolerance", DEFAULT_TOLERANCE)
    corpora = baseline.setdefault("corpora", {})
    entry = baseline_entry(results)
    previous = corpora.get(results["corpus"], {})
    modes = {**previous.get("modes", {}), **entry["modes"]}
    corpora[results["corpus"]] = {**entry, "modes": modes}
    path.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")


class BaselineError(ValueError):
    """The baseline cannot be used for this run (unreadable, or no figures for this corpus)."""


def check(results: dict[str, Any], baseline: dict[str, Any], tolerance: float) -> tuple[bool, list[str]]:
    """Whether no guarded figure fell more than ``tolerance`` below the baseline; and what was found."""
    corpus = results["corpus"]
    recorded = baseline.get("corpora", {}).get(corpus)
    if recorded is None:
        known = ", ".join(sorted(baseline.get("corpora", {}))) or "none"
        raise BaselineError(f"the baseline has no figures for corpus {corpus!r} (it has: {known})")
    lines: list[str] = []
    if recorded.get("question_fingerprint") != results["question_set"]["fingerprint"]:
        lines.append(
            f"note: the question set differs from the baseline's ({recorded.get('questions')} -> "
            f"{results['question_set']['questions']} questions): figures are not strictly comparable"
        )
    if recorded.get("k") != results["k"]:
        lines.append(f"note: the baseline used k={recorded.get('k')}, this run k={results['k']}")
    ok = True
    compared = 0
    for name, figures in recorded.get("modes", {}).items():
        if name not in results["modes"]:
            lines.append(f"{name}: not run here, not checked")
            continue
        overall = results["modes"][name]["summary"]["overall"]
        for metric in GUARDED_METRICS:
            was, now = figures.get(metric), overall.get(metric)
            if was is None or now is None:
                continue
            compared += 1
            delta = now - was
            if delta < -tolerance:
                ok = False
                verdict = f"REGRESSION (more than {tolerance} below)"
            elif delta > tolerance:
                verdict = "better: consider recording a new baseline"
            else:
                verdict = "ok"
            lines.append(f"{name} {metric}: {now:.4f} vs baseline {was:.4f} ({delta:+.4f}) {verdict}")
    if not compared:
        lines.append("nothing compared: no mode of the baseline ran here")
    return ok, lines


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BaselineError(f"cannot read the baseline {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: expected a JSON object")
    return data
