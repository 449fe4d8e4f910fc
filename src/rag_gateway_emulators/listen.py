"""Serving an emulator app on a real TCP socket (port 0 = the OS picks a free one).

Real sockets let the real SDKs connect, pool and sign exactly as they do against the real services.
"""

from __future__ import annotations

import errno
from contextlib import AsyncExitStack

from aiohttp import web

__all__ = ["SHUTDOWN_TIMEOUT", "EmulatorStartError", "listen"]

#: How long shutdown waits for in-flight handlers; hanging ones are released at once by the shutdown signal.
SHUTDOWN_TIMEOUT = 2.0


class EmulatorStartError(RuntimeError):
    """An emulator could not start (typically: its port is already in use)."""


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def listen(stack: AsyncExitStack, app: web.Application, host: str, port: int, name: str) -> str:
    """Start ``app`` on ``host:port`` (cleaned up by ``stack``); returns its root URL, with the port bound.

    Raises ``EmulatorStartError`` naming the ``name`` emulator when the port cannot be bound.
    """
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use (choose another port, or 0 for any free one)"
        else:
            reason = exc.strerror or str(exc)
        raise EmulatorStartError(f"the {name} emulator cannot listen on {host}:{port}: {reason}") from exc
    bound: int = runner.addresses[0][1]
    return _url(host, bound)
