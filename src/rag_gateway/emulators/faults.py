"""Faults an emulator injects, and the registry that hands them out in order.

A fault describes one way an upstream misbehaves (slow, error status, silence, junk, a cut body, a dropped
connection). Tests queue faults through the control API; each matching request consumes the oldest one,
so a scenario like "two 429s, then success" is written as one fault with ``times=2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Target = Literal["self_query", "expansion", "chat", "invocations"]
FaultKind = Literal["latency", "status", "hang", "malformed", "truncated", "drop", "content"]

#: The targets of the OpenAI emulator; ``chat`` means "any chat call".
CHAT_TARGETS: frozenset[str] = frozenset({"self_query", "expansion", "chat"})
#: The targets of the SageMaker emulator.
INVOCATION_TARGETS: frozenset[str] = frozenset({"invocations"})
#: How long a ``hang`` fault keeps a request open when ``seconds`` is not given.
DEFAULT_HANG_SECONDS = 300.0


class Fault(BaseModel):
    """One injected misbehaviour, as posted to ``POST /_emulator/faults``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Target
    kind: FaultKind
    #: HTTP status for ``kind="status"`` (SageMaker: derived from ``error_code`` when omitted).
    status: int | None = Field(None, ge=100, le=599)
    #: SageMaker error code (``ModelError``, ``ValidationError``...) or OpenAI ``error.code``.
    error_code: str | None = None
    #: For a SageMaker ``ModelError``: the status the model container answered with (e.g. 422).
    original_status: int | None = Field(None, ge=100, le=599)
    #: Error message (SageMaker ``ModelError``: the container's original message).
    message: str | None = None
    #: Raw body sent by a ``malformed`` fault (default: text that is not JSON); for a ``content`` fault
    #: (OpenAI only), the message content of an otherwise valid completion: a model answering junk.
    body: str | None = None
    #: Seconds for ``retry-after`` (and OpenAI's ``retry-after-ms``) on a ``status`` fault.
    retry_after: float | None = Field(None, ge=0)
    #: Extra delay of a ``latency`` fault; how long a ``hang`` fault holds the request (default 300).
    seconds: float | None = Field(None, ge=0)
    #: How many matching requests this fault applies to; ``None`` means until cleared.
    times: int | None = Field(1, ge=1)

    @model_validator(mode="after")
    def _check_kind(self) -> Fault:
        if self.kind == "latency" and self.seconds is None:
            raise ValueError("a latency fault needs `seconds`")
        if self.kind == "content" and self.body is None:
            raise ValueError("a content fault needs `body`")
        if self.kind == "status" and self.status is None and self.error_code is None:
            raise ValueError("a status fault needs `status` or `error_code`")
        return self

    def matches(self, target: str) -> bool:
        """Whether a request for ``target`` is hit; a ``chat`` fault hits every chat call."""
        return self.target == target or (self.target == "chat" and target in CHAT_TARGETS)

    @property
    def hang_seconds(self) -> float:
        return DEFAULT_HANG_SECONDS if self.seconds is None else self.seconds

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True) | {"times": self.times}


@dataclass
class _Pending:
    fault: Fault
    remaining: int | None


class FaultPlan:
    """The faults queued on one emulator plus its per-target base latency.

    Everything runs on the emulator's event loop, so no locking is needed.
    """

    def __init__(self, targets: frozenset[str], base_latency: Mapping[str, float] | None = None) -> None:
        self.targets = targets
        self._startup_latency = dict(base_latency or {})
        self._latency = dict(self._startup_latency)
        self._pending: list[_Pending] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault``; a target this emulator never serves is a mistake, so it is refused."""
        if fault.target not in self.targets:
            raise ValueError(
                f"target {fault.target!r} is not served here (use one of {sorted(self.targets)})"
            )
        self._pending.append(_Pending(fault, fault.times))

    def take(self, target: str) -> Fault | None:
        """The oldest fault matching ``target``, counting one use of it."""
        for index, pending in enumerate(self._pending):
            if pending.fault.matches(target):
                if pending.remaining is not None:
                    pending.remaining -= 1
                    if pending.remaining <= 0:
                        del self._pending[index]
                return pending.fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        return [p.fault.to_json() | {"remaining": p.remaining} for p in self._pending]

    def clear(self) -> int:
        """Drop every fault and restore the start-up latency; returns how many faults were dropped."""
        dropped = len(self._pending)
        self._pending.clear()
        self._latency = dict(self._startup_latency)
        return dropped

    def set_latency(self, target: str, seconds: float) -> None:
        if target not in self.targets:
            raise ValueError(f"target {target!r} is not served here (use one of {sorted(self.targets)})")
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self._latency[target] = seconds

    def latency_for(self, target: str) -> float:
        """Base delay of a request: its own target's setting, else the ``chat`` one for chat calls."""
        if target in self._latency:
            return self._latency[target]
        if target in CHAT_TARGETS:
            return self._latency.get("chat", 0.0)
        return 0.0

    @property
    def latency(self) -> dict[str, float]:
        return dict(self._latency)
