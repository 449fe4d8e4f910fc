"""The retrieval eval: the question builder, the metrics, the runner on the sample corpus, the CI guard."""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag_gateway.cli.eval import add_eval_arguments, run_eval
from rag_gateway.config import Settings
from rag_gateway.eval.metrics import (
    QuestionScore,
    auroc,
    author_filter_matches,
    author_precision,
    first_rank,
    has_duplicate_article,
    ndcg_at,
    ranked_articles,
    recall_at,
    reciprocal_rank,
    summarize,
    summarize_by_kind,
)
from rag_gateway.eval.questions import (
    UNANSWERABLE,
    CorpusStats,
    QuestionBuilder,
    build_questions,
    tokens,
)
from rag_gateway.eval.report import check, compare, results_document
from rag_gateway.eval.runner import (
    DEFAULT_MODES,
    KNOWN_MODES,
    SAMPLE_CORPUS,
    Mode,
    corpus_name,
    questions_file,
    resolve_mode,
    run_evaluation,
)
from rag_gateway.ingest import ArticleDocument, IngestReport, chunk_article, clean_text, load_documents
from rag_gateway.ingest.documents import Document
from tests.conftest import MODEL_DIR, PROJECT_ROOT, SHARED_DATA

BASELINE = PROJECT_ROOT / "eval-baseline.json"
SHARED_ARTICLES = SHARED_DATA / "articles.json"

# --- a tiny synthetic corpus --------------------------------------------------------------------------

#: Words every article shares (so none of them is rare), used by the subtitles.
SIGN_OFF = (
    "Thanks for reading about simple habits, calm mornings, patient practice, steady hands, quiet evenings, "
    "honest craft, careful work and slow days, keeping things bright and turning them into something "
    "lasting beside the people you trust."
)
TEMPLATES = (
    "Every {a} needs a steady hand, because the {b} can change quickly when nobody is watching it.",
    "Most people learn about the {a} from an older friend who has kept a {b} for many years.",
    "In the early morning the {a} is quiet, and that is the best time to check the {b} with care.",
    "If the {a} looks wrong, it is usually the {b} that needs attention before anything else.",
    "A good {a} is worth the wait, and a patient {b} will always repay the time you give it.",
)
TOPICS: list[dict[str, Any]] = [
    {
        "title": "Keeping Bees in an Apiary",
        "subtitle": "Simple habits for calm mornings beside the apiary",
        "headings": ["Smoking the hive before opening", "Reading the brood frames", "Harvesting propolis"],
        "words": ["apiary", "propolis", "brood", "smoker", "nectar", "swarm", "honeycomb", "beeswax"],
        "author": "Ada Quill",
    },
    {
        "title": "Blowing Glass at the Furnace",
        "subtitle": "Patient practice and steady hands at the furnace",
        "headings": [
            "Gathering molten cullet",
            "Shaping the parison on the marver",
            "Cooling in the annealer",
        ],
        "words": ["furnace", "gaffer", "punty", "parison", "marver", "annealer", "cullet", "blowpipe"],
        "author": "Ada Quill",
    },
    {
        "title": "Tending a Lighthouse Lantern",
        "subtitle": "Quiet evenings and honest craft keeping the lantern bright",
        "headings": ["Trimming the lantern wick", "Polishing the fresnel lens", "Sounding the foghorn"],
        "words": ["lantern", "fresnel", "foghorn", "wick", "beacon", "reef", "gallery", "keeper"],
        "author": "Ben Marsh",
    },
    {
        "title": "Making Cheese with Rennet",
        "subtitle": "Careful work and slow days turning the rennet into something lasting",
        "headings": ["Cutting the curd", "Salting wheels in brine", "Ageing rinds in the cave"],
        "words": ["rennet", "curd", "whey", "brine", "rind", "cave", "cheesecloth", "mould"],
        "author": "Ben Marsh",
    },
]


