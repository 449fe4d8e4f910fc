"""The emulated models' behaviour: deterministic, rule-based stand-ins for GPT and the TGI-served LLM.

Kept apart from the HTTP code so the rules can be read and tested on their own. Every function is pure:
the same input always gives the same output, which keeps end-to-end tests reproducible.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

# --- self-query: a person's name in a question -------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Capitalised words that start questions or instructions, or are function words: never part of a name.
STOP_WORDS = _words(
    """
    what how which who whom whose why when where can could would should will shall may might must does do
    did is are was were has have had tell write explain summarize summarise give show list describe compare
    find create draft generate please hey hi hello the a an i in on at of for to from with about by and or
    but if then my me we our you your it its this that these those there here some any all also not no yes
    let lets based using according between versus vs after before during since new ok okay thanks
    monday tuesday wednesday thursday friday saturday sunday january february march april june july
    august september october november december
    """
)
#: Capitalised technology and product words that look like names but are not people.
PRODUCT_WORDS = _words(
    """
    llm llms rag ai api apis gpt chatgpt openai python rust java javascript typescript docker kubernetes aws
    sagemaker qdrant mongodb langchain llamaindex llama mistral hugging face pytorch tensorflow transformer
    transformers retrieval augmented generation machine learning deep neural network networks language
    model models large vector vectors database databases engineer engineers engineering handbook twin
    linkedin medium github substack google microsoft amazon meta nvidia
    """
)
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_POSSESSIVE = re.compile(r"['’]s$")


def _name_word(token: str) -> str | None:
    """``token`` without a possessive if it can be part of a name: Capitalised, not all upper-case."""
    word = _POSSESSIVE.sub("", token)
    if not word or not word[0].isupper() or not any(c.islower() for c in word):
        return None
    if word.lower() in STOP_WORDS or word.lower() in PRODUCT_WORDS:
        return None
    return word


def find_person_name(text: str) -> str | None:
    """The first run of 2-4 adjacent Capitalised words (a person's full name), or None.

    Words must be separated by spaces only (punctuation ends a run); question/stop words, product words
    and upper-case acronyms (LLM, RAG, AI) never count. "What did Ada Lovelace write?" -> "Ada Lovelace".
    """
    run: list[str] = []
    last_end = 0
    for match in _WORD.finditer(text):
        token = match.group()
        word = _name_word(token)
        if word is None or (run and not text[last_end : match.start()].isspace()):
            if 2 <= len(run) <= 4:
                return " ".join(run)
            run = []
        if word is not None:
            run.append(word)
            if word != token:  # a possessive ("Paul Iusztin's") ends the name
                if 2 <= len(run) <= 4:
                    return " ".join(run)
                run = []
        last_end = match.end()
    return " ".join(run) if 2 <= len(run) <= 4 else None


# --- query expansion ----------------------------------------------------------------------------------

DEFAULT_EXPANSIONS = 2
MAX_EXPANSIONS = 20
_GENERATE_N = re.compile(r"\bgenerate\s+(\d+)\b", re.IGNORECASE)
_TEMPLATES = (
    "In other words: {question}",
    "Explain {core}",
    "What is known about {core}?",
    "Give an overview of {core}",
    "Which sources discuss {core}?",
    "Summarize what has been written on {core}",
    "Key points: {core}",
    "From a different angle: {question}",
)


def expansion_count(texts: list[str], schema: Any = None) -> int:
    """How many alternatives were asked for: "generate N" in the prompts, else the schema's maxItems."""
    for text in texts:
        match = _GENERATE_N.search(text)
        if match:
            return min(int(match.group(1)), MAX_EXPANSIONS)
    if isinstance(schema, dict):
        queries = schema.get("properties", {}).get("queries", {})
        max_items = queries.get("maxItems") if isinstance(queries, dict) else None
        if isinstance(max_items, int) and not isinstance(max_items, bool) and max_items >= 0:
            return min(max_items, MAX_EXPANSIONS)
    return DEFAULT_EXPANSIONS


def expand_query(question: str, count: int) -> list[str]:
    """``count`` distinct, deterministic rephrasings of ``question``."""
    question = " ".join(question.split()) or "the question"
    core = question.rstrip("?!. ") or question
    first, _, rest = core.partition(" ")
    if first.lower() in STOP_WORDS:  # "What did ..." reads better as "Explain what did ..."
        core = f"{first.lower()} {rest}".strip()
    out = [template.format(question=question, core=core) for template in _TEMPLATES[:count]]
    out.extend(f"Variation {i + 1}: {question}" for i in range(len(out), count))
    return out


# --- the TGI-served LLM -------------------------------------------------------------------------------


class TGIValidationError(ValueError):
    """A request TGI rejects with 422; ``str()`` is TGI's message."""

    def body(self) -> str:
        """TGI's JSON error body, as the container sends it."""
        return json.dumps({"error": str(self), "error_type": "validation"})


#: TGI's own default when a request gives no ``max_new_tokens`` (recent TGI derives it, capped at 1024).
DEFAULT_MAX_NEW_TOKENS = 1024
#: TGI's default ``--max-stop-sequences``.
MAX_STOP_SEQUENCES = 4
SNIPPET_CHARS = 200
U64_MAX = 2**64 - 1


@dataclass(frozen=True)
class TGIRequest:
    inputs: str
    max_new_tokens: int
    return_full_text: bool
    #: Stop sequences: generation ends once the text ends with one (it stays in the text, as in TGI).
    stop: tuple[str, ...] = ()
    #: Answer with ``details`` (finish reason, token counts) / the prompt's tokens (``prefill``).
    details: bool = False
    decoder_input_details: bool = False
    #: ``grammar``'s JSON schema: the answer is a JSON instance of it.
    json_schema: dict[str, Any] | None = None
    seed: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict, compare=False)


