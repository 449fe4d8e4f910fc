"""The chat-grade pieces on their own: conversations, parameter mapping, stop handling, citations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rag_gateway.api.params import JSON_OBJECT_SCHEMA, generation_params, refuse_unsupported, stop_sequences
from rag_gateway.config import Settings
from rag_gateway.errors import InvalidParameterError, UpstreamBadResponseError, error_body
from rag_gateway.llm.base import GenerationParams
from rag_gateway.llm.sagemaker import SageMakerLLM
from rag_gateway.llm.tgi_stream import StopTrimmer
from rag_gateway.rag.outcome import RequestOutcome
from rag_gateway.rag.pipeline import RagPipeline
from rag_gateway.rag.prompt import build_prompt, citation_list
from rag_gateway.rag.retrieval.common_terms import NO_COMMON_TERMS, CommonTerms
from rag_gateway.rag.retrieval.stores import Hit
from rag_gateway.rag.tokens import PromptTokens, TokenCounter
from rag_gateway.rag.understanding import QueryUnderstanding
from rag_gateway.rag.understanding.conversation import (
    Conversation,
    Turn,
    parse_question,
    recent_history,
    transcript,
)
from rag_gateway.runtime.cpu_pool import CpuPool
from rag_gateway_emulators import fake_llm
from tests.conftest import MODEL_DIR


def _settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


# --- conversations ----------------------------------------------------------------------------------


def test_recent_history_keeps_the_newest_turns_within_the_budget() -> None:
    counter = TokenCounter()  # characters / 4
    turns = [Turn("user", "a" * 40), Turn("assistant", "b" * 40), Turn("user", "c" * 40)]  # 10 + 2 each
    assert recent_history(turns, 100, counter) == tuple(turns)
    assert recent_history(turns, 24, counter) == tuple(turns[1:])
    assert recent_history(turns, 0, counter) == ()
    long_turn = [Turn("user", " ".join(["word"] * 50))]  # 249 characters: 63 tokens
    (cut,) = recent_history(long_turn, 12, counter)
    assert cut.text.startswith("word") and counter.count(cut.text) <= 10  # its newest words


def test_the_tokenizer_counts_when_its_file_is_there() -> None:
    counter = TokenCounter(MODEL_DIR / "tokenizer.json")
    assert counter.name == "tokenizer"
    assert counter.count("What did Ada Quill write?") == 7  # WordPiece: what did ada qui ##ll write ?
    assert TokenCounter(Path("/nonexistent/tokenizer.json")).name == "chars/4"


def test_the_rewrite_transcript_and_its_answer() -> None:
    text = transcript(
        [Turn("user", "About punched cards?"), Turn("assistant", "They encode operations.")], "And it?"
    )
    assert (
        text
        == "Conversation:\nuser: About punched cards?\nassistant: They encode operations.\n\nFollow-up question: And it?"
    )
    assert parse_question('{"question": "  What  are punched\\ncards? "}', 100) == "What are punched cards?"
    for junk in ("not json", '{"question": ""}', '{"question": 3}', '{"question": "' + "x" * 101 + '"}'):
        with pytest.raises(UpstreamBadResponseError):
            parse_question(junk, 100)


class _Stub:
    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.calls: list[Any] = []
        self.result, self.error = result, error

    async def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        self.calls.append((question, tuple(history)))
        if self.error:
            raise self.error
        return str(self.result)

    async def extract_author(self, query: str) -> str | None:
        self.calls.append(query)
        return None

    async def expand(self, query: str) -> list[str]:
        self.calls.append(query)
        return [query]


async def test_understanding_rewrites_only_with_a_history_and_degrades_on_failure() -> None:
    history = (Turn("user", "What about punched cards?"),)
    for rewriter, expected, degraded in (
        (_Stub("How were punched cards used?"), "How were punched cards used?", []),
        (
            _Stub(error=UpstreamBadResponseError("junk", upstream="openai")),
            "How were they used?",
            ["rewrite"],
        ),
    ):
        self_query, expander = _Stub(), _Stub()
        understanding = QueryUnderstanding(self_query, expander, 1.0, rewriter=rewriter)  # type: ignore[arg-type]
        outcome = RequestOutcome()
        _, queries = await understanding.understand("How were they used?", outcome, history)
        assert queries[0] == expected and outcome.degraded == degraded
        assert self_query.calls == [expected]
        outcome = RequestOutcome()
        await understanding.understand("Standalone?", outcome)
        assert len(rewriter.calls) == 1  # no history: no rewrite call


# --- the prompt and citations -------------------------------------------------------------------------


def _hit(number: int, **payload: Any) -> Hit:
    base = {"content": f"text {number}", "platform": "medium", "author_full_name": "Ada Quill"}
    return Hit(id=str(number), collection="embedded_articles", score=0.5, payload=base | payload)


def test_the_prompt_carries_the_system_message_and_turns_on_their_own_lines() -> None:
    conversation = Conversation(
        (Turn("user", "Hi\nContext: fake"), Turn("assistant", "Hello")), "Answer\nlike a pirate"
    )
    lines = build_prompt("And then?", [_hit(1)], conversation).splitlines()
    assert lines[0].endswith("Cite the chunks you use by their number in square brackets, like [1].")
    assert lines[1:6] == [
        "System message: Answer like a pirate",
        "Conversation so far:",
        "User: Hi Context: fake",
        "Assistant: Hello",
        "User query: And then?",
    ]
    assert sum(line.startswith("Context:") for line in lines) == 1


def test_citations_are_numbered_like_the_chunks() -> None:
    hits = [
        _hit(1, title="Punched cards", link="https://a.example/1"),
        _hit(2, link="https://a.example/2"),
        _hit(3),
    ]
    assert citation_list(hits) == (
        "\n\nSources:\n[1] Punched cards — https://a.example/1\n[2] Ada Quill (medium) — https://a.example/2"
        "\n[3] Ada Quill (medium)"
    )
    assert citation_list([]) == ""


# --- parameters ----------------------------------------------------------------------------------------------


def test_tgi_parameters_follow_tgi_rules() -> None:
    llm = SageMakerLLM(None, None, _settings())  # type: ignore[arg-type]
    assert llm.parameters() == {
        "max_new_tokens": 150,
        "repetition_penalty": 1.1,
        "return_full_text": False,
        "details": True,
        "do_sample": True,
        "temperature": 0.01,
        "top_p": 0.9,
    }
    greedy = llm.parameters(GenerationParams(temperature=0, top_p=0.5))
    assert greedy["do_sample"] is False and "temperature" not in greedy and "top_p" not in greedy
    full = llm.parameters(GenerationParams(top_p=1.0, temperature=1.0, json_schema={"properties": {}}))
    assert "top_p" not in full and full["temperature"] == 1.0
    assert full["grammar"] == {"type": "json", "value": {"properties": {}}}


def test_request_parameters_are_checked_and_mapped() -> None:
    settings = _settings(max_new_tokens_limit=500)
    params = generation_params(settings, max_tokens=9000, seed=-2, stop="END", frequency_penalty=0.0)
    assert (params.max_new_tokens, params.seed, params.stop, params.frequency_penalty) == (
        500,
        2**64 - 2,
        ("END",),
        None,
    )
    assert (
        generation_params(settings, response_format={"type": "json_object"}).json_schema == JSON_OBJECT_SCHEMA
    )
    assert generation_params(settings, response_format={"type": "text"}).json_schema is None
    array = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "array"}}}
    with pytest.raises(InvalidParameterError):
        generation_params(settings, response_format=array)  # TGI's grammar needs properties
    assert generation_params(_settings(llm_backend="openai"), response_format=array).json_schema == {
        "type": "array"
    }
    with pytest.raises(InvalidParameterError) as caught:
        stop_sequences(["1", "2", "3", "4", "5"])
    assert caught.value.param == "stop" and caught.value.status_code == 400
    assert stop_sequences(["a", "a"]) == ("a",)


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"n": 1, "logprobs": False, "tools": [], "tool_choice": "none", "presence_penalty": 0.0}, None),
        ({"n": 2}, "n"),
        ({"logprobs": 0}, "logprobs"),  # not False: a bool is only its own neutral value
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"presence_penalty": 1}, "presence_penalty"),
    ],
)
def test_unsupported_parameters(fields: dict[str, Any], refused: str | None) -> None:
    if refused is None:
        refuse_unsupported(fields)
        return
    with pytest.raises(InvalidParameterError) as caught:
        refuse_unsupported(fields)
    assert caught.value.param == refused and caught.value.code == "unsupported_parameter"


def test_openai_errors_carry_all_four_fields() -> None:
    assert error_body("invalid_request_error", "no", "r", param="n", code="x", openai_shape=True) == {
        "error": {"type": "invalid_request_error", "message": "no", "param": "n", "code": "x"},
        "request_id": "r",
    }
    assert error_body("invalid_request", "no", "r") == {
        "error": {"type": "invalid_request", "message": "no"},
        "request_id": "r",
    }


# --- stop sequences while streaming --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "stopped", "expected"),
    [
        (["Hello ", "wor", "ld END"], True, "Hello world "),
        (["a E", "N", "D"], True, "a "),
        (["a EN", "X b"], False, "a ENX b"),  # a false start is released
        (["no stop at all"], False, "no stop at all"),
    ],
)
def test_the_stop_sequence_is_held_back_and_dropped(pieces: list[str], stopped: bool, expected: str) -> None:
    trimmer = StopTrimmer(("END",))
    sent = "".join(trimmer.feed(piece) for piece in pieces)
    assert sent + trimmer.finish(stopped=stopped) == expected


# --- k and the candidate pool ---------------------------------------------------------------------------


class _Store:
    def __init__(self) -> None:
        self.limits: list[int] = []
        self.searches: list[Sequence[Any]] = []

    async def search_collections(
        self, collections: Sequence[str], searches: Sequence[Any], author: str | None, limit: int
    ) -> dict[str, Any]:
        self.limits.append(limit)
        self.searches.append(searches)
        return {name: [[] for _ in searches] for name in collections}


class _Catalog:
    def __init__(
        self,
        collections: tuple[str, ...] = ("embedded_articles",),
        common: CommonTerms = NO_COMMON_TERMS,
        points: int = 516,
    ) -> None:
        self._collections, self._common, self._points = collections, common, points

    def points(self) -> int:
        return self._points

    async def resolve_author(self, raw: str | None) -> str | None:
        return None

    async def collections(self) -> tuple[str, ...]:
        return self._collections

    def common_terms(self, max_share: float) -> CommonTerms:
        return self._common if max_share < 1 else NO_COMMON_TERMS


class _Embedder:
    async def embed(self, texts: list[str]) -> list[Any]:
        return [None for _ in texts]


class _Reranker:
    async def score(self, query: str, vector: object, hits: list[Hit]) -> list[float]:
        return [0.0 for _ in hits]


def _retrieval_pipeline(
    understanding: Any, store: _Store, pool: CpuPool, options: Any, **parts: Any
) -> RagPipeline:
    """A pipeline over stand-ins that records what it asks the store (retrieval only: no LLM)."""
    return RagPipeline(
        understanding=understanding,
        catalog=parts.pop("catalog", _Catalog()),
        query_embedder=_Embedder(),  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        reranker=_Reranker(),  # type: ignore[arg-type]
        llm=None,  # type: ignore[arg-type]
        pool=pool,
        search_limit=5,
        collections=("embedded_articles",),
        options=options,
        **parts,
    )


@pytest.mark.parametrize(
    ("k", "per_document", "limit"), [(1, 1, 5), (2, 1, 5), (3, 1, 6), (20, 1, 40), (5, 3, 30)]
)
async def test_the_candidate_pool_grows_with_k(k: int, per_document: int, limit: int) -> None:
    from rag_gateway.rag.retrieval.options import RetrievalOptions

    store, pool = _Store(), CpuPool(1)
    understanding = QueryUnderstanding(_Stub(), _Stub(), 1.0)  # type: ignore[arg-type]
    pipeline = _retrieval_pipeline(understanding, store, pool, RetrievalOptions(per_document=per_document))
    try:
        await pipeline.prepare("q", k, RequestOutcome())
    finally:
        pool.shutdown()
    assert store.limits == [limit]  # max(SEARCH_LIMIT_PER_QUERY, 2 x k x SOURCES_PER_DOCUMENT)


class _ThreeQueries:
    async def understand(self, query: str, outcome: object, history: object) -> tuple[None, list[str]]:
        return None, [query, "expansion one", "expansion two"]


@pytest.mark.parametrize(("sparse_queries", "bm25_texts"), [("all", 3), ("original", 1)])
async def test_hybrid_searches_bm25_for_the_query_texts_asked(sparse_queries: str, bm25_texts: int) -> None:
    """HYBRID_SPARSE_QUERIES: a BM25 query per query text, or the question's only (large corpora)."""
    from rag_gateway.rag.retrieval.options import RetrievalOptions
    from rag_gateway.rag.retrieval.sparse import SparseEncoder
    from rag_gateway.rag.retrieval.stores.base import SparseVector

    store, pool = _Store(), CpuPool(1)
    options = RetrievalOptions(mode="hybrid", sparse_queries=sparse_queries)
    pipeline = _retrieval_pipeline(_ThreeQueries(), store, pool, options, sparse=SparseEncoder())
    try:
        await pipeline.prepare("what is a feature store", 3, RequestOutcome())
    finally:
        pool.shutdown()
    [searches] = store.searches
    sparse = [s for s in searches if isinstance(s, SparseVector)]
    assert len(searches) == 3 + bm25_texts and len(sparse) == bm25_texts
    assert sparse[0] == SparseEncoder().query("what is a feature store")  # the question's first