def _article(n: int, topic: dict[str, Any]) -> dict[str, Any]:
    words = topic["words"]
    sections = ["## Introduction", "This is where the story starts for all of us."]
    for s, heading in enumerate(topic["headings"]):
        sentences = [
            template.format(a=words[(s + i) % len(words)], b=words[(s + i + 3) % len(words)])
            for i, template in enumerate(TEMPLATES)
        ]
        sections += [f"## {heading}", " ".join(sentences)]
    # a heading every article has: not distinctive, so never a heading question
    notes = [template.format(a=words[i], b=words[-1 - i]) for i, template in enumerate(TEMPLATES)]
    sections += ["## Notes from the field", " ".join(notes), "## Conclusion", SIGN_OFF]
    return {
        "_id": f"doc-{n}",
        "content": {"Title": topic["title"], "Subtitle": topic["subtitle"], "Content": "\n\n".join(sections)},
        "platform": "blog",
        "author_id": f"author-{topic['author'].split()[0].lower()}",
        "author_full_name": topic["author"],
        "link": f"https://example.com/{n}",
    }


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return [ArticleDocument.model_validate(_article(n, topic)) for n, topic in enumerate(TOPICS)]


def test_every_kind_is_built_and_labelled(documents: list[Document]) -> None:
    questions = build_questions(documents)
    kinds = {q.kind for q in questions}
    assert kinds == {"title", "heading", "fact", "conceptual", "author", "unanswerable"}
    ids = {d.id for d in documents}
    for question in questions:
        if question.kind == "unanswerable":
            assert question.expected_document_ids == () and not question.answerable
        else:
            assert question.expected_document_ids and set(question.expected_document_ids) <= ids
    assert [q.text for q in questions if q.kind == "unanswerable"] == list(UNANSWERABLE)
    titles = {q.expected_document_ids[0]: q.text for q in questions if q.kind == "title"}
    assert titles == {f"doc-{n}": topic["title"] for n, topic in enumerate(TOPICS)}
    authors = [q for q in questions if q.kind == "author"]
    assert len(authors) == len(TOPICS)
    for question in authors:
        topic = TOPICS[int(question.expected_document_ids[0].split("-")[1])]
        assert question.expected_author == topic["author"]
        assert question.text == f"What did {topic['author']} write about {topic['title']}?"


def test_question_building_is_deterministic(documents: list[Document]) -> None:
    assert build_questions(documents) == build_questions(list(documents))
    assert build_questions(documents) == build_questions(
        [ArticleDocument.model_validate(_article(n, t)) for n, t in enumerate(TOPICS)]
    )


