"""The one exception ingestion raises on purpose: bad input or an unusable store, told in plain words.

The CLI prints its message as ``error: ...`` and exits with status 2, so messages must say what to fix
(which file, which record, which field) without a traceback.
"""

from __future__ import annotations


class IngestError(Exception):
    """Input or environment problem that stops an ingest before anything is written."""
