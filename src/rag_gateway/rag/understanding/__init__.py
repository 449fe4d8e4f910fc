"""Query understanding: who the question is about (self-query) and how else to ask it (expansion)."""

from rag_gateway.rag.understanding.understanding import QueryUnderstanding, Understood

__all__ = ["QueryUnderstanding", "Understood"]
