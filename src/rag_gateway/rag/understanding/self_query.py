"""Self-query: find the author a question is about, so retrieval can be scoped to that author."""

from __future__ import annotations

import json

import openai

from rag_gateway.clients.openai import structured_chat
from rag_gateway.resilience import UpstreamGuard

SYSTEM_PROMPT = (
    "You are an AI language model assistant. Your task is to extract information from a user question. "
    "The required information that needs to be extracted is the name of the person (author) whose content "
    "the question is about. Answer with JSON: the author's full name (e.g. John Doe), or null when the "
    "question does not name a person."
)
SCHEMA = {
    "type": "object",
    "properties": {"author": {"type": ["string", "null"]}},
    "required": ["author"],
    "additionalProperties": False,
}


def parse_author(content: str) -> str | None:
    """The author named by the model, or None for anything else (including junk)."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    author = data.get("author") if isinstance(data, dict) else None
    if not isinstance(author, str):
        return None
    author = " ".join(author.split())
    return author if author and author.lower() not in {"none", "null", "unknown"} else None


class SelfQuery:
    def __init__(self, client: openai.AsyncOpenAI, guard: UpstreamGuard, model: str) -> None:
        self._client = client
        self._guard = guard
        self._model = model

    async def extract_author(self, query: str) -> str | None:
        content = await structured_chat(
            self._client,
            self._guard,
            model=self._model,
            system=SYSTEM_PROMPT,
            user=query,
            schema_name="self_query",
            schema=SCHEMA,
            step="self-query",
        )
        return parse_author(content)
