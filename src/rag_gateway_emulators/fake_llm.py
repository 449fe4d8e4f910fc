"""The emulated models' behaviour: deterministic, rule-based stand-ins for GPT and the TGI-served LLM.

Kept apart from the HTTP code so the rules can be read and tested on their own. Every function is pure:
the same input always gives the same output, which keeps end-to-end tests reproducible.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
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
SNIPPET_CHARS = 200


@dataclass(frozen=True)
class TGIRequest:
    inputs: str
    max_new_tokens: int
    return_full_text: bool


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
    _positive(parameters, "temperature")
    _positive(parameters, "repetition_penalty")
    top_p = _number(parameters, "top_p")
    if top_p is not None and not 0 < top_p < 1:
        raise TGIValidationError("Input validation error: `top_p` must be > 0.0 and < 1.0")
    _positive(parameters, "top_k")
    max_new_tokens = _positive(parameters, "max_new_tokens")
    if not inputs:
        raise TGIValidationError("Input validation error: `inputs` cannot be empty")
    return TGIRequest(
        inputs=inputs,
        max_new_tokens=int(max_new_tokens) if max_new_tokens is not None else DEFAULT_MAX_NEW_TOKENS,
        return_full_text=parameters.get("return_full_text") is True,
    )


@dataclass(frozen=True)
class Chunk:
    author: str
    platform: str
    content: str


_QUERY = re.compile(r"^User query:[ \t]*(.*)$", re.MULTILINE)
_CHUNK = re.compile(
    r"Chunk \d+:\s*\nType:[^\n]*\nPlatform:[ \t]*(?P<platform>[^\n]*)\nAuthor:[ \t]*(?P<author>[^\n]*)\n"
    r"Content:[ \t]*(?P<content>.*?)(?=\n\s*Chunk \d+:\s*\n|\Z)",
    re.DOTALL,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def parse_prompt(prompt: str) -> tuple[str, list[Chunk]]:
    """The user query and the context chunks of a prompt laid out like the LLM Engineer's Handbook's."""
    query_match = _QUERY.search(prompt)
    query = query_match.group(1).strip() if query_match else ""
    _, _, context = prompt.partition("Context:")
    chunks = [
        Chunk(m["author"].strip(), m["platform"].strip(), " ".join(m["content"].split()))
        for m in _CHUNK.finditer(context)
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


def _answer_words(request: TGIRequest) -> tuple[list[str], bool]:
    """The answer's words, cut to ``max_new_tokens``, and whether the cut happened."""
    query, chunks = parse_prompt(request.inputs)
    if not chunks:
        about = f' "{query}"' if query else " this request"
        answer = f"The provided context is empty, so there is nothing to ground an answer to{about} in."
    else:
        first = chunks[0]
        answer = f"According to {_source(first)}: {_snippet(first.content) or '(no content)'}"
        if len(chunks) > 1:
            answer += f" See also {_source(chunks[1])}."
    words = answer.split(" ")
    if len(words) > request.max_new_tokens:
        return words[: request.max_new_tokens], True
    return words, False


def generate(request: TGIRequest) -> str:
    """TGI's ``generated_text``: an answer grounded in the prompt's first chunks.

    Cut to ``max_new_tokens`` words; with ``return_full_text`` the prompt comes first, as TGI does.
    """
    words, _ = _answer_words(request)
    answer = " ".join(words)
    return f"{request.inputs}\n{answer}" if request.return_full_text else answer


@dataclass(frozen=True)
class Generation:
    """A streamed generation: the token texts, TGI's final ``generated_text`` and why it stopped."""

    tokens: list[str]
    generated_text: str
    #: TGI's ``finish_reason``: ``length`` (cut at ``max_new_tokens``) or ``eos_token``.
    finish_reason: str


def generate_stream(request: TGIRequest) -> Generation:
    """The same answer as ``generate``, one word per token (a word's leading space belongs to it).

    The tokens never include the prompt; ``generated_text`` does with ``return_full_text``, as in TGI.
    """
    words, cut = _answer_words(request)
    tokens = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    return Generation(tokens, generate(request), "length" if cut else "eos_token")


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
