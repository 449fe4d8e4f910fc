"""What the gateway makes of the model's self-query and expansion answers, junk included."""

from __future__ import annotations

import pytest

from rag_gateway.rag.understanding.expansion import parse_expansions
from rag_gateway.rag.understanding.self_query import parse_author


@pytest.mark.parametrize(
    ("content", "author"),
    [
        ('{"author": "Paul  Iusztin"}', "Paul Iusztin"),
        ('{"author": null}', None),
        ('{"author": "none"}', None),
        ('{"author": ""}', None),
        ('{"author": 42}', None),
        ("Paul Iusztin", None),
        ("", None),
        ("[1, 2]", None),
    ],
)
def test_parse_author(content: str, author: str | None) -> None:
    assert parse_author(content) == author


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"queries": ["a b", "c d"]}', ["a b", "c d"]),
        ('{"queries": ["a b", "c d", "e f", "g h"]}', ["a b", "c d"]),  # more than asked: keep N-1
        ('{"queries": ["a b"]}', ["a b"]),  # fewer: fine
        ('{"queries": []}', []),
        ('{"queries": ["Original?", "  ", 7, "a   b", "A B"]}', ["a b"]),  # duplicates, blanks, non-strings
        ('["x y", "z"]', ["x y", "z"]),  # a bare list is accepted
        ("not json at all", []),
        ('{"queries": "one string"}', []),
    ],
)
def test_parse_expansions_tolerates_more_fewer_or_none(content: str, expected: list[str]) -> None:
    assert parse_expansions(content, "original?", wanted=2) == expected
