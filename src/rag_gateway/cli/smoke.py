"""``rag-gateway smoke``: ask a running gateway one real question and show what came back.

Exits 0 only for a grounded answer with sources; otherwise prints a one-line reason and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

DEFAULT_QUESTION = "What does Tomas Berg say about chunking articles?"


def add_smoke_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--url", default=os.environ.get("RAG_URL", "http://127.0.0.1:8000"), help="$RAG_URL")
    parser.add_argument("-k", type=int, default=None, help="sources to keep")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--stream", action="store_true", help="stream the answer (SSE) and print tokens as they come"
    )


def _fail(reason: str) -> int:
    print(f"smoke: FAILED: {reason}", file=sys.stderr)
    return 1


def _print_sources(sources: list[dict[str, Any]]) -> None:
    print("sources:")
    for number, source in enumerate(sources, start=1):
        print(
            f"  {number}. {source.get('title') or '(untitled)'} — {source.get('author')} "
            f"[{source.get('collection')}] score={source.get('score'):.3f}\n     {source.get('link')}"
        )


def _print_timings(timings: dict[str, float]) -> None:
    print("\ntimings (ms): " + ", ".join(f"{stage}={ms:.1f}" for stage, ms in timings.items()))


def _run_stream(args: argparse.Namespace, payload: dict[str, object]) -> int:
    """Print tokens as they arrive; exit 0 only after a `done` event with a non-empty answer."""
    payload = {**payload, "stream": True}
    answer: list[str] = []
    sources: list[dict[str, Any]] = []
    event = "message"
    try:
        with httpx.stream(
            "POST", f"{args.url.rstrip('/')}/rag", json=payload, timeout=args.timeout
        ) as response:
            if response.status_code != 200:
                response.read()
                return _fail_http(response)
            print(f"question: {args.question}\nanswer: ", end="", flush=True)
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                    continue
                if not line.startswith("data: "):
                    continue
                data = json.loads(line[6:])
                if event == "sources":
                    sources = data["sources"]
                elif event == "token":
                    answer.append(data["text"])
                    print(data["text"], end="", flush=True)
                elif event == "error":
                    print()
                    return _fail(f"stream error {data['error']['type']}: {data['error']['message']}")
                elif event == "done":
                    print("\n")
                    _print_sources(sources)
                    _print_timings(data.get("timings_ms", {}))
                    print(f"request id: {data.get('request_id')}")
                    if not "".join(answer).strip():
                        return _fail("the answer is empty")
                    return 0 if sources else _fail("the answer has no sources")
    except httpx.ConnectError:
        return _fail(f"no gateway at {args.url} (start one with `make demo` or `make serve`)")
    except httpx.HTTPError as exc:
        return _fail(f"request to {args.url} failed: {type(exc).__name__}")
    return _fail("the stream ended without a `done` event")


def _fail_http(response: httpx.Response) -> int:
    try:
        body = response.json()
    except ValueError:
        return _fail(f"HTTP {response.status_code} with a body that is not JSON")
    error = body.get("error", {}) if isinstance(body, dict) else {}
    request_id = body.get("request_id", "-") if isinstance(body, dict) else "-"
    reason = f"{error.get('type', '')}: {error.get('message', '')}"
    return _fail(f"HTTP {response.status_code} {reason} (request id {request_id})")


def run_smoke(args: argparse.Namespace) -> int:
    payload: dict[str, object] = {"query": args.question}
    if args.k is not None:
        payload["k"] = args.k
    if args.stream:
        return _run_stream(args, payload)
    try:
        response = httpx.post(f"{args.url.rstrip('/')}/rag", json=payload, timeout=args.timeout)
    except httpx.ConnectError:
        return _fail(f"no gateway at {args.url} (start one with `make demo` or `make serve`)")
    except httpx.HTTPError as exc:
        return _fail(f"request to {args.url} failed: {type(exc).__name__}")
    if response.status_code != 200:
        return _fail_http(response)
    try:
        body = response.json()
    except ValueError:
        return _fail("HTTP 200 with a body that is not JSON")
    answer = str(body.get("answer", "")).strip()
    sources = body.get("sources") or []
    print(f"question: {args.question}")
    print(f"author filter: {body.get('author_filter') or '-'}")
    print(f"answer: {answer}\n")
    if body.get("degraded"):
        print(f"degraded: {', '.join(body['degraded'])}")
    _print_sources(sources)
    _print_timings(body.get("timings_ms", {}))
    print(f"request id: {body.get('request_id')}")
    if not answer:
        return _fail("the answer is empty")
    if not sources:
        return _fail("the answer has no sources")
    return 0
