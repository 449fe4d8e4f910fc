"""What an ingest run did, per collection, and the one-paragraph summary the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CollectionReport:
    collection: str
    #: Documents read for this collection.
    documents: int
    #: Chunks those documents make.
    chunks: int
    #: Points added: the collection's count after minus before.
    new: int
    #: Chunks whose id was already stored: not embedded again (same document id and chunk index).
    skipped: int
    #: Documents with no text left after cleaning (so no chunks).
    empty_documents: int = 0
    count_before: int = 0
    count_after: int = 0

    def describe(self) -> str:
        noun = "document" if self.documents == 1 else "documents"
        detail = f"{self.new} new"
        if self.skipped:
            detail += f", {self.skipped} already stored"
        if self.empty_documents:
            detail += f", {self.empty_documents} empty after cleaning"
        return f"{self.documents} {noun} -> {self.chunks} chunks ({detail}) into {self.collection}"


@dataclass(frozen=True, slots=True)
class IngestReport:
    collections: tuple[CollectionReport, ...]
    seconds: float

    @property
    def documents(self) -> int:
        return sum(c.documents for c in self.collections)

    @property
    def chunks(self) -> int:
        return sum(c.chunks for c in self.collections)

    @property
    def new(self) -> int:
        return sum(c.new for c in self.collections)

    @property
    def skipped(self) -> int:
        return sum(c.skipped for c in self.collections)

    def get(self, collection: str) -> CollectionReport | None:
        return next((c for c in self.collections if c.collection == collection), None)

    def summary(self) -> str:
        """E.g. ``ingested 76 documents -> 812 chunks (812 new) into embedded_articles in 61.0 s``."""
        if not self.collections:
            return f"ingested nothing: the input holds no documents ({self.seconds:.1f} s)"
        parts = "; ".join(c.describe() for c in self.collections)
        return f"ingested {parts} in {self.seconds:.1f} s"
