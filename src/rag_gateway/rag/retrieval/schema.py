"""The shape of an index: what a collection's vectors are and how they were made from a chunk.

Documents and queries must be turned into vectors the same way, so every collection records the schema it
was built with, and the gateway refuses (with the command that rebuilds it) an index of another shape
rather than mixing vectors silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rag_gateway.config import (
    DEFAULT_EMBEDDING_VARIANT,
    OFFLINE_EMBEDDING_MODEL_ID,
    Settings,
    embedding_model_name,
)


@dataclass(frozen=True, slots=True)
class Bm25Params:
    """BM25's knobs; recorded in each collection's schema, since documents and queries must share them."""

    k: float = 1.2
    b: float = 0.75
    #: Average document length in tokens, for length normalisation (chunks are 1,000-2,000 characters).
    avg_len: float = 256.0
    language: str = "english"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


#: Bump when the stored vectors change meaning (names, distance, what text they are computed from).
SCHEMA_VERSION = 2
#: The model of every index whose schema was recorded before schemas named their model.
LEGACY_EMBEDDING_MODEL = OFFLINE_EMBEDDING_MODEL_ID


@dataclass(frozen=True)
class IndexSchema:
    dim: int
    version: int = SCHEMA_VERSION
    #: What the dense vector embeds: the chunk's text alone, or prefixed by its document's title.
    dense_text: str = "content"
    #: What the BM25 vector counts.
    sparse_text: str = "title+content"
    bm25: Bm25Params = field(default_factory=Bm25Params)
    #: The model the dense vectors come from (``Settings.embedding_model_name``; default: the default
    #: settings'). Schemas recorded before this field existed were all made by the offline int8 model, so a
    #: missing value reads as that.
    embedding_model: str = embedding_model_name(OFFLINE_EMBEDDING_MODEL_ID, DEFAULT_EMBEDDING_VARIANT)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe_difference(self, recorded: dict[str, Any] | None) -> str | None:
        """None when ``recorded`` is this schema; else a short account of how it differs."""
        if recorded is None:
            return "it records no schema (built by an earlier version, dense vectors only)"
        mine = self.as_dict()
        recorded = {"embedding_model": LEGACY_EMBEDDING_MODEL, **recorded}
        changed = sorted(key for key in mine.keys() | recorded.keys() if mine.get(key) != recorded.get(key))
        if not changed:
            return None
        return "its " + ", ".join(
            f"{key} is {recorded.get(key)!r} (now {mine.get(key)!r})" for key in changed
        )


def chunk_texts(schema: IndexSchema, title: str | None, content: str) -> tuple[str, str]:
    """The texts a chunk's dense and BM25 vectors are computed from, as the schema says."""

    def text(recipe: str) -> str:
        return f"{title}\n{content}" if recipe == "title+content" and title else content

    return text(schema.dense_text), text(schema.sparse_text)


def index_schema(settings: Settings, dim: int) -> IndexSchema:
    """The schema the settings ask for: the model and the text recipes are settings, BM25's parameters are
    fixed."""
    return IndexSchema(
        dim,
        dense_text=settings.index_dense_text,
        sparse_text=settings.index_sparse_text,
        embedding_model=settings.embedding_model_name,
    )
