"""Running the emulators: in-process (async context manager), in a background thread, or as a CLI.

Both servers listen on real TCP sockets (port 0 = the OS picks a free one), so the real SDKs connect,
pool and sign exactly as they do against OpenAI and SageMaker.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from rag_gateway_emulators.background import BackgroundContext
from rag_gateway_emulators.control_client import EmulatorControl
from rag_gateway_emulators.faults import CHAT_TARGETS, INVOCATION_TARGETS
from rag_gateway_emulators.listen import EmulatorStartError, listen
from rag_gateway_emulators.openai_emulator import build_openai_app
from rag_gateway_emulators.sagemaker_emulator import build_sagemaker_app

__all__ = [
    "EmulatorStartError",
    "EmulatorThread",
    "RunningEmulators",
    "add_emulate_arguments",
    "build_openai_app",
    "build_sagemaker_app",
    "run_emulate",
    "run_on_uvloop",
    "running_emulators",
    "serve_forever",
]

EXIT_START_FAILED = 2

T = TypeVar("T")


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


def _endpoint_names(endpoint_name: str | Sequence[str]) -> tuple[str, ...]:
    raw = endpoint_name.split(",") if isinstance(endpoint_name, str) else list(endpoint_name)
    names = tuple(n.strip() for n in raw if n.strip())
    if not names:
        raise ValueError("at least one endpoint name is needed")
    return names


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
        openai_root = await listen(stack, build_openai_app(openai_latency), host, openai_port, "openai")
        sagemaker_root = await listen(
            stack, build_sagemaker_app(names, sagemaker_latency), host, sagemaker_port, "sagemaker"
        )
        yield RunningEmulators(
            openai_url=f"{openai_root}/v1",
            sagemaker_url=sagemaker_root,
            openai=EmulatorControl(openai_root, targets=CHAT_TARGETS),
            sagemaker=EmulatorControl(sagemaker_root, targets=INVOCATION_TARGETS),
            endpoint_names=names,
        )


class EmulatorThread(BackgroundContext[RunningEmulators, RunningEmulators]):
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
        super().__init__(
            lambda: running_emulators(
                host, openai_port, sagemaker_port, openai_latency, sagemaker_latency, endpoint_name
            ),
            thread_name="rag-gateway-emulators",
            subject="the emulators",
            thread_subject="the emulator thread",
        )

    @property
    def emulators(self) -> RunningEmulators:
        return self._running("the emulators are not running; call start() first")

    @property
    def openai_url(self) -> str:
        return self.emulators.openai_url

    @property
    def sagemaker_url(self) -> str:
        return self.emulators.sagemaker_url

    def _handle(self) -> RunningEmulators:
        return self.emulators


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


def run_on_uvloop(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed (uvicorn[standard] brings it). The emulators and the
    benchmark's load generator share the cores with the gateway they measure: their own CPU per call is
    taken from it."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - another platform
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def run_emulate(args: argparse.Namespace) -> int:
    """Body of ``rag-gateway emulate``: 0 after a clean SIGINT/SIGTERM stop, 2 when a port is taken."""
    try:
        run_on_uvloop(
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
