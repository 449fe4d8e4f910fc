"""Conversations: a follow-up question rewritten into a standalone one, from the chat's earlier turns.

"How did she use them?" retrieves nothing useful on its own. When a chat request carries earlier turns, one
structured OpenAI call (the same client, retry policy and breaker as self-query) rewrites the last user
message into a question that stands alone ("How did Ada Quill use punched cards?"); that question then goes
through self-query, expansion and retrieval. A single-turn request never makes this call. The result is
cached per conversation text, like self-query and expansion; a failed, late or unusable rewrite leaves
the last message as it was (the pipeline reports the step ``rewrite`` as degraded).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import openai
from cachetools import TTLCache

from rag_gateway.clients.openai import structured_chat
from rag_gateway.errors import UpstreamBadResponseError
from rag_gateway.rag.tokens import TokenCounter
from rag_gateway.resilience import UpstreamGuard

SCHEMA_NAME = "standalone_question"
SYSTEM_PROMPT = (
    "You are an AI language model assistant. Your task is to rewrite the follow-up question at the end of a "
    "conversation into a standalone question that can be understood without the conversation: replace "
    "pronouns and references (it, its, they, she, this...) with what they refer to, and keep every name, "
    "title and term the question depends on. Do not answer the question. Answer with JSON: the standalone "
    "question."
)
SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}},
    "required": ["question"],
    "additionalProperties": False,
}
#: Tokens a turn's role label costs in a prompt ("User: ").
ROLE_TOKENS = 2


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of a chat, folded onto one line."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """What a chat request says besides its last user message: earlier turns (oldest first) and the
    client's system message."""

    history: tuple[Turn, ...] = ()
    system: str | None = None


NO_CONVERSATION = Conversation()


def fold(text: str) -> str:
    """``text`` on one line, without control characters: it cannot add lines to a prompt."""
    return " ".join("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).split())


def recent_history(turns: Sequence[Turn], budget_tokens: int, counter: TokenCounter) -> tuple[Turn, ...]:
    """The newest turns that fit in ``budget_tokens``, oldest first; older turns are dropped first.

    A newest turn that alone is over the budget keeps its end (the words nearest the question).
    """
    kept: list[Turn] = []
    left = budget_tokens
    for turn in reversed(turns):
        cost = counter.count(turn.text) + ROLE_TOKENS
        if cost <= left:
            kept.append(turn)
            left -= cost
            continue
        if not kept:
            text = counter.truncate(turn.text, left - ROLE_TOKENS)
            if text:
                kept.append(Turn(turn.role, text))
        break
    return tuple(reversed(kept))


def transcript(history: Sequence[Turn], question: str) -> str:
    """The rewrite call's user message: the turns, one per line, then the follow-up question."""
    lines = ["Conversation:", *(f"{turn.role}: {turn.text}" for turn in history)]
    return "\n".join([*lines, "", f"Follow-up question: {fold(question)}"])


def parse_question(content: str, max_chars: int) -> str:
    """The standalone question the model wrote; anything else (junk, blank, too long) is an upstream error."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    question = data.get("question") if isinstance(data, dict) else None
    question = fold(question) if isinstance(question, str) else ""
    if not question or len(question) > max_chars:
        raise UpstreamBadResponseError(
            "question rewrite: the language model API sent an unusable answer", upstream="openai"
        )
    return question


class ConversationRewriter:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        guard: UpstreamGuard,
        model: str,
        *,
        max_chars: int,
        cache_size: int = 0,
        cache_ttl_s: float = 600.0,
    ) -> None:
        self._client = client
        self._guard = guard
        self._model = model
        self._max_chars = max_chars
        self._cache: TTLCache[str, str] | None = (
            TTLCache(maxsize=cache_size, ttl=cache_ttl_s) if cache_size > 0 else None
        )

    async def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        """``question`` as a standalone question, given the earlier ``history``."""
        user = transcript(history, question)
        if self._cache is not None and (cached := self._cache.get(user)) is not None:
            return cached
        content = await structured_chat(
            self._client,
            self._guard,
            model=self._model,
            system=SYSTEM_PROMPT,
            user=user,
            schema_name=SCHEMA_NAME,
            schema=SCHEMA,
            step="question rewrite",
        )
        rewritten = parse_question(content, self._max_chars)
        if self._cache is not None:
            self._cache[user] = rewritten
        return rewritten
