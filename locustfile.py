"""Headless load test of a running gateway with locust (``make load``).

    locust -f locustfile.py --headless -u 32 -r 8 -t 60s --host http://127.0.0.1:8000 \\
        --csv load-results/load --html load-results/load.html

Each simulated user posts real questions (``../shared/data/queries.json``, else a built-in list) to
``POST /rag`` back to back, and fails any response that is not HTTP 200 with a non-empty ``answer``.
The host defaults to ``$RAG_URL``, else http://127.0.0.1:8000. Degraded answers (a step skipped by the
gateway) count as successes; how many there were is printed at the end.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from benchmarks.loadgen import (  # locust puts this file's folder on sys.path
    load_questions,
    validate_rag_response,
)
from locust import FastHttpUser, events, task

ROOT = Path(__file__).resolve().parent
QUERIES = ROOT.parent / "shared" / "data" / "queries.json"
QUESTIONS = load_questions(QUERIES)
DEGRADED = {"count": 0}


class RagUser(FastHttpUser):
    host = os.environ.get("RAG_URL", "http://127.0.0.1:8000")
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self._offset = random.randrange(len(QUESTIONS))
        self._last_failed = False

    def wait_time(self) -> float:
        # Closed loop: the next question as soon as the answer arrives; a short pause after a failure, so a
        # gateway that is down is not hammered by a busy loop.
        return 0.1 if self._last_failed else 0.0

    @task
    def ask(self) -> None:
        question = QUESTIONS[self._offset % len(QUESTIONS)]
        self._offset += 1
        with self.client.post(
            "/rag", json={"query": question}, name="POST /rag", catch_response=True
        ) as response:
            reason = validate_rag_response(response)
            self._last_failed = reason is not None
            if reason is not None:
                response.failure(reason)
                return
            if response.json().get("degraded"):
                DEGRADED["count"] += 1
            response.success()


@events.quitting.add_listener
def _report(environment: Any, **_: Any) -> None:
    if DEGRADED["count"]:
        print(f"degraded answers (counted as successes): {DEGRADED['count']}")
