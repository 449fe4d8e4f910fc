"""The request's end-to-end deadline, visible to every layer below the route (retries stop before it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("rag_deadline", default=None)


@contextmanager
def deadline_scope(seconds: float) -> Iterator[float]:
    """Set the deadline ``seconds`` from now for the code inside (and the tasks it starts)."""
    deadline = time.monotonic() + seconds
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def remaining_s() -> float | None:
    """Seconds left before the current request's deadline; None outside a request."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
