"""Ingestion: loading and validation, cleaning, chunking, the pipeline against a local Qdrant, and the CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge as edge

from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.ingest import (
    ArticleDocument,
    DocumentKind,
    IngestError,
    IngestReport,
    PostDocument,
    RepositoryDocument,
    add_ingest_arguments,
    chunk_article,
    chunk_id,
    chunk_text,
    clean_text,
    ingest_paths,
    load_documents,
    run_ingest,
    split_sentences,
)
from rag_gateway.ingest.chunking import chunk_post, chunk_repository
from rag_gateway.rag.retrieval.stores.edge import EdgeStore

PROJECT_ROOT = Path(__file__).parents[2]
TOKENIZER_DIR = PROJECT_ROOT / "models" / "all-MiniLM-L6-v2"
SHARED_ARTICLES = PROJECT_ROOT.parent / "shared" / "data" / "articles.json"

needs_model = pytest.mark.skipif(
    not (TOKENIZER_DIR / "tokenizer.json").is_file(),
    reason=f"embedding tokenizer files not in {TOKENIZER_DIR} (run `make install`)",
)

AUTHOR = {"author_id": "a-1", "author_full_name": "Paul Iusztin"}


# --- helpers ----------------------------------------------------------------------------------------------


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def make_settings(qdrant_path: Path) -> Settings:
    return Settings(qdrant_path=qdrant_path, qdrant_url=None, embedding_tokenizer_dir=TOKENIZER_DIR)


def article_text(n_sentences: int, seed: str = "s") -> str:
    """Prose of varied sentence lengths (45-190 characters), each sentence distinct."""
    sentences = []
    for i in range(n_sentences):
        filler = " ".join(f"{seed}{i}word{j}" for j in range(3 + (i * 7) % 17))
        end = "?!."[i % 3]
        sentences.append(f"Sentence {i} about feature pipelines {filler}{end}")
    return " ".join(sentences)


def article(doc_id: str, body: str, **extra: Any) -> dict[str, Any]:
    return {
        "_id": doc_id,
        "content": {"Title": f"Title {doc_id}", "Subtitle": None, "Content": body, "language": "en"},
        "platform": "medium",
        "link": f"https://medium.com/{doc_id}",
        **AUTHOR,
        **extra,
    }


def post(doc_id: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"_id": doc_id, "content": content, "platform": "linkedin", **AUTHOR, **extra}


def repository(doc_id: str, files: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "_id": doc_id,
        "name": f"repo-{doc_id}",
        "link": f"https://github.com/x/{doc_id}",
        "content": files,
        "platform": "github",
        **AUTHOR,
        **extra,
    }


def read_points(qdrant_path: Path, collection: str) -> list[Any]:
    """Every point of a collection, read by opening its shard briefly (one process at a time)."""
    if not (qdrant_path / collection).is_dir():
        return []
    shard = edge.EdgeShard.load(str(qdrant_path / collection))
    try:
        points, _ = shard.scroll(
            edge.ScrollRequest(limit=100_000, with_payload=True, with_vector=True, filter=None, offset=None)
        )
        return list(points)
    finally:
        shard.close()


def counts(qdrant_path: Path) -> dict[str, int]:
    if not qdrant_path.exists():
        return {}
    found = {}
    for shard_dir in sorted(p for p in qdrant_path.iterdir() if (p / "edge_config.json").is_file()):
        shard = edge.EdgeShard.load(str(shard_dir))
        try:
            found[shard_dir.name] = shard.count(edge.CountRequest(exact=True))
        finally:
            shard.close()
    return found


def unique_words(n: int, lengths: tuple[int, ...] = (1, 4, 9, 2, 14, 6)) -> list[str]:
    """Distinct words (w0..., w1...) so every chunk can be located in the source; some end sentences."""
    words = []
    for i in range(n):
        word = f"w{i}" + "x" * lengths[i % len(lengths)]
        words.append(word + ("." if i % 11 == 10 else ""))
    return words


def locate(words: list[str], chunk: str) -> tuple[int, int]:
    """(first, stop) word positions of a chunk in the source words; it must be a contiguous run."""
    chunk_words = chunk.split()
    first = words.index(chunk_words[0])
    assert words[first : first + len(chunk_words)] == chunk_words, "chunk is not a contiguous run of words"
    return first, first + len(chunk_words)


# --- cleaning ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # markdown links keep their text, lose the URL; images vanish
        ("Read [the guide](https://example.com/guide_(v2)?x=1) now.", "Read the guide now."),
        ("![architecture](https://cdn.substack.com/a.png)\nThe feature pipeline.", "The feature pipeline."),
        ("See https://github.com/decodingml/llm-twin-course and www.qdrant.tech today.", "See and today."),
        # emoji, arrows and stars are symbols, not words
        (
            "🔗 Check out the code on GitHub [1] and support us with a ⭐️ ↓↓↓",
            "Check out the code on GitHub 1 and support us with a",
        ),
        # Unicode "bold" and "italic" letters fold to ASCII
        ("𝗠𝗟𝗢𝗽𝘀 𝗺𝗮𝘁𝘂𝗿𝗶𝘁𝘆 at 𝟭𝟬𝟬% 𝘐𝘵𝘢𝘭𝘪𝘤", "MLOps maturity at 100% Italic"),
        # zero-width characters and soft hyphens disappear inside words
        ("zero\u200bwidth co\u00adoperate \ufeffstart", "zerowidth cooperate start"),
        # curly quotes and dashes become ASCII; contractions survive
        ("It\u2019s \u201cproduction\u201d \u2014 don\u2019t wait", "It's \"production\" - don't wait"),
        # markdown escapes, bullets, headings, emphasis
        (
            "### **This week's topics:**\n\n  * Pick the right vector DB\n\n\\- low latency",
            "This week's topics: Pick the right vector DB low latency",
        ),
        ("𝟭\\. 𝗗𝗼𝗰𝘂𝗺𝗲𝗻𝘁𝗮𝘁𝗶𝗼𝗻: project", "1. Documentation: project"),
        (
            "_Hello there, I am Paul_ and __bold__ and snake_case_name",
            "Hello there, I am Paul and bold and snake_case_name",
        ),
        # HTML tags go, their text stays
        ("a <b>bold</b> claim<br/>next", "a bold claim next"),
        # the Handbook's rule: other symbols become spaces, whitespace collapses
        ("a | b ~ c ^ d\t\t\n\n e", "a b c d e"),
        # words broken at a hard wrap are joined
        ("super high-\nquality data", "super high-quality data"),
    ],
)
def test_clean_text_examples(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_text_drops_substack_chrome_and_keeps_the_article() -> None:
    raw = (
        "#\n\nSubscribeSign in\n\nShare this post\n\n#### My monthly recommendations\n\n"
        "decodingml.substack.com\n\nCopy link\n\nFacebook\n\nEmail\n\nNote\n\nOther\n\n"
        "# My monthly recommendations\n\n**Today is about learning.**\n\n* * *\n\n"
        "Here is a list of learning resources.\n\n.\n\nShare\n\nPreviousNext\n\n"
        "#### Discussion about this post\n\nComments\n\nRestacks\n\nTop\n\nLatest\n\nDiscussions\n\n"
        "No posts\n\nReady for more?\n\nSubscribe\n\n© 2024 Paul Iusztin\n\n"
        "Privacy ∙ Terms ∙ Collection notice\n\nStart WritingGet the app\n\n"
        "Substack is the home for great culture\n\n"
        "This site requires JavaScript to run correctly. Please turn on JavaScript or\nunblock scripts\n"
    )
    assert clean_text(raw) == (
        "My monthly recommendations Today is about learning. Here is a list of learning resources."
    )


def test_clean_text_output_is_single_line_plain_and_idempotent() -> None:
    raw = (
        "Maxime Labonne\n\n  * __LLM Course\n  * __Hands-On GNNs\n\n  1. 🔧 **LLM Post-training**\n\n"
        "# Fine-tune Llama 3.1 Ultra-Efficiently with Unsloth\n\nThe recent release of Llama 3.1 "
        "offers models with an incredible level of performance. [Read more](https://x.ai/y).  \n  \n"
        "↳ Check out the `code` | table |\n---|---\n"
    )
    cleaned = clean_text(raw)
    assert "\n" not in cleaned
    assert "  " not in cleaned
    assert cleaned == cleaned.strip()
    assert not re.search(r"[^\w\s.,!?'\"()\-:;/%&+$@]", cleaned)
    assert "__" not in cleaned and "http" not in cleaned
    assert "LLM Course" in cleaned and "Llama 3.1" in cleaned
    assert clean_text(cleaned) == cleaned
    assert clean_text("") == ""
    assert clean_text("🔥 👾 ⭐") == ""


# --- chunking: articles ------------------------------------------------------------------------------------


def handbook_chunk_article(text: str, min_length: int, max_length: int) -> list[str]:
    """The Handbook's chunk_article, verbatim, as the reference."""
    sentences = re.split(r"(?<!\w\.\w.)(?<![A-Z][a-z]\.)(?<=\.|\?|\!)\s", text)
    extracts = []
    current_chunk = ""
    for sentence in sentences:
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(current_chunk) + len(sentence) <= max_length:
            current_chunk += sentence + " "
        else:
            if len(current_chunk) >= min_length:
                extracts.append(current_chunk.strip())
            current_chunk = sentence + " "
    if len(current_chunk) >= min_length:
        extracts.append(current_chunk.strip())
    return extracts


