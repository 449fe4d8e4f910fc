"""Chaos run: minutes of concurrent load with 5-10% injected upstream faults, then a health report.

Starts `rag-gateway emulate` and `rag-gateway serve` (separate processes) over the sample corpus, drives
concurrent closed-loop load, and after each answered request injects a random upstream fault with
probability --fault-rate. Reports requests sent, status counts, p50/p99, requests that overran their
deadline (must be 0), and the gateway's open sockets and RSS at start and end.

    python -m benchmarks.chaos [--minutes 3] [--concurrency 16] [--fault-rate 0.07]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks.loadgen import percentile, process_memory_mb
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
from benchmarks.measure_latency import QUESTIONS

DEADLINE_S = 5.0
FAULTS = [
    ("openai", {"target": "self_query", "kind": "hang", "seconds": 30}),
    ("openai", {"target": "expansion", "kind": "status", "status": 429, "retry_after": 1}),
    ("openai", {"target": "chat", "kind": "status", "status": 500}),
    ("openai", {"target": "expansion", "kind": "drop"}),
    ("openai", {"target": "self_query", "kind": "malformed"}),
    ("sagemaker", {"target": "invocations", "kind": "hang", "seconds": 30}),
    ("sagemaker", {"target": "invocations", "kind": "status", "error_code": "ModelNotReadyException"}),
    ("sagemaker", {"target": "invocations", "kind": "status", "error_code": "InternalFailure"}),
    ("sagemaker", {"target": "invocations", "kind": "status", "error_code": "ServiceUnavailable"}),
    ("sagemaker", {"target": "invocations", "kind": "drop"}),
    ("sagemaker", {"target": "invocations", "kind": "malformed"}),
    (
        "sagemaker",
        {"target": "invocations", "kind": "status", "error_code": "ModelError", "original_status": 422},
    ),
]


def process_stats(pid: int) -> tuple[int, float]:
    """(open sockets, RSS in MB) of a process, from /proc."""
    sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            sockets += str(fd.readlink()).startswith("socket:")
        except OSError:
            continue
    return sockets, process_memory_mb(pid)[0]


async def sample_process(pid: int, every_s: float, samples: list[tuple[float, int, float]]) -> None:
    """Sockets and RSS over the run, to show there is no growth trend."""
    started = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        sockets, rss = process_stats(pid)
        samples.append((time.monotonic() - started, sockets, rss))


async def run_load(
    url: str, controls: dict[str, str], minutes: float, concurrency: int, fault_rate: float, pid: int
) -> None:
    rng = random.Random(20261125)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    overran: list[float] = []
    injected = 0
    stop_at = time.monotonic() + minutes * 60
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with (
        httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http,
        httpx.AsyncClient(timeout=5) as ctl,
    ):

        async def worker(worker_id: int) -> None:
            nonlocal injected
            i = worker_id
            while time.monotonic() < stop_at:
                i += concurrency
                started = time.monotonic()
                try:
                    response = await http.post("/rag", json={"query": QUESTIONS[i % len(QUESTIONS)]})
                    statuses[str(response.status_code)] += 1
                    if response.status_code == 200 and response.json()["degraded"]:
                        statuses["200 degraded"] += 1
                except httpx.HTTPError as exc:
                    statuses[f"client {type(exc).__name__}"] += 1
                elapsed = time.monotonic() - started
                latencies.append(elapsed)
                if elapsed > DEADLINE_S + 1.0:
                    overran.append(elapsed)
                if rng.random() < fault_rate:
                    which, fault = rng.choice(FAULTS)
                    await ctl.post(f"{controls[which]}/_emulator/faults", json=fault)
                    injected += 1

        samples: list[tuple[float, int, float]] = []
        sampler = asyncio.create_task(sample_process(pid, 30.0, samples))
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        sampler.cancel()
    total = sum(v for k, v in statuses.items() if k != "200 degraded")
    print(
        f"requests sent: {total} over {minutes:g} min at concurrency {concurrency}; faults injected: {injected}"
    )
    print("status counts: " + ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
    print(
        f"latency p50={statistics.median(latencies) * 1000:.0f} ms "
        f"p99={percentile(latencies, 99) * 1000:.0f} ms max={max(latencies) * 1000:.0f} ms"
    )
    print(f"requests past their {DEADLINE_S:g} s deadline (+1 s grace): {len(overran)}")
    print(
        "gateway during the run (s: sockets, RSS MB): "
        + ", ".join(f"{t:.0f}s: {n}, {m:.0f}" for t, n, m in samples)
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--fault-rate", type=float, default=0.07)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rag-chaos-") as tmp:
        run_chaos(args, Path(tmp))


def run_chaos(args: argparse.Namespace, workdir: Path) -> None:
    """One run against a fresh store in WORKDIR, which the caller removes."""
    openai_port, sagemaker_port = free_port(), free_port()
    env = gateway_env(
        workdir,
        openai_port,
        sagemaker_port,
        label="chaos",
        REQUEST_TIMEOUT_S=str(DEADLINE_S),
        OPENAI_TIMEOUT_S="2",
        SAGEMAKER_READ_TIMEOUT_S="3",
        QUERY_UNDERSTANDING_TIMEOUT_S="1.5",
        BREAKER_RESET_TIMEOUT_S="2",
        LOG_LEVEL="error",
        # caches off: with a handful of questions they would answer most requests without the upstreams
        QUERY_CACHE_SIZE="0",
        EMBEDDING_CACHE_SIZE="0",
    )
    ingest(sorted(SAMPLE_CORPUS.glob("*.json")), env)
    controls = {"openai": loopback(openai_port), "sagemaker": loopback(sagemaker_port)}
    with Processes() as procs:
        start_emulators(procs, env, openai_port, sagemaker_port, openai_latency=0.05, sagemaker_latency=0.2)
        serve, url = start_gateway(procs, env)
        httpx.post(f"{url}/rag", json={"query": QUESTIONS[0]}, timeout=30)  # warm up
        sockets, rss = process_stats(serve.pid)
        print(f"gateway at start: open sockets={sockets}, RSS={rss:.0f} MB")
        asyncio.run(run_load(url, controls, args.minutes, args.concurrency, args.fault_rate, serve.pid))
        for control in controls.values():
            httpx.delete(f"{control}/_emulator/faults", timeout=5)
        time.sleep(1)  # let closed connections settle before counting sockets
        sockets, rss = process_stats(serve.pid)
        print(f"gateway at end:   open sockets={sockets}, RSS={rss:.0f} MB")
        healthy = httpx.post(f"{url}/rag", json={"query": QUESTIONS[0]}, timeout=30)
        print(
            f"a normal request after the run: HTTP {healthy.status_code}, degraded={healthy.json().get('degraded')}"
        )


if __name__ == "__main__":
    main()
