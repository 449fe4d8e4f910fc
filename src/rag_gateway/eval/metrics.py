"""Retrieval metrics over one question's sources, and their aggregation per kind.

Relevance is binary and by article: a source is relevant when its payload ``document_id`` is one of the
question's expected documents. Rankings come in two forms:

* the *sources* as the pipeline returned them (several chunks of one article may follow each other);
* the *articles*: the distinct ``document_id`` values of the sources, in order of first appearance.

``recall@k`` and ``nDCG@10`` are computed over articles (so two chunks of one wrong article cost one
place, not two); ``MRR`` is the reciprocal position of the first relevant *source* among the first 9.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

RECALL_DEPTHS = (1, 3, 9)
MRR_DEPTH = 9
NDCG_DEPTH = 10
DUPLICATE_DEPTH = 3


def ranked_articles(document_ids: Iterable[str | None]) -> list[str]:
    """The distinct document ids, in order of first appearance (sources without one are skipped)."""
    seen: dict[str, None] = {}
    for document_id in document_ids:
        if document_id is not None:
            seen.setdefault(document_id, None)
    return list(seen)


def first_rank(ranking: Sequence[str | None], expected: Iterable[str]) -> int | None:
    """1-based position of the first expected id in ``ranking``; None when absent."""
    wanted = set(expected)
    for position, item in enumerate(ranking, start=1):
        if item in wanted:
            return position
    return None


def recall_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(source_document_ids: Sequence[str | None], expected: Iterable[str]) -> float:
    """1 / position of the first source from an expected article, within the first ``MRR_DEPTH``."""
    rank = first_rank(source_document_ids[:MRR_DEPTH], expected)
    return 0.0 if rank is None else 1.0 / rank


def ndcg_at(articles: Sequence[str], expected: Iterable[str], k: int = NDCG_DEPTH) -> float:
    """Binary-relevance nDCG over the article ranking; the ideal puts every expected article first."""
    wanted = set(expected)
    if not wanted:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, article in enumerate(articles[:k]) if article in wanted)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(wanted), k)))
    return dcg / ideal


def author_precision(source_authors: Sequence[str | None], expected_author: str) -> float:
    """Share of the sources written by the expected author (case- and space-insensitive); 0 when none."""
    if not source_authors:
        return 0.0
    want = _name(expected_author)
    return sum(1 for a in source_authors if a is not None and _name(a) == want) / len(source_authors)


def author_filter_matches(author_filter: str | None, expected_author: str) -> bool:
    return author_filter is not None and _name(author_filter) == _name(expected_author)


def has_duplicate_article(source_document_ids: Sequence[str | None], depth: int = DUPLICATE_DEPTH) -> bool:
    """Whether the first ``depth`` sources hold two chunks of the same article."""
    top = [d for d in source_document_ids[:depth] if d is not None]
    return len(top) != len(set(top))


def _name(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass(frozen=True, slots=True)
class QuestionScore:
    """One question's outcome under one mode: what came back and how it scores."""

    question_id: str
    kind: str
    answerable: bool
    source_document_ids: tuple[str | None, ...]
    source_authors: tuple[str | None, ...]
    #: The first source's score as the gateway returns it (in hybrid mode a fusion score), and the
    #: reranker's relevance score of that source (the same in dense mode).
    top_score: float | None
    top_rerank_score: float | None
    author_filter: str | None
    expected_author: str | None
    #: 1-based rank of the first expected article among the distinct articles; None: not retrieved.
    article_rank: int | None
    reciprocal_rank: float
    ndcg: float
    search_ms: float
    #: Process CPU time during the search stage, and the event-loop thread's share of it.
    search_cpu_ms: float
    search_thread_cpu_ms: float
    #: Process CPU time of the whole ``prepare`` (the emulators answering self-query and expansion too).
    prepare_cpu_ms: float
    degraded: tuple[str, ...]

    @classmethod
    def score(
        cls,
        *,
        question_id: str,
        kind: str,
        expected_document_ids: Sequence[str],
        expected_author: str | None,
        source_document_ids: Sequence[str | None],
        source_authors: Sequence[str | None],
        source_scores: Sequence[float],
        author_filter: str | None,
        search_ms: float,
        search_cpu_ms: float,
        prepare_cpu_ms: float,
        search_thread_cpu_ms: float = 0.0,
        top_rerank_score: float | None = None,
        degraded: Sequence[str] = (),
    ) -> QuestionScore:
        articles = ranked_articles(source_document_ids)
        return cls(
            question_id=question_id,
            kind=kind,
            answerable=bool(expected_document_ids),
            source_document_ids=tuple(source_document_ids),
            source_authors=tuple(source_authors),
            top_score=source_scores[0] if source_scores else None,
            top_rerank_score=top_rerank_score
            if top_rerank_score is not None
            else (source_scores[0] if source_scores else None),
            author_filter=author_filter,
            expected_author=expected_author,
            article_rank=first_rank(articles, expected_document_ids),
            reciprocal_rank=reciprocal_rank(source_document_ids, expected_document_ids),
            ndcg=ndcg_at(articles, expected_document_ids),
            search_ms=search_ms,
            search_cpu_ms=search_cpu_ms,
            search_thread_cpu_ms=search_thread_cpu_ms,
            prepare_cpu_ms=prepare_cpu_ms,
            degraded=tuple(degraded),
        )


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def summarize(scores: Sequence[QuestionScore]) -> dict[str, Any]:
    """The figures of one group of questions; retrieval figures count answerable questions only."""
    answerable = [s for s in scores if s.answerable]
    with_author = [s for s in scores if s.expected_author is not None]
    summary: dict[str, Any] = {"questions": len(scores)}
    for k in RECALL_DEPTHS:
        summary[f"recall@{k}"] = _mean([recall_at(s.article_rank, k) for s in answerable])
    summary["mrr"] = _mean([s.reciprocal_rank for s in answerable])
    summary[f"ndcg@{NDCG_DEPTH}"] = _mean([s.ndcg for s in answerable])
    summary["author_questions"] = len(with_author)
    summary["author_precision"] = _mean(
        [author_precision(s.source_authors, s.expected_author) for s in with_author if s.expected_author]
    )
    summary["author_filter_accuracy"] = _mean(
        [
            float(author_filter_matches(s.author_filter, s.expected_author))
            for s in with_author
            if s.expected_author
        ]
    )
    summary[f"duplicate_top{DUPLICATE_DEPTH}"] = _mean(
        [float(has_duplicate_article(s.source_document_ids)) for s in scores if s.source_document_ids]
    )
    summary["search_ms"] = _mean([s.search_ms for s in scores])
    summary["search_cpu_ms"] = _mean([s.search_cpu_ms for s in scores])
    summary["search_thread_cpu_ms"] = _mean([s.search_thread_cpu_ms for s in scores])
    summary["prepare_cpu_ms"] = _mean([s.prepare_cpu_ms for s in scores])
    summary["degraded"] = sum(1 for s in scores if s.degraded)
    return summary