def test_split_sentences_uses_the_handbook_rule() -> None:
    text = "RAG works. Does it scale? Yes! See e.g. the docs. Mr. Smith agrees. Done."
    assert split_sentences(text) == [
        "RAG works.",
        "Does it scale?",
        "Yes!",
        "See e.g. the docs.",
        "Mr. Smith agrees.",
        "Done.",
    ]


def test_chunk_article_matches_the_handbook_when_it_drops_nothing() -> None:
    text = article_text(120)
    ours = chunk_article(text)
    reference = handbook_chunk_article(text, 1000, 2000)
    assert ours[: len(reference)] == reference
    # the Handbook drops the short tail; we keep it as the last chunk
    assert len(ours) - len(reference) <= 1
    assert " ".join(ours) == text


def test_chunk_article_bounds_no_lost_text_and_determinism() -> None:
    text = article_text(200)
    chunks = chunk_article(text, min_length=1000, max_length=2000)
    assert len(chunks) > 5
    assert all(1000 <= len(c) <= 2000 for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 2000
    assert " ".join(chunks) == text  # nothing lost, nothing added
    assert chunk_article(text) == chunks
    # every chunk starts at a sentence start
    assert all(c.startswith("Sentence ") for c in chunks)


def test_chunk_article_splits_an_over_long_sentence_at_spaces() -> None:
    long_sentence = " ".join(f"token{i}" for i in range(900)) + "."  # ~7,000 characters, one sentence
    text = f"A short opener. {long_sentence} A closing line."
    chunks = chunk_article(text)
    assert all(len(c) <= 2000 for c in chunks)
    assert all(len(c) >= 1000 for c in chunks[:-1])
    assert " ".join(chunks) == text
    words = set(text.split())
    assert all(set(c.split()) <= words for c in chunks), "a word was cut"


def test_chunk_article_keeps_short_texts_and_tails() -> None:
    assert chunk_article("Only one short sentence.") == ["Only one short sentence."]
    assert chunk_article("") == []
    assert chunk_article("   ") == []
    # a short chunk followed by a sentence that does not fit is topped up, not dropped (the Handbook drops it)
    text = "Short start. " + " ".join(f"w{i}" for i in range(600)) + "."
    chunks = chunk_article(text)
    assert " ".join(chunks) == text
    assert all(1000 <= len(c) <= 2000 for c in chunks[:-1])
    assert chunks[0].startswith("Short start. w0 w1")
    assert "Short start." not in " ".join(handbook_chunk_article(text, 1000, 2000))


def test_chunk_article_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="min_length"):
        chunk_article("x", min_length=10, max_length=5)