def test_question_building_does_not_depend_on_the_hash_seed() -> None:
    """Ties between equally distinctive sentences break the same way in every process."""
    script = (
        "from rag_gateway.eval.questions import build_questions; from rag_gateway.eval.report import "
        "question_fingerprint; from rag_gateway.eval.runner import SAMPLE_CORPUS, questions_file; "
        "from rag_gateway.ingest import load_documents; d = load_documents([SAMPLE_CORPUS]); "
        "print(question_fingerprint(build_questions(d, questions_file([SAMPLE_CORPUS]))))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(prints) == 1


def test_headings_skip_generic_and_cap_per_article(documents: list[Document]) -> None:
    headings = [q for q in build_questions(documents) if q.kind == "heading"]
    texts = {q.text for q in headings}
    assert not texts & {"Introduction", "Conclusion"}
    all_headings = {h for topic in TOPICS for h in topic["headings"]}
    assert texts <= all_headings
    per_article: dict[str, int] = {}
    for question in headings:
        per_article[question.expected_document_ids[0]] = (
            per_article.get(question.expected_document_ids[0], 0) + 1
        )
    assert set(per_article.values()) == {2}


def test_facts_come_from_beyond_the_first_chunk(documents: list[Document]) -> None:
    facts = [q for q in build_questions(documents) if q.kind == "fact"]
    assert facts
    by_id = {d.id: d for d in documents}
    stats = CorpusStats.from_texts(clean_text(d.text()) for d in documents)
    for question in facts:
        document = by_id[question.expected_document_ids[0]]
        chunks = chunk_article(clean_text(document.text()))
        assert len(chunks) > 1
        needle = " ".join(tokens(question.text))
        assert needle not in " ".join(tokens(chunks[0]))
        assert needle in " ".join(tokens(" ".join(chunks[1:])))
        assert stats.rare_count(question.text) >= 2


def test_conceptual_questions_share_no_rare_word_with_their_article(documents: list[Document]) -> None:
    conceptual = [q for q in build_questions(documents) if q.kind == "conceptual"]
    assert len(conceptual) == len(TOPICS)
    by_id = {d.id: d for d in documents}
    stats = CorpusStats.from_texts(clean_text(d.text()) for d in documents)
    for question in conceptual:
        article_tokens = set(tokens(clean_text(by_id[question.expected_document_ids[0]].text())))
        shared_rare = {t for t in tokens(question.text) if t in article_tokens and stats.is_rare(t)}
        assert not shared_rare, (question.text, shared_rare)
        assert len(question.text.split()) >= 4
    texts = {q.expected_document_ids[0]: q.text for q in conceptual}
    assert texts["doc-0"] == "Simple habits for calm mornings beside the"  # "apiary" is taken out


def test_a_conceptual_question_many_articles_would_yield_is_dropped() -> None:
    same = [dict(topic, subtitle="Simple habits for calm mornings") for topic in TOPICS]
    documents = [ArticleDocument.model_validate(_article(n, topic)) for n, topic in enumerate(same)]
    builder = QuestionBuilder(documents)
    # each article falls back to its first prose sentences, never to the shared subtitle
    assert all(q.text != "Simple habits for calm mornings" for q in builder.conceptual_questions())


def test_the_sample_corpus_brings_its_own_labelled_questions() -> None:
    documents = load_documents([SAMPLE_CORPUS])
    path = questions_file([SAMPLE_CORPUS])
    assert path is not None
    sample = [q for q in build_questions(documents, path) if q.kind == "sample"]
    assert len(sample) == 6
    assert [q.expected_author for q in sample] == [
        "Tomas Berg",
        "Maria Rivera",
        "Tomas Berg",
        None,
        None,
        None,
    ]
    titles = {d.id: d.title for d in documents}
    assert titles[sample[0].expected_document_ids[0]] == "Chunking Articles by Sentence"
    assert corpus_name([SAMPLE_CORPUS]) == "sample"
    assert corpus_name([Path("../shared/data/articles.json")]) == "shared-articles"


# --- metrics on hand-made rankings ---------------------------------------------------------------------


def test_rankings_by_article() -> None:
    sources = ["a", "a", "b", None, "c", "b"]
    assert ranked_articles(sources) == ["a", "b", "c"]
    assert first_rank(ranked_articles(sources), {"c"}) == 3
    assert first_rank(sources, {"z"}) is None
    assert [recall_at(3, k) for k in (1, 3, 9)] == [0.0, 1.0, 1.0]
    assert recall_at(None, 9) == 0.0


def test_mrr_counts_sources_up_to_nine() -> None:
    assert reciprocal_rank(["x", "a"], {"a"}) == 0.5
    assert reciprocal_rank(["a"], {"a", "b"}) == 1.0
    assert reciprocal_rank(["x"] * 8 + ["a"], {"a"}) == pytest.approx(1 / 9)
    assert reciprocal_rank(["x"] * 9 + ["a"], {"a"}) == 0.0


def test_ndcg_by_article() -> None:
    assert ndcg_at(["a", "b"], {"a"}) == 1.0
    assert ndcg_at(["x", "a"], {"a"}) == pytest.approx(1 / 1.5849625)
    assert ndcg_at(["b", "a"], {"a", "b"}) == 1.0
    assert ndcg_at(["a", "x", "b"], {"a", "b"}) == pytest.approx((1 + 0.5) / (1 + 1 / 1.5849625))
    assert ndcg_at(["x"] * 10 + ["a"], {"a"}) == 0.0
    assert ndcg_at(["a"], set()) == 0.0


def test_author_precision_and_filter() -> None:
    assert author_precision(["Ada Quill", "ada  quill", "Ben Marsh"], "Ada Quill") == pytest.approx(2 / 3)
    assert author_precision([], "Ada Quill") == 0.0
    assert author_filter_matches("ADA QUILL", "Ada Quill")
    assert not author_filter_matches(None, "Ada Quill")


def test_duplicate_article_in_top_three() -> None:
    assert has_duplicate_article(["a", "b", "a", "c"])
    assert not has_duplicate_article(["a", "b", "c", "a"])
    assert not has_duplicate_article(["a"])


def _score(qid: str, kind: str, sources: list[str], expected: tuple[str, ...], **kw: Any) -> QuestionScore:
    values: dict[str, Any] = {
        "question_id": qid,
        "kind": kind,
        "expected_document_ids": expected,
        "expected_author": None,
        "source_document_ids": sources,
        "source_authors": ["Ada Quill"] * len(sources),
        "source_scores": [0.5] * len(sources),
        "author_filter": None,
        "search_ms": 2.0,
        "search_cpu_ms": 1.0,
        "prepare_cpu_ms": 5.0,
    }
    values.update(kw)
    return QuestionScore.score(**values)


def test_summaries_per_kind_leave_unanswerable_out_of_overall() -> None:
    scores = [
        _score("t1", "title", ["a", "b"], ("a",)),
        _score("t2", "title", ["b", "b", "c", "a"], ("a",)),
        _score("f1", "fact", ["x"], ("a",)),
        _score("a1", "author", ["a"], ("a",), expected_author="Ada Quill", author_filter="Ada Quill"),
        _score("u1", "unanswerable", ["a", "b"], (), source_scores=[0.1, 0.05]),
    ]
    summary = summarize_by_kind(scores, ["title", "fact", "author", "unanswerable"])
    assert list(summary) == ["title", "fact", "author", "unanswerable", "overall"]
    assert summary["title"]["questions"] == 2
    assert summary["title"]["recall@1"] == 0.5
    assert summary["title"]["recall@3"] == 1.0  # articles b, c, a: a is third
    assert summary["title"]["mrr"] == pytest.approx((1 + 1 / 4) / 2)
    assert summary["title"]["duplicate_top3"] == 0.5
    assert summary["overall"]["questions"] == 4
    assert summary["overall"]["recall@9"] == 0.75
    assert summary["overall"]["author_filter_accuracy"] == 1.0
    assert summary["overall"]["author_precision"] == 1.0
    assert summary["unanswerable"]["recall@1"] is None
    assert summarize([])["questions"] == 0


def test_auroc() -> None:
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.1], [0.9]) == 0.0
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([], [0.1]) is None


