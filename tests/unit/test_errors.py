"""The one error vocabulary: error bodies and Retry-After values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest

from rag_gateway.errors import error_body, error_json, parse_retry_after, retry_after_header

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


def test_error_body_shape() -> None:
    assert error_body("upstream_timeout", "the LLM timed out", "req-1") == {
        "error": {"type": "upstream_timeout", "message": "the LLM timed out"},
        "request_id": "req-1",
    }


def test_error_json_is_the_same_body_as_json_bytes() -> None:
    raw = error_json("overloaded", "at capacity", "abc")
    assert isinstance(raw, bytes)
    assert orjson.loads(raw) == error_body("overloaded", "at capacity", "abc")


def test_error_json_keeps_non_ascii_text() -> None:
    assert orjson.loads(error_json("invalid_request", "k: ≤ 20 — ünïcode", "r"))["error"]["message"] == (
        "k: ≤ 20 — ünïcode"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0.0),
        ("7", 7.0),
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0.25", 0.25),
        (".5", 0.5),
    ],
)
def test_delta_seconds(raw: str, expected: float) -> None:
    assert parse_retry_after(raw) == expected


def test_absent_is_none() -> None:
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "soon",
        "-1",
        "-0.5",
        "inf",
        "Infinity",
        "nan",
        "NaN",
        "1e3",
        "1_000",
        "0x10",
        "1.5s",
        "9" * 400,
    ],
)
def test_garbage_negative_and_non_finite_are_none(raw: str) -> None:
    assert parse_retry_after(raw, now=NOW) is None


def test_http_date_in_the_future_is_seconds_from_now() -> None:
    assert parse_retry_after(http_date(NOW + timedelta(seconds=90)), now=NOW) == pytest.approx(90.0)


def test_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after(http_date(NOW - timedelta(hours=1)), now=NOW) == 0.0


def test_http_date_rfc9110_example() -> None:
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == pytest.approx(60.0)


def test_http_date_with_numeric_zone() -> None:
    # 14:00 +0200 is 12:00 UTC
    assert parse_retry_after("Sat, 01 Mar 2025 14:00:30 +0200", now=NOW) == pytest.approx(30.0)


def test_http_date_without_now_uses_the_clock() -> None:
    seconds = parse_retry_after(http_date(datetime.now(UTC) + timedelta(seconds=600)))
    assert seconds is not None
    assert 590 <= seconds <= 600


def test_naive_now_is_taken_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after(http_date(NOW + timedelta(seconds=5)), now=naive) == pytest.approx(5.0)


@pytest.mark.parametrize("raw", ["Wed, 32 Foo 2015 07:28:00 GMT", "Wed, 21 Oct", "21/10/2015"])
def test_unreadable_http_date_is_none(raw: str) -> None:
    assert parse_retry_after(raw, now=NOW) is None


@pytest.mark.parametrize(
    ("seconds", "header"),
    [
        (0.0, "1"),
        (0.2, "1"),
        (1.0, "1"),
        (1.5, "2"),
        (2.0, "2"),
        (29.01, "30"),
        (-3.0, "1"),
        (3600.0, "3600"),
    ],
)
def test_retry_after_header_rounds_up_to_whole_seconds(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


@pytest.mark.parametrize("seconds", [math.inf, math.nan])
def test_retry_after_header_non_finite_is_one(seconds: float) -> None:
    assert retry_after_header(seconds) == "1"


def test_round_trip_keeps_fraction_until_the_header() -> None:
    seconds = parse_retry_after("1.5")
    assert seconds == 1.5
    assert retry_after_header(seconds) == "2"
