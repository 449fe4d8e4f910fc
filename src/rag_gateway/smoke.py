"""``rag-gateway smoke``: ask a running gateway one real question and show what came back.

Exits 0 only for a grounded answer with sources; otherwise prints a one-line reason and exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx

DEFAULT_QUESTION = "What does Tomas Berg say about chunking articles?"


def add_smoke_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--url", default=os.environ.get("RAG_URL", "http://127.0.0.1:8000"), help="$RAG_URL")
    parser.add_argument("-k", type=int, default=None, help="sources to keep")
    parser.add_argument("--timeout", type=float, default=60.0)


def _fail(reason: str) -> int:
    print(f"smoke: FAILED: {reason}", file=sys.stderr)
    return 1


def run_smoke(args: argparse.Namespace) -> int:
    payload: dict[str, object] = {"query": args.question}
    if args.k is not None:
        payload["k"] = args.k
    try:
        response = httpx.post(f"{args.url.rstrip('/')}/rag", json=payload, timeout=args.timeout)
    except httpx.ConnectError:
        return _fail(f"no gateway at {args.url} (start one with `make demo` or `make serve`)")
    except httpx.HTTPError as exc:
        return _fail(f"request to {args.url} failed: {type(exc).__name__}")
    try:
        body = response.json()
    except ValueError:
        return _fail(f"HTTP {response.status_code} with a body that is not JSON")
    if response.status_code != 200:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return _fail(
            f"HTTP {response.status_code} {error.get('type', '')}: {error.get('message', '')} "
            f"(request id {body.get('request_id', '-') if isinstance(body, dict) else '-'})"
        )
    answer = str(body.get("answer", "")).strip()
    sources = body.get("sources") or []
    print(f"question: {args.question}")
    print(f"author filter: {body.get('author_filter') or '-'}")
    print(f"answer: {answer}\n")
    print("sources:")
    for number, source in enumerate(sources, start=1):
        print(
            f"  {number}. {source.get('title') or '(untitled)'} — {source.get('author')} "
            f"[{source.get('collection')}] score={source.get('score'):.3f}\n     {source.get('link')}"
        )
    timings = body.get("timings_ms", {})
    print("\ntimings (ms): " + ", ".join(f"{stage}={ms:.1f}" for stage, ms in timings.items()))
    print(f"request id: {body.get('request_id')}")
    if not answer:
        return _fail("the answer is empty")
    if not sources:
        return _fail("the answer has no sources")
    return 0