def _number(parameters: dict[str, Any], name: str) -> float | None:
    value = parameters.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TGIValidationError(
            f"Failed to deserialize the JSON body into the target type: parameters.{name}: invalid type"
        )
    return float(value)


def _positive(parameters: dict[str, Any], name: str) -> float | None:
    """``_number``, refused unless strictly positive."""
    value = _number(parameters, name)
    if value is not None and value <= 0:
        raise TGIValidationError(f"Input validation error: `{name}` must be strictly positive")
    return value


def _deserialize_error(what: str) -> TGIValidationError:
    return TGIValidationError(f"Failed to deserialize the JSON body into the target type: parameters.{what}")


def _stop(parameters: dict[str, Any]) -> tuple[str, ...]:
    stop = parameters.get("stop")
    if stop is None:
        return ()
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _deserialize_error("stop: invalid type: expected a sequence of strings")
    if len(stop) > MAX_STOP_SEQUENCES:
        raise TGIValidationError(
            f"Input validation error: `stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. "
            f"Given: {len(stop)}"
        )
    return tuple(stop)


def _grammar(parameters: dict[str, Any]) -> dict[str, Any] | None:
    """TGI's ``grammar``: ``{"type": "json" | "json_object", "value": schema}`` (``regex`` is not
    emulated); the schema must be an object schema with ``properties``, as TGI's router demands."""
    grammar = parameters.get("grammar")
    if grammar is None:
        return None
    if not isinstance(grammar, dict) or grammar.get("type") not in {"json", "json_object", "regex"}:
        raise _deserialize_error("grammar: unknown variant, expected one of `json`, `regex`, `json_schema`")
    if grammar["type"] == "regex":
        raise TGIValidationError("Input validation error: grammar is not supported")  # not emulated
    value = grammar.get("value")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise TGIValidationError(f"Input validation error: grammar is not valid: {exc}") from None
    if not isinstance(value, dict):
        raise TGIValidationError("Input validation error: grammar is not supported")
    if "properties" not in value:
        raise TGIValidationError(
            "Input validation error: grammar is not valid: Grammar must have a 'properties' field"
        )
    return value


