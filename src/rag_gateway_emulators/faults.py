"""Faults an emulator injects, and the registry that hands them out in order.

A fault describes one way an upstream misbehaves (slow, error status, silence, junk, a cut body, a dropped
connection, a stream that breaks mid-way). Tests queue faults through the control API; each matching request
consumes the oldest one, so a scenario like "two 429s, then success" is written as one fault with ``times=2``.

Streaming: ``invocations_stream`` is SageMaker's ``InvokeEndpointWithResponseStream`` (``invocations`` stays
the non-streaming route only); OpenAI streams on its usual chat targets when a request says
``stream: true``. The delay between streamed tokens is the latency of the pseudo-target ``stream_tokens``
(``PUT /_emulator/latency``), or a fault's own ``token_seconds``.

Qdrant: one target per REST operation (``qdrant_search``, ``qdrant_upsert``...), and ``qdrant`` for every
one of them, as a fault's target and as the default latency of each.

Each emulator serves only its own targets: its ``FaultPlan`` refuses the others, and its
``EmulatorControl`` refuses them before sending (``Fault.model_validate(..., context={"targets": ...})``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

QdrantTarget = Literal[
    "qdrant",
    "qdrant_list",
    "qdrant_exists",
    "qdrant_info",
    "qdrant_create",
    "qdrant_delete",
    "qdrant_index",
    "qdrant_upsert",
    "qdrant_retrieve",
    "qdrant_count",
    "qdrant_facet",
    "qdrant_search",
    "qdrant_scroll",
]
Target = Literal[
    "self_query",
    "expansion",
    "rewrite",
    "generate",
    "chat",
    "invocations",
    "invocations_stream",
    QdrantTarget,
]
FaultKind = Literal["latency", "status", "hang", "malformed", "truncated", "drop", "content", "break"]

#: The targets of the OpenAI emulator; ``chat`` means "any chat call".
CHAT_TARGETS: frozenset[str] = frozenset({"self_query", "expansion", "rewrite", "generate", "chat"})
#: The targets of the SageMaker emulator: ``invocations`` (InvokeEndpoint) and ``invocations_stream``
#: (InvokeEndpointWithResponseStream).
INVOCATION_TARGETS: frozenset[str] = frozenset({"invocations", "invocations_stream"})
#: The wildcard target of the Qdrant emulator: a fault or latency for it applies to every data-plane call.
ALL_QDRANT = "qdrant"
#: The targets of the Qdrant emulator.
QDRANT_TARGETS: frozenset[str] = frozenset(get_args(QdrantTarget))
#: Targets that stand for a group: a fault on one hits every call of the group.
_WILDCARDS: dict[str, frozenset[str]] = {"chat": CHAT_TARGETS, ALL_QDRANT: QDRANT_TARGETS}
#: Latency-only pseudo-target: the pause before each streamed token (both emulators).
STREAM_TOKENS = "stream_tokens"
#: How long a ``hang`` fault keeps a request open when ``seconds`` is not given.
DEFAULT_HANG_SECONDS = 300.0
#: How many tokens a ``break`` fault lets through when ``after_tokens`` is not given.
DEFAULT_BREAK_AFTER_TOKENS = 3
#: ``error_code`` values of a ``break`` on ``invocations_stream`` (the first is the default): a
#: ``ModelStreamError`` or ``InternalStreamFailure`` event, a TGI ``{"error": ...}`` line, a closed socket.
SAGEMAKER_BREAKS: tuple[str, ...] = ("ModelStreamError", "InternalStreamFailure", "tgi_error", "drop")
#: ``error_code`` values of a ``break`` on a chat target: a closed socket (default) or an SSE error event.
OPENAI_BREAKS: tuple[str, ...] = ("drop", "error")


def check_served(target: str, served: Collection[str]) -> None:
    """Refuse a ``target`` the emulator never serves: a mistake, not a fault that would never fire."""
    if target not in served:
        raise ValueError(f"target {target!r} is not served here (use one of {sorted(served)})")


class Fault(BaseModel):
    """One injected misbehaviour, as posted to ``POST /_emulator/faults``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Target
    kind: FaultKind
    #: HTTP status for ``kind="status"`` (SageMaker: derived from ``error_code`` when omitted).
    status: int | None = Field(None, ge=100, le=599)
    #: SageMaker error code (``ModelError``, ``ValidationError``...) or OpenAI ``error.code``; for a
    #: ``break``, how the stream breaks (``SAGEMAKER_BREAKS`` / ``OPENAI_BREAKS``).
    error_code: str | None = None
    #: For a SageMaker ``ModelError``: the status the model container answered with (e.g. 422).
    original_status: int | None = Field(None, ge=100, le=599)
    #: Error message (SageMaker ``ModelError``: the container's original message).
    message: str | None = None
    #: Raw body sent by a ``malformed`` fault (default: text that is not JSON; in a stream, one ``data:``
    #: line of it); for a ``content`` fault (OpenAI, or ``invocations_stream``), the answer text of an
    #: otherwise valid completion or stream: a model answering junk.
    body: str | None = None
    #: Seconds for ``retry-after`` (and OpenAI's ``retry-after-ms``) on a ``status`` fault.
    retry_after: float | None = Field(None, ge=0)
    #: Extra delay of a ``latency`` fault; how long a ``hang`` fault holds the request (default 300).
    seconds: float | None = Field(None, ge=0)
    #: How many matching requests this fault applies to; ``None`` means until cleared.
    times: int | None = Field(1, ge=1)
    #: ``break``: how many tokens are streamed before the stream breaks (default 3).
    after_tokens: int | None = Field(None, ge=0)
    #: Streaming: the pause before each token for this request (overrides the ``stream_tokens`` latency).
    token_seconds: float | None = Field(None, ge=0)

    @field_validator("target")
    @classmethod
    def _check_served(cls, target: str, info: ValidationInfo) -> str:
        """With ``context={"targets": served}``, only the targets of one emulator are valid."""
        served = info.context.get("targets") if isinstance(info.context, dict) else None
        if served is not None:
            check_served(target, served)
        return target

    @model_validator(mode="after")
    def _check_kind(self) -> Fault:
        if self.kind == "latency" and self.seconds is None:
            raise ValueError("a latency fault needs `seconds`")
        if self.kind == "content" and self.body is None:
            raise ValueError("a content fault needs `body`")
        if self.kind == "status" and self.status is None and self.error_code is None:
            raise ValueError("a status fault needs `status` or `error_code`")
        if self.kind == "break":
            if self.target == "invocations_stream":
                allowed = SAGEMAKER_BREAKS
            elif self.target in CHAT_TARGETS:
                allowed = OPENAI_BREAKS
            else:
                raise ValueError(f"a break fault needs a streaming target, not {self.target!r}")
            if self.error_code is not None and self.error_code not in allowed:
                raise ValueError(f"a break fault on {self.target!r} takes error_code in {list(allowed)}")
        if self.kind == "content" and self.target in QDRANT_TARGETS:
            raise ValueError("a content fault is OpenAI-only; use `malformed` with a `body` for Qdrant")
        return self

    def matches(self, target: str) -> bool:
        """Whether a request for ``target`` is hit; a ``chat`` fault hits every chat call, a ``qdrant``
        fault every Qdrant call."""
        return self.target == target or target in _WILDCARDS.get(self.target, frozenset())

    @property
    def hang_seconds(self) -> float:
        return DEFAULT_HANG_SECONDS if self.seconds is None else self.seconds

    @property
    def break_after(self) -> int:
        return DEFAULT_BREAK_AFTER_TOKENS if self.after_tokens is None else self.after_tokens

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
        check_served(fault.target, self.targets)
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
        check_served(target, self.targets | {STREAM_TOKENS})
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self._latency[target] = seconds

    def latency_for(self, target: str) -> float:
        """Base delay of a request: its own target's setting, else its group's.

        Chat calls fall back to ``chat``; ``invocations_stream`` (time to the first byte of a stream) to
        ``invocations``, so an emulator started with a base latency is slow to start streams too; Qdrant
        calls to ``qdrant``.
        """
        if target in self._latency:
            return self._latency[target]
        if target in CHAT_TARGETS:
            return self._latency.get("chat", 0.0)
        if target == "invocations_stream":
            return self._latency.get("invocations", 0.0)
        if target in QDRANT_TARGETS:
            return self._latency.get(ALL_QDRANT, 0.0)
        return 0.0

    def token_seconds(self, fault: Fault | None) -> float:
        """The pause before each streamed token: the fault's ``token_seconds``, else ``stream_tokens``."""
        if fault is not None and fault.token_seconds is not None:
            return fault.token_seconds
        return self._latency.get(STREAM_TOKENS, 0.0)

    @property
    def latency(self) -> dict[str, float]:
        return dict(self._latency)