def test_wins_and_losses_between_two_modes() -> None:
    def question(qid: str, dense: int | None, hybrid: int | None) -> dict[str, Any]:
        return {
            "id": qid,
            "kind": "fact",
            "expected_document_ids": ["a"],
            "modes": {"dense": {"article_rank": dense}, "hybrid": {"article_rank": hybrid}},
        }

    results = {
        "questions": [
            question("q1", None, 1),
            question("q2", 1, 2),
            question("q3", 2, 2),
            {"id": "u", "kind": "unanswerable", "expected_document_ids": [], "modes": {}},
        ]
    }
    comparison = compare(results, "dense", "hybrid")
    assert [e["id"] for e in comparison["wins"]] == ["q1"]
    assert [e["id"] for e in comparison["losses"]] == ["q2"]
    assert comparison["ties"] == 1
    assert comparison["by_kind"] == {"fact": {"wins": 1, "losses": 1}}


# --- modes ---------------------------------------------------------------------------------------------


def test_a_mode_whose_setting_does_not_exist_is_skipped_with_the_reason() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    missing = resolve_mode(Mode("future", {"no_such_setting": "x"}), settings)
    assert isinstance(missing, str) and "NO_SUCH_SETTING" in missing
    invalid = resolve_mode(Mode("bad", {"search_limit_per_query": "0"}), settings)
    assert isinstance(invalid, str) and "SEARCH_LIMIT_PER_QUERY" in invalid
    wide = resolve_mode(Mode("wide", {"search_limit_per_query": "9"}), settings)
    assert isinstance(wide, Settings) and wide.search_limit_per_query == 9
    dense = resolve_mode(KNOWN_MODES["dense"], settings)
    assert isinstance(dense, Settings)  # today's gateway is dense, with or without RETRIEVAL_MODE


