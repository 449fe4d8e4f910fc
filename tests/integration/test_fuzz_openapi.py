"""Property-based fuzzing of the public API from its own OpenAPI spec (schemathesis).

Every generated request, valid or not, must get a documented status and a body matching the documented
schema; none may get a 500. Runs schemathesis' own runner against the live test gateway.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCHEMATHESIS = Path(sys.executable).with_name("st")


def test_no_500_and_every_answer_matches_the_spec(gateway_url: str) -> None:
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{gateway_url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "150",
            "--seed",
            "20261125",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