def summarize_by_kind(scores: Sequence[QuestionScore], kinds: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One summary per kind present (in ``kinds`` order), then ``overall`` over the answerable ones."""
    out = {kind: summarize([s for s in scores if s.kind == kind]) for kind in kinds}
    out = {kind: summary for kind, summary in out.items() if summary["questions"]}
    out["overall"] = summarize([s for s in scores if s.answerable])
    return out


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(a random positive scores above a random negative), ties counting half; None without both."""
    if not positives or not negatives:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 4)


def _quantiles(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"min": round(ordered[0], 4), "p10": at(0.1), "p50": at(0.5), "p90": at(0.9), "max": at(1.0)}


def score_separation(scores: Sequence[QuestionScore]) -> dict[str, Any]:
    """How the top source's score of unanswerable questions compares with answerable ones.

    ``auroc`` is the chance an answerable question's top score beats an unanswerable one's: 1.0 means a
    score threshold could tell them apart perfectly, 0.5 means the score says nothing. ``rerank_auroc``
    is the same for the reranker's score of the top source (in hybrid mode the returned score is a
    rank-fusion score).
    """
    answerable = [s.top_score for s in scores if s.answerable and s.top_score is not None]
    unanswerable = [s.top_score for s in scores if not s.answerable and s.top_score is not None]
    rerank_answerable = [
        s.top_rerank_score for s in scores if s.answerable and s.top_rerank_score is not None
    ]
    rerank_unanswerable = [
        s.top_rerank_score for s in scores if not s.answerable and s.top_rerank_score is not None
    ]
    return {
        "answerable_top_score": _quantiles(answerable),
        "unanswerable_top_score": _quantiles(unanswerable),
        "auroc": auroc(answerable, unanswerable),
        "rerank_auroc": auroc(rerank_answerable, rerank_unanswerable),
    }
