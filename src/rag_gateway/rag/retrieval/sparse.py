"""BM25 sparse vectors, computed in the gateway so both store backends index and query the same ones.

qdrant-edge's `Bm25` is Qdrant's own tokenizer, stopwords, stemmer and term weighting (the server's BM25
inference uses the same config), runs in Rust with no model files to download, and costs about a
microsecond per query. Token ids are hashes, so no vocabulary is kept; the IDF part of BM25 is applied by
the store at query time (sparse vectors indexed with the IDF modifier), over each collection's own points.
"""

from __future__ import annotations

import qdrant_edge as edge

from rag_gateway.rag.retrieval.schema import Bm25Params
from rag_gateway.rag.retrieval.stores.base import SparseVector


class SparseEncoder:
    def __init__(self, params: Bm25Params | None = None) -> None:
        self.params = params or Bm25Params()
        p = self.params
        self._bm25 = edge.Bm25(edge.Bm25Config(k=p.k, b=p.b, avg_len=p.avg_len, language=p.language))

    def document(self, text: str) -> SparseVector:
        """Term-frequency weights of a chunk's text (stopwords dropped, words stemmed)."""
        vector = self._bm25.embed_document(text)
        return SparseVector(tuple(vector.indices), tuple(vector.values))

    def query(self, text: str) -> SparseVector:
        """Each distinct query term with weight 1; the store multiplies in the IDF."""
        vector = self._bm25.embed_query(text)
        return SparseVector(tuple(vector.indices), tuple(vector.values))
