"""Optional steps: the parts of a request the answer can live without."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from rag_gateway.errors import GatewayError, OverloadedError
from rag_gateway.rag.outcome import RequestOutcome

T = TypeVar("T")


async def optional_step(
    step: str, work: Awaitable[T], fallback: T, outcome: RequestOutcome, budget_s: float | None = None
) -> T:
    """Run ``work`` within ``budget_s``; on an upstream failure or a late answer, note ``step`` as skipped
    in ``outcome`` and carry on with ``fallback``.

    The gateway's own overload is not a step failure: it sheds the whole request (503) rather than
    answering half of it.
    """
    try:
        if budget_s is None:
            return await work
        async with asyncio.timeout(budget_s):
            return await work
    except OverloadedError:
        raise
    except GatewayError as exc:
        outcome.skip(step, exc.error_type)
    except TimeoutError:
        outcome.skip(step, "step budget exceeded")
    return fallback