# --- chunking: posts and repositories (overlapping windows) -----------------------------------------------


@pytest.mark.parametrize(("size", "overlap"), [(1000, 100), (1500, 100), (60, 20), (25, 0)])
def test_chunk_text_windows_cover_everything_with_bounded_overlap(size: int, overlap: int) -> None:
    words = unique_words(700)
    text = " ".join(words)
    chunks = chunk_text(text, size, overlap)
    assert chunks == chunk_text(text, size, overlap)  # deterministic
    previous_stop = 0
    for chunk in chunks:
        assert len(chunk) <= size
        first, stop = locate(words, chunk)  # also proves no word was cut
        assert first <= previous_stop < stop, "gap or no progress between windows"
        assert len(" ".join(words[first:previous_stop])) <= overlap
        previous_stop = stop
    assert previous_stop == len(words), "text lost at the end"


def test_chunk_text_overlaps_and_prefers_sentence_ends() -> None:
    words = unique_words(600)
    chunks = chunk_text(" ".join(words), 1000, 100)
    spans = [locate(words, c) for c in chunks]
    assert all(nxt[0] < prev[1] for prev, nxt in pairwise(spans)), "windows overlap"
    # a sentence end falls in every window's second half here, so every chunk but the last ends on one
    assert all(c.endswith(".") for c in chunks[:-1])
    assert all(len(c) >= 500 for c in chunks[:-1])


