"""The gateway's own cost: p50/p95 of POST /rag and of each stage, with zero-latency emulators.

Starts `rag-gateway emulate` and `rag-gateway serve` as separate processes (so the load generator and the
emulators do not share the gateway's CPU accounting), ingests the sample corpus (or the given paths) into
a throwaway Qdrant folder, then sends sequential requests.

    python -m benchmarks.measure_latency [--requests 200] [--ingest ../shared/data/articles.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.loadgen import percentile
from benchmarks.local_stack import (
    SAMPLE_CORPUS,
    Processes,
    free_port,
    gateway_env,
    ingest,
    loopback,
    start_emulators,
    start_gateway,
)

QUESTIONS = [
    "What does Tomas Berg say about chunking articles?",
    "Why must temperature be above zero for TGI?",
    "How can retrieved chunks be reranked when no cross-encoder is available?",
    "According to Maria Rivera, why must an unknown author never become a filter?",
]


def measure_streaming(url: str, requests: int, start_s: float, token_s: float) -> None:
    """Client-side time to the first `token` event and to `done`, per streamed answer."""
    first_token: list[float] = []
    full: list[float] = []
    tokens: list[int] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(requests + 3):
            start = time.perf_counter()
            first = None
            count = 0
            with client.stream(
                "POST",
                "/rag",
                json={"query": QUESTIONS[i % len(QUESTIONS)], "stream": True},
            ) as r:
                event = ""
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "token":
                        count += 1
                        first = first or (time.perf_counter() - start) * 1000
            if i < 3:  # warm-up
                continue
            first_token.append(first or 0.0)
            full.append((time.perf_counter() - start) * 1000)
            tokens.append(count)
    print(
        f"{requests} streamed answers; emulated LLM: {start_s * 1000:.0f} ms to start, {token_s * 1000:.0f} ms/token, "
        f"median {statistics.median(tokens):.0f} tokens"
    )
    print(f"{'':<22}{'p50 ms':>10}{'p95 ms':>10}")
    print(
        f"{'time to first token':<22}{statistics.median(first_token):>10.1f}{percentile(first_token, 95):>10.1f}"
    )
    print(f"{'time to full answer':<22}{statistics.median(full):>10.1f}{percentile(full, 95):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.measure_latency", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--ingest", type=Path, nargs="*", default=sorted(SAMPLE_CORPUS.glob("*.json")))
    parser.add_argument(
        "--stream",
        action="store_true",
        help="stream answers from a slow-streaming emulator and report time to first token vs full answer",
    )
    parser.add_argument("--sagemaker-latency", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--token-seconds", type=float, default=0.03, help="--stream: seconds per token")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rag-latency-") as tmp:
        measure(args, Path(tmp))


def measure(args: argparse.Namespace, workdir: Path) -> None:
    """One run against a fresh store in WORKDIR, which the caller removes."""
    openai_port, sagemaker_port = free_port(), free_port()
    env = gateway_env(workdir, openai_port, sagemaker_port)
    ingest(args.ingest, env)
    with Processes() as procs:
        start_emulators(procs, env, openai_port, sagemaker_port, sagemaker_latency=args.sagemaker_latency)
        _, url = start_gateway(procs, env)
        if args.stream:
            httpx.put(
                f"{loopback(sagemaker_port)}/_emulator/latency",
                json={"target": "stream_tokens", "seconds": args.token_seconds},
            ).raise_for_status()
            measure_streaming(url, args.requests, args.sagemaker_latency, args.token_seconds)
            return
        totals: list[float] = []
        stages: dict[str, list[float]] = {}
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(args.requests + 10):
                question = QUESTIONS[i % len(QUESTIONS)]
                start = time.perf_counter()
                response = client.post("/rag", json={"query": question})
                elapsed = (time.perf_counter() - start) * 1000
                response.raise_for_status()
                if i < 10:  # warm-up
                    continue
                totals.append(elapsed)
                for stage, ms in response.json()["timings_ms"].items():
                    stages.setdefault(stage, []).append(ms)
        print(
            f"{args.requests} sequential POST /rag, zero-latency emulators, corpus: {len(args.ingest)} file(s)"
        )
        print(f"{'stage':<16}{'p50 ms':>10}{'p95 ms':>10}")
        print(f"{'client e2e':<16}{statistics.median(totals):>10.2f}{percentile(totals, 95):>10.2f}")
        for stage, values in stages.items():
            print(f"{stage:<16}{statistics.median(values):>10.2f}{percentile(values, 95):>10.2f}")
        summary = {
            "p50_ms": statistics.median(totals),
            "stages_p50_ms": {k: statistics.median(v) for k, v in stages.items()},
        }
        print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
