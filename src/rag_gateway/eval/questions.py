"""The labelled question set, built reproducibly from the corpus documents themselves.

Same documents in, same questions out: no randomness, every choice ranked by a score with the document's
own order breaking ties. Questions are made from articles (they have titles and structure); every
document of the corpus counts for word statistics. Kinds:

* ``title``: the article's title without its byline ("- by Paul Iusztin", "Maxime Labonne - ") and
  without a series prefix shared by 3+ titles ("DML: ").
* ``heading``: markdown headings (``#`` lines; short standalone lines when an article has none), cleaned
  like the text, minus generic ones (Conclusion, Table of Contents...; fewer than 3 words), the title's
  own repeats, and any heading also found in an unrelated article. Up to 2 per article, most
  distinctive first.
* ``fact``: a prose sentence (function words, few capitals, no code) from beyond the article's first
  chunk and not also in it, with at least 2 rare words, found in no unrelated article; the sentence
  itself, or its clause with the most rare-word weight when it is long. Up to 2 per article, most
  distinctive first, from different chunks when possible.
* ``conceptual``: the subtitle (else one of the first prose sentences of the body) with every word that
  is rare in the corpus *and* occurs in the article taken out; kept only with >= 4 content words left,
  when they are not mostly the title's, and when no unrelated article yields the same content words. So
  it shares no rare word with its article: only its remaining (common) words and meaning can find it.
* ``author``: "What did <author> write about <title>?": the expected author and article.
* ``unanswerable``: a fixed list on topics absent from the corpus; no expected document.
* ``sample``: the sample corpus's own labelled questions (``QUESTIONS.md`` next to the corpus files).

"Rare" means a document frequency of at most 10% of the corpus (at least 1 document), i.e. a high IDF.
The expected documents of a question are its article plus the article's republications (another document
holding >= 60% of the smaller one's word 5-grams); for headings and facts, every document containing the
text (which the "no unrelated article" rule keeps inside that group).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag_gateway.ingest.chunking import chunk_article, split_sentences
from rag_gateway.ingest.cleaning import clean_text
from rag_gateway.ingest.documents import ArticleDocument, Document

KINDS = ("title", "heading", "fact", "conceptual", "author", "unanswerable", "sample")
MAX_HEADINGS_PER_ARTICLE = 2
MAX_FACTS_PER_ARTICLE = 2
#: A word is rare when at most this fraction of the corpus's documents contain it.
RARE_DF_FRACTION = 0.1
#: Another document holding this share of the smaller one's word 5-grams is a republication.
DUPLICATE_CONTAINMENT = 0.6
SHINGLE = 5
MIN_CONCEPTUAL_CONTENT_WORDS = 4
#: A series prefix ("DML: ") is stripped from titles when at least this many titles share it.
SERIES_PREFIX_MIN_TITLES = 3

#: Questions on topics the corpus does not cover: retrieval should find nothing convincing.
UNANSWERABLE = (
    "How long should bread dough be kneaded by hand?",
    "What is the best way to season a cast iron skillet?",
    "Which country won the 1998 football World Cup final?",
    "What are the offside rules in ice hockey?",
    "Why did the Western Roman Empire fall in the fifth century?",
    "What caused the French Revolution of 1789?",
    "How do I repot an orchid without damaging its roots?",
    "What is the capital city of Australia?",
    "How do the phases of the moon affect ocean tides?",
    "Which grape varieties are used to make champagne?",
    "How should a beginner train for a first marathon?",
    "What is the difference between a crocodile and an alligator?",
    "How do I fix a flat tyre on a bicycle?",
    "What are the symptoms of vitamin D deficiency?",
    "Who painted the ceiling of the Sistine Chapel?",
)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _word_set(
    """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just let me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she should
    so some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your yours
    yourself yourselves s t don ll ve re d m o y us get got one use using used via per vs
    """
)
#: Headings that say nothing about their article, compared case-folded without punctuation.
GENERIC_HEADINGS = frozenset(
    {
        "conclusion",
        "conclusions",
        "introduction",
        "references",
        "related articles",
        "related posts",
        "discussion about this post",
        "table of contents",
        "contents",
        "sections",
        "summary",
        "resources",
        "further reading",
        "final thoughts",
        "next steps",
        "what s next",
        "acknowledgements",
        "acknowledgments",
        "previous lessons",
        "latest lessons",
        "this week s topics",
        "references and resources",
    }
)

_TOKEN = re.compile(r"[^\W_]+")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<text>.+?)\s*#*\s*$")
_ENUMERATOR = re.compile(r"^(?:#?\d+(?:\.\d+)*[.):]?|[IVXLC]+[.)]|[A-Za-z][.)])\s+")
_SERIES_PREFIX = re.compile(r"^([A-Za-z]{2,8}):\s+")
_PLAIN_WORD = re.compile(r"^[A-Za-z][A-Za-z'\-]*[.,;:!?)]?$")
_CLAUSE_SPLIT = re.compile(r"[,;:]\s+|\s+-\s+")
_CODE_CHARS = re.compile(r"[{}\[\]=<>_\\|#`]|\(self|\bdef\s")
#: Words glued by a lost line break in a crawl ("BesbesThe", "11Liked").
_GLUED = re.compile(r"[a-z]{2,}[A-Z][a-z]|\d[A-Za-z]{3,}")
#: Prose has function words; author lists, menus and code have few.
MIN_STOP_WORD_SHARE = 0.3


def tokens(text: str) -> list[str]:
    """Case-folded word tokens (letters and digits), the unit of every word statistic here."""
    return _TOKEN.findall(text.casefold())


def is_prose(sentence: str, min_words: int = 8, max_words: int = 40) -> bool:
    """A readable sentence: a capital first, an end mark last, plain words, function words, few capitals,
    no code."""
    words = sentence.split()
    if not min_words <= len(words) <= max_words or not sentence[0].isupper() or sentence[-1] not in ".!?":
        return False
    plain = sum(1 for w in words if _PLAIN_WORD.match(w))
    stop = sum(1 for w in words if w.strip(".,;:!?()\"'").casefold() in STOP_WORDS)
    glued = sum(1 for w in words if _GLUED.search(w))
    capitalised = sum(1 for w in words[1:] if w[0].isupper())
    return (
        plain >= 0.75 * len(words)
        and stop >= MIN_STOP_WORD_SHARE * len(words)
        and capitalised <= 0.4 * len(words)  # not a list of names (references, credits)
        and glued < 2
        and not _CODE_CHARS.search(sentence)
    )


def _joined(text: str) -> str:
    """The text as ``" tok tok tok "``: containment of one text in another, ignoring punctuation."""
    return f" {' '.join(tokens(text))} "


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    kind: str
    text: str
    #: Any of these documents answers the question; empty for an unanswerable question.
    expected_document_ids: tuple[str, ...] = ()
    expected_author: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.expected_document_ids)


@dataclass(frozen=True)
class CorpusStats:
    """Document frequencies over every document of the corpus, and what counts as rare."""

    document_count: int
    df: Mapping[str, int]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CorpusStats:
        df: Counter[str] = Counter()
        count = 0
        for text in texts:
            count += 1
            df.update(set(tokens(text)))
        return cls(count, dict(df))

    @property
    def rare_max_df(self) -> int:
        return max(1, round(RARE_DF_FRACTION * self.document_count))

    def idf(self, token: str) -> float:
        return math.log(max(1, self.document_count) / max(1, self.df.get(token, 0)))

    def is_rare(self, token: str) -> bool:
        return 0 < self.df.get(token, 0) <= self.rare_max_df

    def rare_weight(self, text: str) -> float:
        """Sum of the IDF of the distinct rare words (3+ letters) of ``text``: how distinctive it is."""
        # fsum: exact whatever the (hash-seeded) set order, so equal weights tie the same way every run
        rare = (self.idf(t) for t in set(tokens(text)) if len(t) >= 3 and t.isalpha() and self.is_rare(t))
        return math.fsum(rare)

    def rare_count(self, text: str) -> int:
        return sum(1 for t in set(tokens(text)) if len(t) >= 3 and t.isalpha() and self.is_rare(t))


@dataclass
class _Article:
    document: ArticleDocument
    cleaned: str
    joined: str
    token_set: frozenset[str]
    shingles: frozenset[tuple[str, ...]]
    group: set[str] = field(default_factory=set)


def _content_words(text: str) -> frozenset[str]:
    return frozenset(t for t in tokens(text) if t.isalpha() and len(t) >= 2 and t not in STOP_WORDS)


def _shingles(words: Sequence[str]) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(words[i : i + SHINGLE]) for i in range(max(0, len(words) - SHINGLE + 1)))


def _containment(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    smaller = min(len(a), len(b))
    return len(a & b) / smaller if smaller else 0.0


class QuestionBuilder:
    """Builds every kind of question from one corpus; see the module doc for each construction."""

    def __init__(self, documents: Sequence[Document]) -> None:
        cleaned = {(d.collection, d.id): clean_text(d.text()) for d in documents}
        self.stats = CorpusStats.from_texts(cleaned.values())
        self.articles: list[_Article] = []
        for document in documents:
            if isinstance(document, ArticleDocument):
                text = cleaned[(document.collection, document.id)]
                words = tokens(text)
                self.articles.append(
                    _Article(document, text, f" {' '.join(words)} ", frozenset(words), _shingles(words))
                )
        for article in self.articles:
            article.group = {
                other.document.id
                for other in self.articles
                if other is article or _containment(article.shingles, other.shingles) >= DUPLICATE_CONTAINMENT
            }
        prefixes = Counter(
            m.group(1) for a in self.articles if (m := _SERIES_PREFIX.match(a.document.title or ""))
        )
        self._series_prefixes = {p for p, n in prefixes.items() if n >= SERIES_PREFIX_MIN_TITLES}

    # --- helpers -----------------------------------------------------------------------------------

    def _ids(self, ids: Iterable[str]) -> tuple[str, ...]:
        """Document ids in corpus order."""
        wanted = set(ids)
        return tuple(a.document.id for a in self.articles if a.document.id in wanted)

    def _containing(self, text: str) -> set[str]:
        needle = _joined(text)
        return {a.document.id for a in self.articles if needle in a.joined}

    def clean_title(self, article: _Article) -> str:
        """The title without bylines and series prefixes: what a reader would type."""
        title = " ".join(clean_text(article.document.title or "").split())
        match = _SERIES_PREFIX.match(title)
        if match and match.group(1) in self._series_prefixes:
            title = title[match.end() :]
        author = article.document.author_full_name.casefold()
        kept: list[str] = []
        for segment in title.split(" - "):
            lowered = segment.strip().casefold()
            if lowered.startswith("by "):
                break
            if lowered and lowered != author:
                kept.append(segment.strip())
        return " - ".join(kept).strip()

    # --- kinds -------------------------------------------------------------------------------------

    def title_questions(self) -> list[Question]:
        titles = {a.document.id: self.clean_title(a) for a in self.articles}
        out = []
        for article in self.articles:
            title = titles[article.document.id]
            if len(tokens(title)) < 2:
                continue
            same_title = {i for i, t in titles.items() if t.casefold() == title.casefold()}
            out.append(
                Question(
                    f"title-{article.document.id}",
                    "title",
                    title,
                    self._ids(article.group | same_title),
                )
            )
        return out

    def _heading_candidates(self, article: _Article) -> list[str]:
        raw = article.document.content.content
        lines = raw.splitlines()
        found = [m.group("text") for line in lines if (m := _MD_HEADING.match(line))]
        if not found:  # no markdown: short standalone lines between blank lines
            for i, line in enumerate(lines):
                text = line.strip()
                before = i == 0 or not lines[i - 1].strip()
                after = i + 1 == len(lines) or not lines[i + 1].strip()
                if (
                    before
                    and after
                    and 3 <= len(text.split()) <= 12
                    and text[0].isupper()
                    and text[-1] not in ".,;:!"
                    and "http" not in text
                ):
                    found.append(text)
        cleaned = []
        for heading in found:
            text = " ".join(clean_text(heading).split())
            while (stripped := _ENUMERATOR.sub("", text, count=1)) != text:
                text = stripped
            cleaned.append(text.strip(" :-"))
        return cleaned

    def heading_questions(self) -> list[Question]:
        out = []
        for article in self.articles:
            own = set(tokens(f"{article.document.title} {article.document.content.subtitle or ''}"))
            own |= set(tokens(article.document.author_full_name))
            headings = self._heading_candidates(article)
            repeats = Counter(" ".join(tokens(h)) for h in headings)
            seen: set[str] = set()
            candidates: list[tuple[float, int, str, set[str]]] = []
            for position, heading in enumerate(headings):
                words = tokens(heading)
                key = " ".join(words)
                if not 3 <= len(words) <= 20 or key in seen or key in GENERIC_HEADINGS:
                    continue
                seen.add(key)
                if repeats[key] > 1 or len(set(words) & own) >= 0.75 * len(set(words)):
                    continue  # page chrome repeating the title or subtitle, or the byline
                containing = self._containing(heading)
                if article.document.id not in containing or not containing <= article.group:
                    continue  # lost in cleaning, or a recurring heading of unrelated articles
                candidates.append((self.stats.rare_weight(heading), position, heading, containing))
            candidates.sort(key=lambda c: (-c[0], c[1]))
            for n, (_, _, heading, containing) in enumerate(candidates[:MAX_HEADINGS_PER_ARTICLE]):
                out.append(
                    Question(f"heading-{article.document.id}-{n}", "heading", heading, self._ids(containing))
                )
        return out

    def _fact_query(self, sentence: str) -> str:
        if len(sentence.split()) <= 25:
            return sentence
        clauses = [c.strip() for c in _CLAUSE_SPLIT.split(sentence) if len(c.split()) >= 6]
        if not clauses:
            return sentence
        return max(clauses, key=lambda c: (self.stats.rare_weight(c), -clauses.index(c)))

    def fact_questions(self) -> list[Question]:
        out = []
        for article in self.articles:
            chunks = chunk_article(article.cleaned)
            first_chunk = _joined(chunks[0]) if chunks else ""
            candidates: list[tuple[float, int, int, str, set[str]]] = []
            position = 0
            for chunk_index, chunk in enumerate(chunks[1:], start=1):
                for sentence in split_sentences(chunk):
                    position += 1
                    if not is_prose(sentence) or self.stats.rare_count(sentence) < 2:
                        continue
                    query = self._fact_query(sentence)
                    if _joined(query) in first_chunk:  # said in the first chunk too: not deep inside
                        continue
                    containing = self._containing(query)
                    if article.document.id not in containing or not containing <= article.group:
                        continue
                    weight = self.stats.rare_weight(query)
                    candidates.append((weight, position, chunk_index, query, containing))
            candidates.sort(key=lambda c: (-c[0], c[1]))
            # Prefer facts from different chunks; fill up from the same chunk only when needed.
            picked: list[tuple[float, int, int, str, set[str]]] = []
            for candidate in candidates:
                if len(picked) < MAX_FACTS_PER_ARTICLE and candidate[2] not in {p[2] for p in picked}:
                    picked.append(candidate)
            for candidate in candidates:
                if len(picked) < MAX_FACTS_PER_ARTICLE and candidate not in picked:
                    picked.append(candidate)
            for n, (_, _, _, query, containing) in enumerate(picked):
                out.append(Question(f"fact-{article.document.id}-{n}", "fact", query, self._ids(containing)))
        return out

    def strip_rare(self, text: str, article_tokens: frozenset[str]) -> str:
        """``text`` without every word holding a token that is rare in the corpus and in the article."""
        kept = [
            word
            for word in text.split()
            if not any(self.stats.is_rare(t) and t in article_tokens for t in tokens(word))
        ]
        return " ".join(kept).strip(" ,;:-")

    def shares_rare_word(self, text: str, article_tokens: frozenset[str]) -> bool:
        return any(self.stats.is_rare(t) and t in article_tokens for t in tokens(text))

    def _conceptual_sources(self, article: _Article) -> list[str]:
        sources = []
        subtitle = article.document.content.subtitle
        if subtitle:
            sources.append(" ".join(clean_text(subtitle).split()))
        body = clean_text(article.document.content.content)
        author = article.document.author_full_name.casefold()
        prose = [s for s in split_sentences(body) if is_prose(s, min_words=6) and author not in s.casefold()]
        return sources + prose[:5]

    def conceptual_questions(self) -> list[Question]:
        options: dict[str, list[str]] = {}
        made_by: dict[frozenset[str], set[str]] = {}  # content words -> articles that yield them
        for article in self.articles:
            title = _content_words(article.document.title or "")
            texts = []
            for source in self._conceptual_sources(article):
                text = self.strip_rare(source, article.token_set)
                content = _content_words(text)
                if len(content) >= MIN_CONCEPTUAL_CONTENT_WORDS and len(content & title) < 0.75 * len(
                    content
                ):
                    texts.append(text)
                    made_by.setdefault(content, set()).add(article.document.id)
            options[article.document.id] = texts
        out = []
        for article in self.articles:
            for text in options[article.document.id]:
                if made_by[_content_words(text)] <= article.group:  # no unrelated article yields it
                    out.append(
                        Question(
                            f"conceptual-{article.document.id}",
                            "conceptual",
                            text,
                            self._ids(article.group),
                        )
                    )
                    break
        return out

    def author_questions(self) -> list[Question]:
        out = []
        for article in self.articles:
            topic = self.clean_title(article).rstrip("?!. ")
            if len(tokens(topic)) < 2:
                continue
            author = article.document.author_full_name
            out.append(
                Question(
                    f"author-{article.document.id}",
                    "author",
                    f"What did {author} write about {topic}?",
                    self._ids(article.group),
                    author,
                )
            )
        return out

    def build(self) -> list[Question]:
        unanswerable = [
            Question(f"unanswerable-{n:02d}", "unanswerable", text) for n, text in enumerate(UNANSWERABLE, 1)
        ]
        return [
            *self.title_questions(),
            *self.heading_questions(),
            *self.fact_questions(),
            *self.conceptual_questions(),
            *self.author_questions(),
            *unanswerable,
        ]


# --- the sample corpus's own questions -------------------------------------------------------------

_TABLE_ROW = re.compile(r"^\|\s*(?P<n>\d+)\s*\|(?P<rest>.*)\|\s*$")
_TRAILING_AUTHOR = re.compile(r"\s*\([^()]*\)\s*$")


class QuestionSetError(ValueError):
    """The questions cannot be built: a QUESTIONS.md row names a missing article, or ids collide."""


def sample_questions(path: Path, documents: Sequence[Document]) -> list[Question]:
    """The labelled rows of a sample corpus's ``QUESTIONS.md``: question, author filter, source title.

    Each table row is ``| n | question | author or `null` | source title [(author)] | ... |``.
    """
    by_title = {
        " ".join(tokens(d.title or "")): d.id for d in documents if isinstance(d, ArticleDocument) and d.title
    }
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _TABLE_ROW.match(line.strip())
        if not match:
            continue
        cells = [cell.strip() for cell in match.group("rest").split("|")]
        if len(cells) < 3:
            continue
        question, author, source = cells[0], cells[1].strip("`"), _TRAILING_AUTHOR.sub("", cells[2])
        document_id = by_title.get(" ".join(tokens(source)))
        if document_id is None:
            raise QuestionSetError(f"{path}: question {match.group('n')}: no article titled {source!r}")
        out.append(
            Question(
                f"sample-{int(match.group('n')):02d}",
                "sample",
                question,
                (document_id,),
                None if author.casefold() in {"null", "none", ""} else author,
            )
        )
    return out


def build_questions(documents: Sequence[Document], questions_file: Path | None = None) -> list[Question]:
    """Every question for this corpus, in a stable order (by kind, then by document)."""
    questions = QuestionBuilder(documents).build()
    if questions_file is not None:
        questions.extend(sample_questions(questions_file, documents))
    ids = [q.id for q in questions]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise QuestionSetError(f"duplicate question ids (duplicate document ids?): {duplicates[:5]}")
    return questions