def test_post_and_repository_chunk_sizes() -> None:
    text = " ".join(unique_words(1500))
    posts = chunk_post(text)
    repos = chunk_repository(text)
    assert posts and max(len(c) for c in posts) <= 1000
    assert repos and max(len(c) for c in repos) <= 1500
    assert len(repos) < len(posts)
    assert chunk_text("", 100, 10) == []
    assert chunk_text("tiny", 100, 10) == ["tiny"]
    # a "word" longer than the window (a hash, a minified line) is the only thing ever cut
    assert chunk_text("a" * 250, 100, 10) == ["a" * 100, "a" * 100, "a" * 50]
    with pytest.raises(ValueError, match="chunk_overlap"):
        chunk_text("x", 100, 100)


# --- documents ---------------------------------------------------------------------------------------------


def test_kind_comes_from_type_then_file_name_then_shape(tmp_path: Path) -> None:
    mixed = write_json(
        tmp_path / "export.json",
        [
            article("a1", "Body."),  # Title + Content -> article
            repository("r1", {"src/app.py": "print('hi')"}),  # name + dict of files -> repository
            post("p1", {"text": "A post."}),  # anything else -> post
            post("p2", {"Title": "T", "Content": "looks like an article"}, type="post"),  # explicit type
        ],
    )
    named = write_json(tmp_path / "posts_2024.json", [post("p3", {"Post text": "From the file name."})])
    docs = {d.id: d for d in load_documents([mixed, named])}
    assert isinstance(docs["a1"], ArticleDocument) and docs["a1"].collection == "embedded_articles"
    assert isinstance(docs["r1"], RepositoryDocument) and docs["r1"].collection == "embedded_repositories"
    assert isinstance(docs["p1"], PostDocument) and docs["p1"].collection == "embedded_posts"
    assert docs["p2"].kind is DocumentKind.POST
    assert docs["p3"].kind is DocumentKind.POST
    assert docs["a1"].title == "Title a1" and docs["r1"].title == "repo-r1" and docs["p1"].title is None
    assert "src/app.py" in docs["r1"].text()