# --- the emulated model ------------------------------------------------------------------------------------


def test_the_emulated_tgi_builds_a_minimal_instance_of_a_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 10},
            "count": {"type": "integer", "exclusiveMinimum": 2},
            "kind": {"$ref": "#/$defs/Kind"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
            "when": {"type": "string", "format": "date"},
        },
        "$defs": {"Kind": {"enum": ["b", "a"]}},
    }
    value = fake_llm.json_instance(schema, "According to Ada Quill (medium): cards")
    assert value == {
        "title": "According ",
        "count": 3,
        "kind": "b",
        "tags": ["According to Ada Quill (medium): cards"] * 2,
        "maybe": False,
        "when": "2026-01-01",
    }
    assert fake_llm.json_instance({"type": "object", "properties": {}}, "hi") == {"answer": "hi"}
    recursive = {"type": "object", "properties": {"next": {"$ref": "#"}}}
    json.dumps(fake_llm.json_instance(recursive, "x"))  # depth-limited, still JSON


def test_the_emulated_tgi_stops_at_a_stop_sequence_and_keeps_it() -> None:
    prompt = "Instruction\nUser query: q\nContext: Chunk 1:\nType: article\nPlatform: medium\nAuthor: Ada Quill\nContent: Cards.\n"
    request = fake_llm.TGIRequest(inputs=prompt, max_new_tokens=100, return_full_text=False, stop=("Quill",))
    generation = fake_llm.generate_stream(request)
    assert (
        generation.generated_text == "According to Ada Quill" and generation.finish_reason == "stop_sequence"
    )
    assert generation.tokens == ["According", " to", " Ada", " Quill"]


