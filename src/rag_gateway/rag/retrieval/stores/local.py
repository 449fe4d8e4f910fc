"""qdrant-client's local mode: the embedded store of earlier versions, kept only to read it.

It is numpy brute force under the GIL with payload filters evaluated point by point in Python, fine for a
few thousand chunks and far too slow beyond (docs/performance.md). The gateway no longer serves from it;
this module reads such a folder for `rag-gateway migrate-store` and gives the benchmarks their baseline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models

from rag_gateway.rag.retrieval.stores.base import AUTHOR_NAME_KEY, Hit, StoredPoint, Vector

#: Points read per scroll page when migrating.
SCROLL_PAGE = 512


def local_author_filter(author: str | None) -> models.Filter | None:
    if author is None:
        return None
    return models.Filter(
        must=[models.FieldCondition(key=AUTHOR_NAME_KEY, match=models.MatchValue(value=author))]
    )


def search_local(
    client: QdrantClient,
    collections: Sequence[str],
    vectors: Sequence[Vector],
    author: str | None,
    limit: int,
) -> dict[str, list[list[Hit]]]:
    """Every collection of a local-mode client, synchronously: a hit list per (collection, query vector).

    A query built around the numpy vector (``model_construct``) spares local mode a deep copy of a
    384-float list per query, which cost more than the search itself.
    """
    query_filter = local_author_filter(author)
    queries = [
        models.NearestQuery.model_construct(nearest=vector)  # type: ignore[arg-type]  # numpy on purpose
        for vector in vectors
    ]

    def hits(name: str, query: models.NearestQuery) -> list[Hit]:
        response = client.query_points(
            name, query=query, query_filter=query_filter, limit=limit, with_payload=True
        )
        return [
            Hit(id=str(point.id), collection=name, score=float(point.score), payload=point.payload or {})
            for point in response.points
        ]

    return {name: [hits(name, query) for query in queries] for name in collections}


def read_local_folder(path: Path) -> Iterator[tuple[str, list[StoredPoint]]]:
    """Every point of a local-mode folder, a page at a time: (collection, points)."""
    client = QdrantClient(path=str(path))
    try:
        for collection in client.get_collections().collections:
            offset: models.ExtendedPointId | None = None
            while True:
                points, offset = client.scroll(
                    collection.name, limit=SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
                )
                yield (
                    collection.name,
                    [
                        StoredPoint(str(p.id), np.asarray(p.vector, dtype=np.float32), dict(p.payload or {}))
                        for p in points
                    ],
                )
                if offset is None:
                    break
    finally:
        client.close()
