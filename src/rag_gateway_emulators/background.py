"""An async context manager run on its own event loop in a daemon thread.

For callers that are not async, or that run another loop (a test suite driving the gateway in another
thread or process): ``start()`` blocks until the context is entered; ``stop()`` makes it exit and joins
the thread. The emulators' contexts release hanging handlers as they exit, so stopping is prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Generic, TypeVar

from rag_gateway_emulators.listen import EmulatorStartError

__all__ = ["BackgroundContext"]

T = TypeVar("T")
H = TypeVar("H")


class BackgroundContext(ABC, Generic[T, H]):
    """Runs ``context()`` in a daemon thread; ``T`` is what the context yields, ``H`` what ``start()``
    (and ``with``) hands back, as the subclass's ``_handle()`` picks it.

    ``subject`` and ``thread_subject`` word the errors ("<subject> did not start within 10.0 s",
    "<thread_subject> did not stop within 10.0 s").
    """

    def __init__(
        self,
        context: Callable[[], AbstractAsyncContextManager[T]],
        *,
        thread_name: str,
        subject: str,
        thread_subject: str,
    ) -> None:
        self._context = context
        self._thread_name = thread_name
        self._subject = subject
        self._thread_subject = thread_subject
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._value: T | None = None

    @abstractmethod
    def _handle(self) -> H:
        """What ``start()`` returns once the context is entered."""

    def _running(self, not_running: str) -> T:
        """What the context yielded; ``RuntimeError(not_running)`` when it is not entered."""
        if self._value is None:
            raise RuntimeError(not_running)
        return self._value

    def start(self, timeout: float = 10.0) -> H:
        """Start the thread and wait until the context is entered (the emulators accept connections).

        Raises ``EmulatorStartError`` after ``timeout`` seconds, or what entering the context raised.
        """
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise EmulatorStartError(f"{self._subject} did not start within {timeout} s")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self._handle()

    def stop(self, timeout: float = 10.0) -> None:
        """Exit the context and join the thread; a no-op when not running."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"{self._thread_subject} did not stop within {timeout} s")
        self._thread = None
        self._value = None

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
        async with self._context() as value:
            self._value = value
            self._ready.set()
            await self._stop_event.wait()

    def __enter__(self) -> H:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
