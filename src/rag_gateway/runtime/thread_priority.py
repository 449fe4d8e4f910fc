"""Lowering the OS priority of one thread: the embedding threads yield a core to the event loop.

On Linux a thread's nice value is its own (setpriority(2), "per-thread attribute" under NPTL), so
``os.nice`` called from a thread lowers that thread alone. Elsewhere it would lower the whole process,
event loop included, which is the opposite of the point: there it is left alone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)


def lower_this_thread(levels: int) -> None:
    """Run the calling thread ``levels`` nice levels below where it is now; where it cannot (not Linux, or
    refused), the thread carries on at its priority."""
    if levels <= 0 or sys.platform != "linux":
        return
    try:
        os.nice(levels)
    except OSError as exc:  # e.g. a seccomp profile that forbids it
        log.warning("could not lower the priority of thread %s: %s", threading.current_thread().name, exc)
