"""Query expansion: alternative phrasings of the question, so vector search sees several angles."""

from __future__ import annotations

import json

import openai

from rag_gateway.clients.openai import structured_chat
from rag_gateway.resilience import UpstreamGuard

SYSTEM_PROMPT = (
    "You are an AI language model assistant. Your task is to generate {n} different versions of the given "
    "user question to retrieve relevant documents from a vector database. By generating multiple "
    "perspectives on the user question, your goal is to help the user overcome some of the limitations of "
    "the distance-based similarity search. Answer with JSON: a list of {n} alternative questions."
)


def expansion_schema(n: int) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {"queries": {"type": "array", "items": {"type": "string"}, "maxItems": n}},
        "required": ["queries"],
        "additionalProperties": False,
    }


def parse_expansions(content: str, original: str, wanted: int) -> list[str]:
    """Up to ``wanted`` distinct, non-empty alternatives; a model that sent junk yields none."""
    try:
        data = json.loads(content)
    except ValueError:
        return []
    raw = data.get("queries") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        return []
    seen = {original.strip().lower()}
    queries: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            continue
        text = " ".join(item.split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            queries.append(text)
        if len(queries) == wanted:
            break
    return queries


class QueryExpander:
    def __init__(
        self, client: openai.AsyncOpenAI, guard: UpstreamGuard, model: str, total_queries: int
    ) -> None:
        self._client = client
        self._guard = guard
        self._model = model
        self.alternatives = total_queries - 1
        # built once: every request sends the same instruction and schema
        self._system = SYSTEM_PROMPT.format(n=self.alternatives)
        self._schema = expansion_schema(self.alternatives)

    async def expand(self, query: str) -> list[str]:
        """The original query first, then up to N-1 alternatives."""
        if self.alternatives <= 0:
            return [query]
        content = await structured_chat(
            self._client,
            self._guard,
            model=self._model,
            system=self._system,
            user=query,
            schema_name="query_expansion",
            schema=self._schema,
            step="query expansion",
        )
        return [query, *parse_expansions(content, query, self.alternatives)]