def parse_tgi_request(payload: Any) -> TGIRequest:
    """Validate a ``/generate``-style payload the way TGI's router does, or raise ``TGIValidationError``."""
    if not isinstance(payload, dict):
        raise TGIValidationError(
            "Failed to deserialize the JSON body into the target type: expected a JSON object"
        )
    inputs = payload.get("inputs")
    if not isinstance(inputs, str):
        what = "missing field `inputs`" if inputs is None else "inputs: invalid type, expected a string"
        raise TGIValidationError(f"Failed to deserialize the JSON body into the target type: {what}")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise TGIValidationError("Failed to deserialize the JSON body into the target type: parameters")
    for flag in ("do_sample", "details", "decoder_input_details", "return_full_text"):
        if flag in parameters and parameters[flag] is not None and not isinstance(parameters[flag], bool):
            raise _deserialize_error(f"{flag}: invalid type: expected a boolean")
    _positive(parameters, "temperature")
    _positive(parameters, "repetition_penalty")
    frequency_penalty = _number(parameters, "frequency_penalty")
    if frequency_penalty is not None and not -2 <= frequency_penalty <= 2:
        raise TGIValidationError("Input validation error: `frequency_penalty` must be >= -2.0 and <= 2.0")
    top_p = _number(parameters, "top_p")
    if top_p is not None and not 0 < top_p < 1:
        raise TGIValidationError("Input validation error: `top_p` must be > 0.0 and < 1.0")
    _positive(parameters, "top_k")
    max_new_tokens = _positive(parameters, "max_new_tokens")
    seed = parameters.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= U64_MAX):
        raise _deserialize_error("seed: invalid value: expected u64")
    stop = _stop(parameters)
    decoder_input_details = parameters.get("decoder_input_details") is True
    if decoder_input_details and payload.get("stream") is True:
        raise TGIValidationError(
            "Input validation error: `decoder_input_details` == true is not supported when streaming tokens"
        )
    json_schema = _grammar(parameters)
    if not inputs:
        raise TGIValidationError("Input validation error: `inputs` cannot be empty")
    return TGIRequest(
        inputs=inputs,
        max_new_tokens=int(max_new_tokens) if max_new_tokens is not None else DEFAULT_MAX_NEW_TOKENS,
        return_full_text=parameters.get("return_full_text") is True,
        stop=stop,
        details=parameters.get("details") is True,
        decoder_input_details=decoder_input_details,
        json_schema=json_schema,
        seed=seed,
        parameters=dict(parameters),
    )


@dataclass(frozen=True)
class Chunk:
    author: str
    platform: str
    content: str