def test_directories_expand_to_their_json_files(tmp_path: Path) -> None:
    write_json(tmp_path / "articles.json", [article("a1", "Body.")])
    write_json(tmp_path / "posts.json", [post("p1", {"text": "Hi."})])
    (tmp_path / "notes.txt").write_text("not json", encoding="utf-8")
    docs = load_documents([tmp_path, tmp_path / "posts.json"])  # the repeated file is read once
    assert sorted(d.id for d in docs) == ["a1", "p1"]
    with pytest.raises(IngestError, match="no such file"):
        load_documents([tmp_path / "missing.json"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[{"_id": "a1", ', r"bad\.json: not valid JSON \(line 1"),
        ('{"_id": "a1"}', r"bad\.json: expected a JSON array of documents, got a JSON object"),
        (
            json.dumps(
                [article("a0", "ok"), {k: v for k, v in article("a1", "x").items() if k != "author_id"}]
            ),
            r"bad\.json: record 1: article: missing field 'author_id'",
        ),
        (
            json.dumps([article("a0", "ok"), {**article("a1", "x"), "content": {"Title": "T"}}]),
            r"bad\.json: record 1: .*'content.Content'",
        ),
        (json.dumps([article("a0", "ok"), "just a string"]), r"bad\.json: record 1: expected a JSON object"),
        (json.dumps([article("a0", "ok"), {**article("a1", "x"), "_id": ""}]), r"record 1: .*'_id'"),
        (json.dumps([{**post("p1", {"text": "x"}), "type": "tweet"}]), r"record 0: field 'type': must be"),
    ],
)
def test_invalid_files_are_rejected_with_file_record_and_field(
    tmp_path: Path, content: str, expected: str
) -> None:
    good = write_json(tmp_path / "articles_good.json", [article("g1", "Fine.")])
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(IngestError, match=expected) as caught:
        load_documents([good, bad])
    assert "nothing was written" in str(caught.value)


def test_duplicate_document_ids_are_rejected(tmp_path: Path) -> None:
    one = write_json(tmp_path / "articles_1.json", [article("same", "One.")])
    two = write_json(tmp_path / "articles_2.json", [article("same", "Two.")])
    with pytest.raises(IngestError, match="duplicate article id 'same'"):
        load_documents([one, two])


def test_chunk_ids_are_deterministic_and_distinct() -> None:
    first = chunk_id("embedded_articles", "doc", 0)
    assert first == chunk_id("embedded_articles", "doc", 0)
    others = {
        chunk_id("embedded_posts", "doc", 0),
        chunk_id("embedded_articles", "doc2", 0),
        chunk_id("embedded_articles", "doc", 1),
    }
    assert first not in others and len(others) == 3


# --- the pipeline against a local Qdrant -------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("corpus")
    articles = write_json(
        folder / "articles.json",
        [article("art-1", article_text(60, "a")), article("art-2", "A short article. It has two sentences.")],
    )
    posts = write_json(
        folder / "linkedin.json",
        [
            post("post-1", {"text": "Short post about RAG 🚀 and #MLOps."}, image="https://img/1.png"),
            post("post-2", {"Post text": article_text(40, "p")}),
        ],
    )
    repos = write_json(
        folder / "repositories.json",
        [
            repository(
                "repo-1",
                {
                    "README.md": "# LLM twin\n\nAn end-to-end course. " + article_text(20, "r"),
                    "src/pipeline.py": "def run(query: str) -> list[str]:\n    return retrieve(query)\n",
                },
            )
        ],
    )
    return [articles, posts, repos]


@pytest.fixture(scope="module")
async def ingested(
    tmp_path_factory: pytest.TempPathFactory, corpus: list[Path]
) -> tuple[Settings, IngestReport]:
    if not (TOKENIZER_DIR / "tokenizer.json").is_file():
        pytest.skip(f"embedding tokenizer files not in {TOKENIZER_DIR} (run `make install`)")
    settings = make_settings(tmp_path_factory.mktemp("store") / "q")
    report = await ingest_paths(corpus, settings, progress=False)
    return settings, report


@needs_model
async def test_ingest_reports_per_collection(ingested: tuple[Settings, IngestReport]) -> None:
    settings, report = ingested
    by_name = {c.collection: c for c in report.collections}
    assert set(by_name) == set(COLLECTIONS)
    assert by_name["embedded_articles"].documents == 2
    assert by_name["embedded_posts"].documents == 2
    assert by_name["embedded_repositories"].documents == 1
    for collection in by_name.values():
        assert collection.new == collection.chunks > 0
        assert collection.skipped == 0
    stored = counts(settings.qdrant_path)
    assert stored == {name: by_name[name].chunks for name in COLLECTIONS}
    assert report.summary().startswith("ingested 2 documents -> ")
    assert "into embedded_articles" in report.summary()


@needs_model
async def test_stored_points_carry_the_payload_and_the_chunk_vector(
    ingested: tuple[Settings, IngestReport],
) -> None:
    settings, _ = ingested
    articles = read_points(settings.qdrant_path, "embedded_articles")
    point = next(p for p in articles if p.payload["document_id"] == "art-1" and p.payload["chunk_index"] == 0)
    payload = point.payload
    assert set(payload) >= {
        "content",
        "title",
        "link",
        "platform",
        "author_id",
        "author_full_name",
        "document_id",
        "chunk_index",
        "type",
    }
    assert payload["title"] == "Title art-1"
    assert payload["link"] == "https://medium.com/art-1"
    assert payload["platform"] == "medium"
    assert payload["author_id"] == "a-1" and payload["author_full_name"] == "Paul Iusztin"
    assert payload["type"] == "article"
    assert str(point.id) == chunk_id("embedded_articles", "art-1", 0)
    assert payload["content"].startswith("Title art-1 Sentence 0 about feature pipelines")
    assert 1000 <= len(payload["content"]) <= 2000
    dense, bm25 = point.vector["dense"], point.vector["bm25"]
    assert len(dense) == 384
    assert abs(sum(x * x for x in dense) - 1.0) < 1e-3  # unit vector, cosine-ready
    assert len(bm25.indices) == len(bm25.values) > 0 and all(v > 0 for v in bm25.values)

    posts = {p.payload["document_id"]: p.payload for p in read_points(settings.qdrant_path, "embedded_posts")}
    assert posts["post-1"]["type"] == "post"
    assert posts["post-1"]["content"] == "Short post about RAG and MLOps."  # cleaned
    assert posts["post-1"]["image"] == "https://img/1.png"
    assert posts["post-1"]["title"] is None and posts["post-1"]["link"] is None

    repos = read_points(settings.qdrant_path, "embedded_repositories")
    assert {p.payload["type"] for p in repos} == {"repository"}
    assert {p.payload["title"] for p in repos} == {"repo-repo-1"}
    assert any("src/pipeline.py" in p.payload["content"] for p in repos)
    assert all(len(p.payload["content"]) <= 1500 for p in repos)


@needs_model
async def test_reingesting_the_same_files_adds_nothing(
    ingested: tuple[Settings, IngestReport], corpus: list[Path]
) -> None:
    settings, first = ingested
    before = counts(settings.qdrant_path)
    again = await ingest_paths(corpus, settings, progress=False)
    assert again.new == 0
    assert again.skipped == again.chunks == first.chunks
    assert counts(settings.qdrant_path) == before
    assert "(0 new, " in again.summary()


@needs_model
async def test_a_bad_file_next_to_good_ones_writes_nothing(
    ingested: tuple[Settings, IngestReport], corpus: list[Path], tmp_path: Path
) -> None:
    settings, _ = ingested
    before = counts(settings.qdrant_path)
    extra = write_json(tmp_path / "articles_new.json", [article("new-1", article_text(30, "n"))])
    bad = write_json(tmp_path / "posts_bad.json", [post("p9", {"text": "fine"}), {"_id": "p10", **AUTHOR}])
    with pytest.raises(IngestError, match=r"posts_bad\.json: record 1: post: missing field 'content'"):
        await ingest_paths([*corpus, extra, bad], settings, progress=False)
    assert counts(settings.qdrant_path) == before


async def test_a_bad_file_leaves_a_new_store_untouched(tmp_path: Path) -> None:
    good = write_json(tmp_path / "articles.json", [article("a1", article_text(30))])
    for name, content in [("broken.json", "[{"), ("object.json", "{}")]:
        bad = tmp_path / name
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(IngestError, match=re.escape(name)):
            await ingest_paths([good, bad], make_settings(tmp_path / "q"), progress=False)
        assert counts(tmp_path / "q") == {}  # the store was never even opened


async def test_a_locked_local_store_is_reported_clearly(tmp_path: Path) -> None:
    good = write_json(tmp_path / "posts.json", [post("p1", {"text": "Hello."})])
    settings = make_settings(tmp_path / "q")
    await ingest_paths([good], settings, progress=False)
    holder = EdgeStore(settings)  # plays the running gateway
    try:
        with pytest.raises(IngestError, match="is in use by another process"):
            await ingest_paths([good], settings, progress=False)
    finally:
        await holder.close()


# --- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    store = tmp_path / "cli-q"
    monkeypatch.setenv("QDRANT_PATH", str(store))
    monkeypatch.setenv("QDRANT_URL", "")
    monkeypatch.setenv("EMBEDDING_TOKENIZER_DIR", str(TOKENIZER_DIR))
    yield store


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rag-gateway ingest")
    add_ingest_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_arguments() -> None:
    args = parse("a.json", "data/", "--no-progress")
    assert args.paths == [Path("a.json"), Path("data/")]
    assert args.no_progress is True
    assert parse("a.json").no_progress is False
    with pytest.raises(SystemExit):
        parse()


@needs_model
def test_cli_ingests_and_prints_a_summary(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_json(folder / "posts.json", [post("p1", {"text": "Hello RAG."}), post("p2", {"text": "Bye."})])
    assert run_ingest(parse(str(folder), "--no-progress")) == 0
    out = capsys.readouterr().out
    assert out.startswith("ingested 2 documents -> 2 chunks (2 new) into embedded_posts in ")
    assert counts(cli_env)["embedded_posts"] == 2


def test_cli_rejects_a_malformed_file_with_status_2(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_json(tmp_path / "articles.json", [article("a1", "x"), {"_id": "a2", "content": {}}])
    assert run_ingest(parse(str(bad), "--no-progress")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: invalid input, nothing was written:")
    assert "articles.json: record 1: article: missing fields" in captured.err
    assert "Traceback" not in captured.err
    assert not cli_env.exists()


def test_cli_reports_a_missing_path_with_status_2(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_ingest(parse("/nonexistent/articles.json")) == 2
    assert "error: /nonexistent/articles.json: no such file or directory" in capsys.readouterr().err


def test_cli_reports_a_locked_store_with_status_2(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_json(tmp_path / "posts.json", [post("p1", {"text": "Hello."})])
    assert run_ingest(parse(str(good), "--no-progress")) == 0
    holder = EdgeStore(make_settings(cli_env))
    try:
        assert run_ingest(parse(str(good), "--no-progress")) == 2
    finally:
        asyncio.run(holder.close())
    err = capsys.readouterr().err
    assert f"the vector store folder {cli_env} is in use by another process" in err


# --- real data ---------------------------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_ARTICLES.is_file(), reason="../shared/data/articles.json not present")
@needs_model
def test_real_articles_ingest(shared_articles_ingest: tuple[Path, IngestReport]) -> None:
    qdrant_path, report = shared_articles_ingest
    articles = report.get("embedded_articles")
    assert articles is not None
    assert articles.documents == 76
    assert articles.new == articles.chunks == articles.count_after
    points = read_points(qdrant_path, "embedded_articles")
    assert len(points) == articles.chunks
    by_document: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for point in points:
        by_document[point.payload["document_id"]].append(
            (point.payload["chunk_index"], point.payload["content"])
        )
    assert len(by_document) == 76
    for chunks in by_document.values():
        chunks.sort()
        assert [index for index, _ in chunks] == list(range(len(chunks)))
        lengths = [len(text) for _, text in chunks]
        assert all(1000 <= n <= 2000 for n in lengths[:-1]), lengths  # a short tail per article at most
        assert 0 < lengths[-1] <= 2000
    print(f"ingested {articles.documents} articles -> {articles.chunks} chunks in {report.seconds:.1f} s")