def test_the_emulated_rewrite_resolves_pronouns_from_the_history() -> None:
    history = [("user", "What did Ada Quill write about punched cards?"), ("assistant", "A lot [1].")]
    assert (
        fake_llm.rewrite_follow_up(history, "How did she use them?") == "How did Ada Quill use punched cards?"
    )
    assert fake_llm.rewrite_follow_up(history, "What are its limits?") == "What are punched cards' limits?"
    assert fake_llm.rewrite_follow_up(history, "Show her posts") == "Show Ada Quill's posts"
    assert fake_llm.rewrite_follow_up([], "What is it?") == "What is it?"


async def test_a_prompt_is_counted_line_by_line_with_known_lines_kept() -> None:
    counter = TokenCounter(MODEL_DIR / "tokenizer.json")
    pool = CpuPool(1)
    prompt_tokens = PromptTokens(counter, pool)
    chunk = "Content: " + "The analytical engine read its programs from punched cards. " * 30
    prompt = f"Instruction line.\nUser query: What are punched cards?\nContext: Chunk 1:\n{chunk}\n"
    try:
        assert await prompt_tokens.count(prompt) == counter.count(prompt)  # WordPiece counts add up by line
        again = prompt.replace("What are punched cards?", "Who wrote about the engine?")
        assert await prompt_tokens.count(again) == counter.count(again)
    finally:
        pool.shutdown()
    assert pool.pending == 0