_QUERY = re.compile(r"^User query:[ \t]*(.*)$", re.MULTILINE)
_CONTEXT = re.compile(r"^Context:", re.MULTILINE)
#: The gateway's instruction asks for numbered citations; the emulated model then cites like ``[1]``.
_ASKS_FOR_CITATIONS = re.compile(r"\bcite\b.*\[1\]", re.IGNORECASE)
_CHUNK = re.compile(
    r"Chunk \d+:\s*\nType:[^\n]*\nPlatform:[ \t]*(?P<platform>[^\n]*)\nAuthor:[ \t]*(?P<author>[^\n]*)\n"
    r"Content:[ \t]*(?P<content>.*?)(?=\n\s*Chunk \d+:\s*\n|\Z)",
    re.DOTALL,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def parse_prompt(prompt: str, max_chunks: int | None = None) -> tuple[str, list[Chunk]]:
    """The user query and the context chunks (the first ``max_chunks``) of a prompt laid out like the LLM
    Engineer's Handbook's."""
    query_match = _QUERY.search(prompt)
    query = query_match.group(1).strip() if query_match else ""
    context_match = _CONTEXT.search(prompt)  # the section's own line, never "Context:" inside a turn
    context = prompt[context_match.end() :] if context_match else prompt.partition("Context:")[2]
    chunks = [
        Chunk(m["author"].strip(), m["platform"].strip(), " ".join(m["content"].split()))
        for m in itertools.islice(_CHUNK.finditer(context), max_chunks)
    ]
    return query, chunks


def _snippet(content: str) -> str:
    sentence = _SENTENCE_END.split(content, maxsplit=1)[0]
    if len(sentence) <= SNIPPET_CHARS:
        return sentence
    return sentence[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "..."


def _source(chunk: Chunk) -> str:
    author = chunk.author or "an unnamed author"
    return f"{author} ({chunk.platform})" if chunk.platform else author


def grounded_answer(prompt: str) -> str:
    """The emulated model's whole answer to a Handbook-style prompt (before any limit cuts it)."""
    query, chunks = parse_prompt(prompt, max_chunks=2)  # the answer cites the first two at most
    if not chunks:
        about = f' "{query}"' if query else " this request"
        return f"The provided context is empty, so there is nothing to ground an answer to{about} in."
    cites = bool(_ASKS_FOR_CITATIONS.search(prompt.split("\n", 1)[0]))
    first = chunks[0]
    answer = f"According to {_source(first)}: {_snippet(first.content) or '(no content)'}"
    if cites:
        answer += " [1]"
    if len(chunks) > 1:
        answer += f" See also {_source(chunks[1])}" + (" [2]." if cites else ".")
    return answer


@dataclass(frozen=True)
class Generation:
    """A generation: the token texts, TGI's final ``generated_text`` and why it stopped."""

    tokens: list[str]
    generated_text: str
    #: TGI's ``finish_reason``: ``length`` (cut at ``max_new_tokens``), ``stop_sequence`` or ``eos_token``.
    finish_reason: str


def _tokens(request: TGIRequest) -> tuple[list[str], str]:
    """The answer's tokens (a word each, its leading space included) and TGI's finish reason.

    Generation stops at whichever comes first: ``max_new_tokens`` tokens, or a token that completes a stop
    sequence (the text then ends with it, as TGI leaves it).
    """
    answer = grounded_answer(request.inputs)
    if request.json_schema is not None:
        answer = json.dumps(json_instance(request.json_schema, answer))
    words = answer.split(" ")
    tokens = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    ends = [s for s in (answer.find(stop) + len(stop) for stop in request.stop if stop in answer)]
    if ends:
        stop_at, seen = min(ends), 0
        for index, token in enumerate(tokens):
            seen += len(token)
            if seen >= stop_at:
                tokens = [*tokens[:index], token[: len(token) - (seen - stop_at)]]
                break
    if len(tokens) > request.max_new_tokens:
        return tokens[: request.max_new_tokens], "length"
    return tokens, "stop_sequence" if ends else "eos_token"


def generate_stream(request: TGIRequest) -> Generation:
    """An answer grounded in the prompt's first chunks (a JSON instance of ``grammar``'s schema when one is
    given), one word per token.

    The tokens never include the prompt; ``generated_text`` does with ``return_full_text``, as in TGI.
    """
    tokens, finish_reason = _tokens(request)
    answer = "".join(tokens)
    text = f"{request.inputs}\n{answer}" if request.return_full_text else answer
    return Generation(tokens, text, finish_reason)


def generate(request: TGIRequest) -> str:
    """TGI's ``generated_text`` (see ``generate_stream``)."""
    return generate_stream(request).generated_text


def prompt_tokens(inputs: str) -> list[str]:
    """The prompt as the emulated tokenizer splits it: a beginning-of-sequence token, then word pieces."""
    return ["<s>", *split_tokens(inputs)]


def token_details(text: str, index: int) -> dict[str, Any]:
    """A TGI ``Token`` object, derived from the text so the same answer always has the same details."""
    digest = zlib.crc32(text.encode("utf-8"))
    return {
        "id": 3 + digest % 32000,
        "text": text,
        "logprob": None if index == 0 else -round(0.01 + (digest >> 16) % 500 / 1000, 3),
        "special": False,
    }


def details(request: TGIRequest, generation: Generation) -> dict[str, Any]:
    """TGI's ``details`` of a whole answer: ``prefill`` only with ``decoder_input_details``."""
    prefill = prompt_tokens(request.inputs) if request.decoder_input_details else []
    return {
        "finish_reason": generation.finish_reason,
        "generated_tokens": len(generation.tokens),
        "seed": request.seed,
        "prefill": [
            {k: v for k, v in token_details(t, i).items() if k != "special"} for i, t in enumerate(prefill)
        ],
        "tokens": [token_details(t, i + 1) for i, t in enumerate(generation.tokens)],
    }


# --- structured output: a JSON instance of a schema -------------------------------------------------------

MAX_SCHEMA_DEPTH = 8
_STRING_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "ada@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def json_instance(schema: Any, text: str = "", root: Any = None, depth: int = 0) -> Any:
    """A deterministic, minimal instance of a JSON schema: the first enum value or const, each
    property of an object, ``minItems`` items of an array, the smallest allowed number, and for strings the
    first words of ``text`` (the grounded answer) fitted to the length limits. A schema with no
    properties that allows any (``json_object``) gets ``{"answer": text}``.
    """
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return json_instance(target, text, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return json_instance((usable or options)[0], text, root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged |= part
        return json_instance(merged, text, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else "string" if text else None
    if kind == "object":
        properties = schema.get("properties")
        if isinstance(properties, dict) and properties:
            return {name: json_instance(sub, text, root, depth + 1) for name, sub in properties.items()}
        return {"answer": text} if schema.get("additionalProperties", True) is not False else {}
    if kind == "array":
        min_items = schema.get("minItems")
        count = min_items if isinstance(min_items, int) else 0
        return [json_instance(schema.get("items"), text, root, depth + 1) for _ in range(min(count, 10))]
    if kind == "string":
        return _string_instance(schema, text)
    if kind in ("integer", "number"):
        return _number_instance(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    return None


def _string_instance(schema: dict[str, Any], text: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _STRING_FORMATS:
        return _STRING_FORMATS[fmt]
    value = " ".join(text.split()[:12]) or "answer"
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and max_length >= 0:
        value = value[:max_length]
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value.ljust(min(min_length, 10_000), "x")
    return value


def _number_instance(schema: dict[str, Any], *, integer: bool) -> int | float:
    value: float = 0
    for bound, strict in (("minimum", False), ("exclusiveMinimum", True)):
        limit = schema.get(bound)
        if isinstance(limit, int | float) and not isinstance(limit, bool) and value <= limit:
            value = limit + (1 if strict else 0)
    for bound, strict in (("maximum", False), ("exclusiveMaximum", True)):
        limit = schema.get(bound)
        if isinstance(limit, int | float) and not isinstance(limit, bool) and value >= limit:
            value = limit - (1 if strict else 0)
    return math.ceil(value) if integer else value


# --- conversations: a follow-up rewritten to stand alone ----------------------------------------------------

_TURN = re.compile(r"^(user|assistant):[ \t]*(.*)$", re.MULTILINE)
_FOLLOW_UP = re.compile(r"^Follow-up question:[ \t]*(.*)$", re.MULTILINE)
_TOPIC_AFTER = re.compile(r"\b(?:about|on|regarding|of)\s+", re.IGNORECASE)
_THINGS = frozenset({"it", "this", "that", "they", "them"})
_THINGS_POSSESSIVE = frozenset({"its", "their"})
_PEOPLE = frozenset({"he", "she", "him"})
_PEOPLE_POSSESSIVE = frozenset({"his", "hers"})
_PRONOUN = re.compile(
    r"\b(it|its|this|that|they|them|their|he|she|him|his|her|hers)\b(\s+\w+)?", re.IGNORECASE
)


def topic_of(question: str) -> str | None:
    """What a question is about: the words after its last "about"/"on"/"regarding"/"of", or its last
    words that are not function words ("the poke test" in "What is the poke test?")."""
    text = question.strip().rstrip("?!. ")
    last_end = None
    for keyword in _TOPIC_AFTER.finditer(text):
        last_end = keyword.end()
    if last_end is not None and text[last_end:].strip():
        return text[last_end:].strip()
    words = text.split()
    tail: list[str] = []
    for word in reversed(words):
        if word.lower() in STOP_WORDS:
            break
        tail.insert(0, word)
    return " ".join(tail) or None


def _possessive(noun: str) -> str:
    return f"{noun}'" if noun.endswith("s") else f"{noun}'s"


def rewrite_follow_up(history: list[tuple[str, str]], question: str) -> str:
    """The follow-up ``question`` made to stand alone, from the conversation's earlier turns.

    A person pronoun (he, she, him, his, her) becomes the most recent person's name in the history; a thing
    pronoun (it, its, this, that, they, them, their) the topic of the previous user question.
    """
    users = [text for role, text in history if role == "user"]
    name = next(
        (found for _, text in reversed(history) if (found := find_person_name(text))),
        None,
    )
    topic = topic_of(users[-1]) if users else None

    def replace(match: re.Match[str]) -> str:
        word, following = match.group(1), match.group(2) or ""
        lower = word.lower()
        if lower in _PEOPLE and name:
            return name + following
        if lower in _PEOPLE_POSSESSIVE and name:
            return _possessive(name) + following
        if lower == "her" and name:  # "her articles" (possessive) or "about her" (object)
            next_word = following.strip().lower()
            owned = next_word and next_word not in STOP_WORDS
            return (_possessive(name) if owned else name) + following
        if lower in _THINGS and topic:
            return topic + following
        if lower in _THINGS_POSSESSIVE and topic:
            return _possessive(topic) + following
        return match.group(0)

    return " ".join(_PRONOUN.sub(replace, question).split())


def parse_transcript(text: str) -> tuple[list[tuple[str, str]], str]:
    """The gateway's rewrite request: ``role: text`` lines, then ``Follow-up question: ...``."""
    follow_up = _FOLLOW_UP.search(text)
    before = text[: follow_up.start()] if follow_up else text
    turns = [(m.group(1), m.group(2).strip()) for m in _TURN.finditer(before)]
    return turns, follow_up.group(1).strip() if follow_up else text.strip()


_PIECE = re.compile(r"\s*\S+")


def split_tokens(text: str) -> list[str]:
    """``text`` in word-sized pieces (leading whitespace kept) that join back to exactly ``text``."""
    pieces = _PIECE.findall(text)
    rest = text[sum(len(p) for p in pieces) :]
    if rest:
        if pieces:
            pieces[-1] += rest
        else:
            pieces = [rest]
    return pieces
