"""Per-emulator state shared by its protocol handlers and its control API: faults, request log, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from rag_gateway_emulators.faults import FaultPlan

#: Oldest records are forgotten past this, so a long load test cannot grow the log without bound.
MAX_LOGGED_REQUESTS = 10_000


@dataclass
class RequestRecord:
    """What an emulator saw of one protocol request (control calls are not logged)."""

    target: str
    time: float
    method: str
    path: str
    #: The parsed JSON body, or None when it was not JSON.
    payload: Any
    #: ``Authorization: AWS4-HMAC-SHA256 Credential=...`` was present (SageMaker).
    sigv4: bool = False
    #: ``Authorization: Bearer <key>`` was present (OpenAI).
    bearer: bool = False
    #: The ``User-Agent`` header, if sent.
    user_agent: str | None = None
    endpoint: str | None = None
    #: The fault kind applied to this request, if any.
    fault: str | None = None
    #: The HTTP status answered; None when no status line was sent (drop, hang).
    status: int | None = None
    #: The request asked for a streamed answer (OpenAI ``stream: true``, SageMaker's response stream).
    stream: bool = False
    #: Streams: how many tokens were handed to the connection; None until the stream starts.
    tokens_sent: int | None = None
    #: Streams: the client went away before the stream finished (the upstream generation was cancelled).
    cancelled: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """A bounded, append-only record of requests, read by tests through ``GET /_emulator/requests``."""

    def __init__(self, maxlen: int = MAX_LOGGED_REQUESTS) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)

    def record(self, target: str, method: str, path: str, payload: Any, **extra: Any) -> RequestRecord:
        entry = RequestRecord(
            target=target, time=time.time(), method=method, path=path, payload=payload, **extra
        )
        self._records.append(entry)
        return entry

    def snapshot(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self._records]

    def clear(self) -> int:
        cleared = len(self._records)
        self._records.clear()
        return cleared


@dataclass
class EmulatorState:
    """Everything one emulator app keeps between requests."""

    name: str
    plan: FaultPlan
    log: RequestLog = field(default_factory=RequestLog)
    #: Set when the app shuts down, so hanging or delayed handlers stop at once instead of holding it up.
    shutting_down: asyncio.Event = field(default_factory=asyncio.Event)


STATE = web.AppKey("emulator_state", EmulatorState)
