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

from benchmarks.loadgen import load_questions  # locust puts this file's folder on sys.path
from locust import FastHttpUser, events, task

ROOT = Path(__file__).resolve().parent
QUERIES = ROOT.parent / "shared" / "data" / "queries.json"
QUESTIONS = load_questions(QUERIES)
DEGRADED = {"count": 0}


def check_answer(status: int, body: Any) -> str | None:
    """None for a good answer, else why it failed."""
    if status != 200:
        return f"HTTP {status}"
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    answer = body.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        return "empty answer"
    return None


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
            try:
                body = response.json() if response.status_code == 200 else None
            except ValueError:
                body = None
            reason = check_answer(response.status_code or 0, body)
            self._last_failed = reason is not None
            if reason is not None:
                response.failure(reason)
                return
            if body.get("degraded"):
                DEGRADED["count"] += 1
            response.success()


@events.quitting.add_listener
def _report(environment: Any, **_: Any) -> None:
    if DEGRADED["count"]:
        print(f"degraded answers (counted as successes): {DEGRADED['count']}")
