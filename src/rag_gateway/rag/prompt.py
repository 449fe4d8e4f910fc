"""The LLM prompt, as the LLM Engineer's Handbook builds it: an instruction, the query, chunk blocks.

Two additions: the instruction asks the model to cite the numbered chunks (``[1]``), which match the
numbered ``Sources:`` list an answer can carry; and a chat's system message and recent turns, each folded
onto its own labelled line between the instruction and the query.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag_gateway.rag.retrieval.stores import Hit
from rag_gateway.rag.understanding.conversation import NO_CONVERSATION, Conversation, fold

INSTRUCTION = (
    "You are a content creator. Write what the user asked you to while using the provided context as the "
    "primary source of information for the content. Cite the chunks you use by their number in square "
    "brackets, like [1]."
)
ROLE_LABELS = {"user": "User", "assistant": "Assistant"}


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


def build_prompt(query: str, hits: Sequence[Hit], conversation: Conversation = NO_CONVERSATION) -> str:
    """The query is folded onto its one line: whatever it says, it cannot add an instruction, a
    ``Context:`` section or a chunk of its own to the prompt's structure. So are the system message and
    each earlier turn (``conversation.history``, already cut to the history budget)."""
    lines = [INSTRUCTION]
    if conversation.system:
        lines.append(f"System message: {fold(conversation.system)}")
    if conversation.history:
        lines.append("Conversation so far:")
        lines.extend(f"{ROLE_LABELS[turn.role]}: {fold(turn.text)}" for turn in conversation.history)
    lines.append(f"User query: {fold(query)}")
    return "\n".join(lines) + f"\nContext: {build_context(hits)}"


def citation_list(hits: Sequence[Hit]) -> str:
    """The numbered sources appended to an answer (``\n\nSources:\n[1] Title — link``); '' without any.

    The numbers are the prompt's chunk numbers, so a model's ``[2]`` points at the second line.
    """
    lines = []
    for number, hit in enumerate(hits, start=1):
        payload = hit.payload
        title = payload.get("title") or payload.get("name")
        if not title:
            author, platform = payload.get("author_full_name"), payload.get("platform")
            title = f"{author} ({platform})" if author and platform else author or hit.collection
        link = payload.get("link")
        lines.append(f"[{number}] {fold(str(title))}" + (f" — {link}" if link else ""))
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""
