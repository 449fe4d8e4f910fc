"""The LLM prompt, as the LLM Engineer's Handbook builds it: an instruction, the query, chunk blocks."""

from __future__ import annotations

from collections.abc import Sequence

from rag_gateway.rag.retrieval.stores import Hit

INSTRUCTION = (
    "You are a content creator. Write what the user asked you to while using the provided context as the "
    "primary source of information for the content."
)


def build_context(hits: Sequence[Hit]) -> str:
    blocks = []
    for number, hit in enumerate(hits, start=1):
        payload = hit.payload
        blocks.append(
            f"Chunk {number}:\n"
            f"Type: {payload.get('type', hit.collection.removeprefix('embedded_').rstrip('s'))}\n"
            f"Platform: {payload.get('platform', '')}\n"
            f"Author: {payload.get('author_full_name', '')}\n"
            f"Content: {payload.get('content', '')}\n"
        )
    return "\n".join(blocks)


def build_prompt(query: str, hits: Sequence[Hit]) -> str:
    """The query is folded onto its one line: whatever it says, it cannot add an instruction, a
    ``Context:`` section or a chunk of its own to the prompt's structure."""
    one_line_query = " ".join(query.split())
    return f"{INSTRUCTION}\nUser query: {one_line_query}\nContext: {build_context(hits)}"
