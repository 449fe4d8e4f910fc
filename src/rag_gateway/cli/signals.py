"""Process-level signal handling shared by `serve` and `demo`."""

from __future__ import annotations

import signal


def exit_quietly_after_shutdown() -> None:
    """uvicorn re-raises SIGTERM/SIGINT once it has shut down gracefully; with the default handlers the
    process would then die by that signal (exit -15) instead of exiting 0. These handlers let it return."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
