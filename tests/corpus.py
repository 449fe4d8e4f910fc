"""A small corpus the tests write themselves: two authors, every collection, distinct topics."""

from __future__ import annotations

import json
from pathlib import Path

ADA = {"author_id": "7c0e2a1e-0000-4000-8000-00000000ada1", "author_full_name": "Ada Quill"}
BEN = {"author_id": "7c0e2a1e-0000-4000-8000-00000000be11", "author_full_name": "Ben Marsh"}

ARTICLES = [
    {
        "_id": "a1000000-0000-4000-8000-000000000001",
        "content": {
            "Title": "Punched cards and the analytical engine",
            "Subtitle": "How a loom idea became programming",
            "Content": (
                "The analytical engine read its programs from punched cards, an idea borrowed from the "
                "Jacquard "
                "loom. Each card encoded an operation or a number. Operation cards told the mill what to do, "
                "and variable cards told it where to find the numbers in the store. Because the cards could be "
                "chained and repeated, the engine could loop, which is the heart of programming. "
            )
            * 3,
            "language": "en",
        },
        "platform": "medium",
        "link": "https://blog.example.com/ada/punched-cards",
        **ADA,
    },
    {
        "_id": "a1000000-0000-4000-8000-000000000002",
        "content": {
            "Title": "Sourdough proofing times",
            "Subtitle": "Temperature decides everything",
            "Content": (
                "A sourdough loaf proofs for four to six hours at room temperature, or twelve to sixteen hours "
                "in the fridge. Warm kitchens shorten the bulk fermentation, cold ones stretch it. Watch the "
                "dough rather than the clock: it should grow by half and feel airy. The poke test tells you "
                "when it is ready: the dent springs back slowly. "
            )
            * 3,
            "language": "en",
        },
        "platform": "substack",
        "link": "https://blog.example.com/ben/sourdough-proofing",
        **BEN,
    },
]

POSTS = [
    {
        "_id": "b2000000-0000-4000-8000-000000000001",
        "content": {
            "text": "Bernoulli numbers were the first published program: a table of operations for the engine."
        },
        "platform": "linkedin",
        "link": "https://social.example.com/ada/bernoulli",
        **ADA,
    },
    {
        "_id": "b2000000-0000-4000-8000-000000000002",
        "content": {"text": "Feed your sourdough starter twice a day with equal weights of flour and water."},
        "platform": "linkedin",
        "link": "https://social.example.com/ben/starter",
        **BEN,
    },
]

REPOSITORIES = [
    {
        "_id": "c3000000-0000-4000-8000-000000000001",
        "name": "engine-simulator",
        "content": {
            "README.md": "engine-simulator runs punched card programs for the analytical engine in Python.",
            "engine.py": "def run(cards):\n    for card in cards:\n        execute(card)\n",
        },
        "platform": "github",
        "link": "https://code.example.com/ada/engine-simulator",
        **ADA,
    },
    {
        "_id": "c3000000-0000-4000-8000-000000000002",
        "name": "proof-timer",
        "content": {"README.md": "proof-timer estimates sourdough proofing time from kitchen temperature."},
        "platform": "github",
        "link": "https://code.example.com/ben/proof-timer",
        **BEN,
    },
]


def write_corpus(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, records in (("articles", ARTICLES), ("posts", POSTS), ("repositories", REPOSITORIES)):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(records, indent=1))
        paths.append(path)
    return paths
