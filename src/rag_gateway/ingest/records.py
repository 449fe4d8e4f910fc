"""From a validated document to the chunk records that get embedded and stored.

A chunk's id is ``uuid5(collection/document id/chunk index)``: the same input always maps to the same points,
so ingesting a file twice adds nothing, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rag_gateway.ingest.chunking import chunk_article, chunk_post, chunk_repository
from rag_gateway.ingest.cleaning import clean_text
from rag_gateway.ingest.documents import Document, DocumentKind, PostDocument
from rag_gateway.rag.retrieval.stores import AUTHOR_ID_KEY, AUTHOR_NAME_KEY

#: Fixed namespace for chunk ids; changing it would orphan every stored point.
CHUNK_ID_NAMESPACE = uuid.UUID("6f1d8a52-3c1e-5b7a-9a0e-2d4c6b8e1f30")

CONTENT_KEY = "content"
TITLE_KEY = "title"
LINK_KEY = "link"
PLATFORM_KEY = "platform"
DOCUMENT_ID_KEY = "document_id"
CHUNK_INDEX_KEY = "chunk_index"
TYPE_KEY = "type"
IMAGE_KEY = "image"

_CHUNKERS: dict[DocumentKind, Callable[[str], list[str]]] = {
    DocumentKind.ARTICLE: chunk_article,
    DocumentKind.POST: chunk_post,
    DocumentKind.REPOSITORY: chunk_repository,
}


def chunk_id(collection: str, document_id: str, index: int) -> str:
    return str(uuid.uuid5(CHUNK_ID_NAMESPACE, f"{collection}/{document_id}/{index}"))


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """One chunk ready to embed: where it goes, its id, its text and its payload."""

    id: str
    collection: str
    document_id: str
    index: int
    content: str
    payload: dict[str, Any]


def chunk_document(document: Document) -> list[ChunkRecord]:
    """Clean, chunk and label one document; empty after cleaning means no chunks."""
    chunks = _CHUNKERS[document.kind](clean_text(document.text()))
    collection = document.collection
    records = []
    for index, content in enumerate(chunks):
        payload: dict[str, Any] = {
            CONTENT_KEY: content,
            TITLE_KEY: document.title,
            LINK_KEY: document.link,
            PLATFORM_KEY: document.platform,
            AUTHOR_ID_KEY: document.author_id,
            AUTHOR_NAME_KEY: document.author_full_name,
            DOCUMENT_ID_KEY: document.id,
            CHUNK_INDEX_KEY: index,
            TYPE_KEY: document.kind.value,
        }
        if isinstance(document, PostDocument) and document.image:
            payload[IMAGE_KEY] = document.image
        records.append(
            ChunkRecord(
                id=chunk_id(collection, document.id, index),
                collection=collection,
                document_id=document.id,
                index=index,
                content=content,
                payload=payload,
            )
        )
    return records


def chunk_documents(documents: Iterable[Document]) -> list[ChunkRecord]:
    return [record for document in documents for record in chunk_document(document)]