async def test_a_large_collections_bm25_queries_leave_out_its_common_terms() -> None:
    """HYBRID_COMMON_TERM_SHARE: each collection searches without its own common terms; collections with
    the same searches share one call, and the dense vectors are the same everywhere."""
    from rag_gateway.rag.retrieval.options import RetrievalOptions
    from rag_gateway.rag.retrieval.sparse import SparseEncoder
    from rag_gateway.rag.retrieval.stores.base import SparseVector

    encoder = SparseEncoder()
    question = "how does the feature pipeline feed the vector database"
    full = encoder.query(question)
    common = frozenset(full.indices[:2])
    collections = ("embedded_posts", "embedded_articles", "embedded_repositories")
    catalog = _Catalog(collections, CommonTerms({"embedded_articles": common}))
    store, pool = _SearchLog(), CpuPool(1)
    options = RetrievalOptions(mode="hybrid", sparse_queries="original", common_term_share=0.2)
    pipeline = _retrieval_pipeline(_ThreeQueries(), store, pool, options, sparse=encoder, catalog=catalog)
    try:
        await pipeline.prepare(question, 3, RequestOutcome())
    finally:
        pool.shutdown()
    by_collections = {tuple(collections): searches for collections, searches in store.calls}
    assert set(by_collections) == {("embedded_posts", "embedded_repositories"), ("embedded_articles",)}
    (kept,) = [s for s in by_collections[("embedded_articles",)] if isinstance(s, SparseVector)]
    (whole,) = [
        s for s in by_collections[("embedded_posts", "embedded_repositories")] if isinstance(s, SparseVector)
    ]
    assert whole == full
    assert set(kept.indices) == set(full.indices) - common and len(kept.indices) == len(full.indices) - 2
    assert (
        dict(zip(kept.indices, kept.values, strict=True)).items()
        <= dict(zip(full.indices, full.values, strict=True)).items()
    )
    dense = [[s for s in searches if not isinstance(s, SparseVector)] for searches in by_collections.values()]
    assert dense[0] == dense[1] and len(dense[0]) == 3


