"""Schemathesis hooks for ``test_fuzz_openapi``: loaded by ``st run`` through ``SCHEMATHESIS_HOOKS``."""

from __future__ import annotations

from typing import Any

import schemathesis

#: A deadline shorter than this cannot hold even a cached answer: its 504 is the one the client asked for.
TINY_DEADLINE_S = 1.0


def _asked_deadline(case: Any) -> float | None:
    for name, value in (case.headers or {}).items():
        if name.lower() == "x-request-timeout":
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' ``not_a_server_error``, except for the 504 ``deadline_exceeded`` a request gets when
    its own X-Request-Timeout is too short to answer in (the schema allows any positive number)."""
    if response.status_code < 500:
        return None
    deadline = _asked_deadline(case)
    if response.status_code == 504 and deadline is not None and deadline < TINY_DEADLINE_S:
        error = response.json().get("error", {})
        if error.get("type") == "deadline_exceeded":
            return None
    raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")
