"""Offline ingestion: Handbook data-warehouse exports -> cleaned, chunked, embedded points in Qdrant.

``rag-gateway ingest PATH...`` (see :mod:`rag_gateway.ingest.cli`) or :func:`ingest_paths` from code.
"""

from rag_gateway.ingest.chunking import chunk_article, chunk_text, split_sentences
from rag_gateway.ingest.cleaning import clean_text
from rag_gateway.ingest.cli import add_ingest_arguments, run_ingest
from rag_gateway.ingest.documents import (
    COLLECTION_BY_KIND,
    ArticleDocument,
    Document,
    DocumentKind,
    PostDocument,
    RepositoryDocument,
    load_documents,
)
from rag_gateway.ingest.errors import IngestError
from rag_gateway.ingest.ingest import ingest_paths
from rag_gateway.ingest.records import ChunkRecord, chunk_document, chunk_id
from rag_gateway.ingest.report import CollectionReport, IngestReport

__all__ = [
    "COLLECTION_BY_KIND",
    "ArticleDocument",
    "ChunkRecord",
    "CollectionReport",
    "Document",
    "DocumentKind",
    "IngestError",
    "IngestReport",
    "PostDocument",
    "RepositoryDocument",
    "add_ingest_arguments",
    "chunk_article",
    "chunk_document",
    "chunk_id",
    "chunk_text",
    "clean_text",
    "ingest_paths",
    "load_documents",
    "run_ingest",
    "split_sentences",
]
