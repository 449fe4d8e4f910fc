"""Property-based fuzzing of the public API from its own OpenAPI spec (schemathesis).

Every generated request, valid or not, must get a documented status, content type and headers, and a body
matching the documented schema; none may get a 5xx (but the 504 a request asks for with a tiny
X-Request-Timeout). Runs schemathesis' own runner against the live test
gateway. The schemas are tight enough (the question's rule as a pattern, the served model names as an
enum, unsupported parameters limited to their neutral values) that valid cases reach the pipeline: most
requests to the answering routes get a 200, counted from the gateway's own request metrics.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import PROJECT_ROOT

SCHEMATHESIS = Path(sys.executable).with_name("st")
ANSWERING_ROUTES = ("/rag", "/v1/chat/completions")
_SAMPLE = re.compile(
    r'^rag_requests_total\{route="(?P<route>[^"]+)",status="(?P<status>\d+)"\} (?P<n>[0-9.e+]+)$'
)


def answers_by_status(gateway_url: str) -> Counter[str]:
    """Requests served so far by the answering routes, per status (from ``/metrics``)."""
    counts: Counter[str] = Counter()
    for line in httpx.get(f"{gateway_url}/metrics", timeout=10).text.splitlines():
        match = _SAMPLE.match(line)
        if match and match["route"] in ANSWERING_ROUTES:
            counts[match["status"]] += int(float(match["n"]))
    return counts


def run_schemathesis(
    gateway_url: str, mode: str, max_examples: int, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{gateway_url}/openapi.json",
            "--checks",
            # no_server_error (tests/integration/fuzz_checks.py) is not_a_server_error, except for the
            # 504 a request asked for with a tiny X-Request-Timeout
            "no_server_error,status_code_conformance,content_type_conformance,"
            "response_headers_conformance,response_schema_conformance",
            "--mode",
            mode,
            "--max-examples",
            str(max_examples),
            "--seed",
            "20261125",
            "--request-timeout",
            "30",
            "--no-color",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_checks",
            "PYTHONPATH": str(PROJECT_ROOT),
        },
    )


def test_no_500_and_every_answer_matches_the_spec(gateway_url: str) -> None:
    before = answers_by_status(gateway_url)
    # A valid X-Request-Timeout may be far too short to answer in (1e-300 s): its 504 is right, but tells
    # nothing about the pipeline, so valid cases get a workable deadline. The negative run fuzzes it.
    result = run_schemathesis(gateway_url, "positive", 150, "--header", "X-Request-Timeout: 30")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    served = answers_by_status(gateway_url) - before
    total = sum(served.values())
    assert total >= 100, served
    assert served["200"] > total / 2, f"most valid cases should reach the pipeline: {dict(served)}"


def test_invalid_requests_get_documented_4xx_answers(gateway_url: str) -> None:
    before = answers_by_status(gateway_url)
    result = run_schemathesis(gateway_url, "negative", 60)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    served = answers_by_status(gateway_url) - before
    assert not any(status.startswith("5") for status in served), served
