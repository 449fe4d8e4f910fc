"""Running the emulators: in-process (async context manager), in a background thread, or as a CLI.

Both servers listen on real TCP sockets (port 0 = the OS picks a free one), so the real SDKs connect,
pool and sign exactly as they do against OpenAI and SageMaker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

from aiohttp import web

from rag_gateway.emulators.control_client import EmulatorControl
from rag_gateway.emulators.openai_emulator import build_openai_app
from rag_gateway.emulators.sagemaker_emulator import build_sagemaker_app

__all__ = [
    "EmulatorStartError",
    "EmulatorThread",
    "RunningEmulators",
    "add_emulate_arguments",
    "build_openai_app",
    "build_sagemaker_app",
    "run_emulate",
    "running_emulators",
    "serve_forever",
]

#: How long shutdown waits for in-flight handlers; hanging ones are released at once by the shutdown signal.
SHUTDOWN_TIMEOUT = 2.0
EXIT_START_FAILED = 2


class EmulatorStartError(RuntimeError):
    """An emulator could not start (typically: its port is already in use)."""


@dataclass(frozen=True)
class RunningEmulators:
    """Where the emulators listen, and their control clients."""

    openai_url: str  #: base URL for ``AsyncOpenAI(base_url=...)``, ending in ``/v1``
    sagemaker_url: str  #: ``endpoint_url`` for the ``sagemaker-runtime`` client
    openai: EmulatorControl
    sagemaker: EmulatorControl
    endpoint_names: tuple[str, ...]

    @property
    def endpoint_name(self) -> str:
        return self.endpoint_names[0]


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _endpoint_names(endpoint_name: str | Sequence[str]) -> tuple[str, ...]:
    raw = endpoint_name.split(",") if isinstance(endpoint_name, str) else list(endpoint_name)
    names = tuple(n.strip() for n in raw if n.strip())
    if not names:
        raise ValueError("at least one endpoint name is needed")
    return names


async def _serve(stack: AsyncExitStack, app: web.Application, host: str, port: int, name: str) -> int:
    """Start ``app`` on ``host:port`` (cleaned up by ``stack``); returns the port actually bound."""
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
    return bound


@asynccontextmanager
async def running_emulators(
    host: str = "127.0.0.1",
    openai_port: int = 0,
    sagemaker_port: int = 0,
    openai_latency: float = 0.0,
    sagemaker_latency: float = 0.0,
    endpoint_name: str | Sequence[str] = "twin",
) -> AsyncIterator[RunningEmulators]:
    """Both emulators listening on ``host`` for the duration of the ``async with`` block.

    ``endpoint_name`` is the SageMaker endpoint that exists (several: a sequence or comma-separated).
    Raises ``EmulatorStartError`` when a port cannot be bound.
    """
    names = _endpoint_names(endpoint_name)
    async with AsyncExitStack() as stack:
        openai_bound = await _serve(stack, build_openai_app(openai_latency), host, openai_port, "openai")
        sagemaker_bound = await _serve(
            stack, build_sagemaker_app(names, sagemaker_latency), host, sagemaker_port, "sagemaker"
        )
        openai_root, sagemaker_root = _url(host, openai_bound), _url(host, sagemaker_bound)
        yield RunningEmulators(
            openai_url=f"{openai_root}/v1",
            sagemaker_url=sagemaker_root,
            openai=EmulatorControl(openai_root),
            sagemaker=EmulatorControl(sagemaker_root),
            endpoint_names=names,
        )


class EmulatorThread:
    """``running_emulators`` on its own event loop in a daemon thread.

    For test suites that run the gateway in another loop or process: ``start()`` blocks until both
    emulators listen and returns their URLs; ``stop()`` shuts them down, releasing hanging handlers.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        openai_port: int = 0,
        sagemaker_port: int = 0,
        openai_latency: float = 0.0,
        sagemaker_latency: float = 0.0,
        endpoint_name: str | Sequence[str] = "twin",
    ) -> None:
        self._kwargs: dict[str, Any] = {
            "host": host,
            "openai_port": openai_port,
            "sagemaker_port": sagemaker_port,
            "openai_latency": openai_latency,
            "sagemaker_latency": sagemaker_latency,
            "endpoint_name": endpoint_name,
        }
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._emulators: RunningEmulators | None = None

    @property
    def emulators(self) -> RunningEmulators:
        if self._emulators is None:
            raise RuntimeError("the emulators are not running; call start() first")
        return self._emulators

    @property
    def openai_url(self) -> str:
        return self.emulators.openai_url

    @property
    def sagemaker_url(self) -> str:
        return self.emulators.sagemaker_url

    def start(self, timeout: float = 10.0) -> RunningEmulators:
        """Start the thread and wait until both emulators accept connections."""
        if self._thread is not None:
            raise RuntimeError("EmulatorThread already started")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="rag-gateway-emulators", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise EmulatorStartError(f"the emulators did not start within {timeout} s")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self.emulators

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the emulators down and join the thread; a no-op when not running."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"the emulator thread did not stop within {timeout} s")
        self._thread = None
        self._emulators = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); a thread has nowhere else to raise
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        async with running_emulators(**self._kwargs) as emulators:
            self._emulators = emulators
            self._ready.set()
            await self._stop_event.wait()

    def __enter__(self) -> RunningEmulators:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def serve_forever(
    host: str = "127.0.0.1",
    openai_port: int = 0,
    sagemaker_port: int = 0,
    openai_latency: float = 0.0,
    sagemaker_latency: float = 0.0,
    endpoint_name: str | Sequence[str] = "twin",
    *,
    out: TextIO | None = None,
) -> None:
    """Run both emulators until SIGINT or SIGTERM, after printing one ``<name> emulator: <url>`` line each."""
    stream = out if out is not None else sys.stdout
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_emulators(
            host, openai_port, sagemaker_port, openai_latency, sagemaker_latency, endpoint_name
        ) as emulators:
            print(f"openai emulator: {emulators.openai_url}", file=stream)
            print(f"sagemaker emulator: {emulators.sagemaker_url}", file=stream, flush=True)
            await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535 (0 = any free port), got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"latency must be >= 0 seconds, got {text}")
    return value


def add_emulate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rag-gateway emulate``."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--openai-port", type=_port, default=8101, help="OpenAI emulator port (0 = any free)")
    parser.add_argument(
        "--sagemaker-port", type=_port, default=8102, help="SageMaker emulator port (0 = any free)"
    )
    parser.add_argument(
        "--openai-latency", type=_seconds, default=0.0, help="base delay of every chat call, in seconds"
    )
    parser.add_argument(
        "--sagemaker-latency", type=_seconds, default=0.0, help="base delay of every invocation, in seconds"
    )
    parser.add_argument(
        "--endpoint-name",
        default="twin",
        help="SageMaker endpoint(s) that exist, comma-separated (default: twin)",
    )


def run_emulate(args: argparse.Namespace) -> int:
    """Body of ``rag-gateway emulate``: 0 after a clean SIGINT/SIGTERM stop, 2 when a port is taken."""
    try:
        asyncio.run(
            serve_forever(
                args.host,
                args.openai_port,
                args.sagemaker_port,
                args.openai_latency,
                args.sagemaker_latency,
                args.endpoint_name,
            )
        )
    except (EmulatorStartError, ValueError) as exc:
        print(f"rag-gateway emulate: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_START_FAILED
    return 0
