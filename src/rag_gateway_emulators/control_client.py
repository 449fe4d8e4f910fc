"""``EmulatorControl``: the control API from Python, so tests and scripts never hand-write its JSON.

Each call opens its own short-lived httpx client, so one instance works from any event loop (the
emulators may run in another thread's loop than the test calling them). The emulators are plain HTTP on
loopback: proxy variables are ignored, and the TLS context (~30 ms to build) is built once, not per call.

The default timeout is generous on purpose: a control call answers in a millisecond, but a busy CI machine
can pause a whole process for seconds, and asyncio then fires an expired timeout before reading the reply
that arrived meanwhile. A control call's speed is never what a test checks.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Collection
from typing import Any

import httpx

from rag_gateway_emulators.control import PREFIX
from rag_gateway_emulators.faults import Fault

logger = logging.getLogger("rag_gateway_emulators.control")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class EmulatorControl:
    """Drives one emulator's ``/_emulator`` API at ``base_url`` (its root, e.g. ``http://127.0.0.1:8101``).

    ``targets``: the fault targets that emulator serves; ``add_fault`` refuses any other before sending it.
    """

    def __init__(
        self, base_url: str, *, timeout: float = 60.0, targets: Collection[str] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self._targets = targets
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"EmulatorControl({self.base_url!r})"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # a call that is safe to repeat (all but POST) is sent once more, on a new connection, when its
        # answer does not come in time: once, in a full test run, a read of the request log got no answer
        # for 60 s while the other emulator on the same event loop had just answered (cause not found)
        attempts = 1 if method == "POST" else 2
        for attempt in range(1, attempts + 1):
            try:
                response = await self._send(method, path, body)
                break
            except httpx.TimeoutException:
                if attempt == attempts:
                    raise
                logger.warning(
                    "%s %s%s: no answer within %s s; sending it again", method, PREFIX, path, self._timeout
                )
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {PREFIX}{path} failed ({response.status_code}): {response.text}")
        return response.json()

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self._timeout, verify=_tls_context(), trust_env=False
        ) as client:
            return await client.request(method, f"{PREFIX}{path}", json=body)

    async def add_fault(self, **fields: Any) -> dict[str, Any]:
        """Queue a fault (the fields of ``Fault``); validated here first so a typo fails in the caller."""
        fault = Fault.model_validate(fields, context={"targets": self._targets})
        result: dict[str, Any] = await self._call("POST", "/faults", fault.to_json())
        return result

    async def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._call("GET", "/faults"))["faults"]
        return result

    async def clear(self) -> None:
        """Drop every queued fault and restore the start-up latency."""
        await self._call("DELETE", "/faults")

    async def set_latency(self, target: str, seconds: float) -> None:
        await self._call("PUT", "/latency", {"target": target, "seconds": seconds})

    async def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first (see ``RequestRecord`` for the fields)."""
        result: list[dict[str, Any]] = (await self._call("GET", "/requests"))["requests"]
        return result

    async def clear_requests(self) -> None:
        await self._call("DELETE", "/requests")

    async def reset(self) -> None:
        """Faults, latency and log back to a fresh start: handy between tests."""
        await self.clear()
        await self.clear_requests()