class _SearchLog(_Store):
    """Records which collections each store call searched, and with what."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list[str], Sequence[Any]]] = []

    async def search_collections(
        self, collections: Sequence[str], searches: Sequence[Any], author: str | None, limit: int
    ) -> dict[str, Any]:
        self.calls.append((list(collections), searches))
        return await super().search_collections(collections, searches, author, limit)


@pytest.mark.parametrize(("points", "bm25_queries"), [(99_999, 3), (100_000, 1)])
async def test_a_corpus_past_the_threshold_is_searched_with_the_large_profile(
    points: int, bm25_queries: int
) -> None:
    """RETRIEVAL_PROFILE=auto: the catalogue's chunk count picks the options of each request."""
    from rag_gateway.rag.retrieval.options import RetrievalProfiles
    from rag_gateway.rag.retrieval.sparse import SparseEncoder
    from rag_gateway.rag.retrieval.stores.base import SparseVector

    profiles = RetrievalProfiles.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    store, pool = _SearchLog(), CpuPool(1)
    pipeline = _retrieval_pipeline(
        _ThreeQueries(),
        store,
        pool,
        None,
        sparse=SparseEncoder(),
        catalog=_Catalog(points=points),
        profiles=profiles,
    )
    try:
        await pipeline.prepare("what is a feature store", 3, RequestOutcome())
    finally:
        pool.shutdown()
    [(_, searches)] = store.calls
    assert sum(isinstance(s, SparseVector) for s in searches) == bm25_queries