# --- the whole eval ------------------------------------------------------------------------------------


def _eval(argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    if not (MODEL_DIR / "tokenizer.json").exists():
        pytest.fail(f"offline model files missing in {MODEL_DIR}: run `make install`")
    monkeypatch.chdir(tmp_path)  # no .env; eval-results.json lands here
    monkeypatch.setenv("EMBEDDING_TOKENIZER_DIR", str(MODEL_DIR))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser()
    add_eval_arguments(parser)
    code = run_eval(parser.parse_args([*argv, "--quiet", "--output", str(tmp_path / "results.json")]))
    return code, json.loads((tmp_path / "results.json").read_text())


def _raised(baseline: dict[str, Any], corpus: str, by: float) -> dict[str, Any]:
    higher = copy.deepcopy(baseline)
    for figures in higher["corpora"][corpus]["modes"].values():
        figures["recall@3"] += by
        figures["mrr"] += by
    return higher


def test_eval_on_the_sample_corpus_passes_the_guard_and_fails_a_higher_baseline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = json.loads(BASELINE.read_text())
    higher = tmp_path / "higher-baseline.json"
    higher.write_text(json.dumps(_raised(baseline, "sample", 0.05)))

    code, results = _eval(
        [str(SAMPLE_CORPUS), "--modes", "dense,hybrid", "--check", str(higher)], monkeypatch, tmp_path
    )

    out = capsys.readouterr().out
    assert code == 1, out
    assert "REGRESSION" in out
    assert results["corpus"] == "sample"
    assert "dense" in results["modes"]
    if "retrieval_mode" not in Settings.model_fields:
        assert "RETRIEVAL_MODE" in results["skipped_modes"]["hybrid"]
    kinds = results["question_set"]["by_kind"]
    assert kinds["sample"] == 6 and kinds["unanswerable"] == len(UNANSWERABLE)
    overall = results["modes"]["dense"]["summary"]["overall"]
    assert overall["degraded"] == 0
    assert overall["questions"] == results["question_set"]["questions"] - len(UNANSWERABLE)
    assert results["modes"]["dense"]["summary"]["sample"]["recall@1"] == 1.0  # QUESTIONS.md's promise
    assert "| **overall** |" in out
    # the same run against the committed baseline: the guard passes
    ok, lines = check(results, baseline, baseline.get("tolerance", 0.02))
    assert ok, lines


@pytest.mark.shared_data
def test_eval_on_the_real_articles_passes_the_guard(
    shared_articles_ingest: tuple[Path, IngestReport], model_settings: Settings
) -> None:
    """The real articles (skipped when ../shared/data is absent): starts from the session's ingest."""
    store, _ = shared_articles_ingest
    modes = [KNOWN_MODES[name] for name in DEFAULT_MODES]
    run = run_evaluation([SHARED_ARTICLES], model_settings, modes, seed_store=store)
    results = results_document(run)
    assert results["corpus"] == "shared-articles"
    assert results["question_set"]["questions"] >= 300
    assert run.ingest.new == 0  # the seeded store already held every chunk
    assert all(mode["summary"]["overall"]["degraded"] == 0 for mode in results["modes"].values())
    baseline = json.loads(BASELINE.read_text())
    ok, lines = check(results, baseline, baseline.get("tolerance", 0.02))
    assert ok, lines
