"""Throughput, latency and efficiency of the gateway under closed-loop load, against the Handbook's design.

    python -m benchmarks.bench [--levels 1,8,32,64,128,256] [--repeats 3] [--duration 20] [--skip-baseline]
                                                                                        (make bench)

What it does, all on loopback, every process stopped at the end (also on Ctrl-C or an error):

0. prints the machine: CPU model, the ISA extensions the embedder depends on (avx2, avx512f, VNNI, AMX),
   cores, RAM, onnxruntime and its execution provider, the embedding model, the date;
1. starts `rag-gateway emulate` with fixed latencies (OpenAI 0.15 s per call, SageMaker 0.6 s), ingests the
   corpus (../shared/data/articles.json, else the sample corpus) into a throwaway Qdrant folder, measures
   the CPU cost of one request's model work in isolation (`python -m benchmarks.cpu_model`), and starts ONE
   `rag-gateway serve` process on a free port;
2. drives it with a closed-loop load generator (benchmarks/loadgen.py) at each concurrency level for a
   fixed time after a short warm-up, reading the gateway's CPU time and RSS from /proc; every level runs
   ``--repeats`` times (the levels in turn, so slow drifts of a shared machine spread over all of them);
   503 + Retry-After answers above MAX_IN_FLIGHT_REQUESTS are counted as shed (the client waits the
   Retry-After), not as errors;
3. compares each run with its bound, min(min(C, MAX_IN_FLIGHT_REQUESTS) / critical path, CPU capacity),
   where the critical path is max(self-query, expansion) + LLM (the emulated latencies) + the medians of
   the gateway's own local stages at concurrency 1, and the CPU capacity is cores / CPU seconds of model
   work per request;
4. does the same against the Handbook-style baseline (benchmarks/handbook_baseline.py, a fresh process
   per level, shorter windows, one run per level) and prints ours/baseline;
5. prints, per level, the median and the spread (min-max) over the runs, the same as a markdown table for
   the README, and writes bench-results.json at the project root (the machine, the settings, every run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from benchmarks.loadgen import (
    LOCAL_STAGES,
    LevelResult,
    RssSampler,
    admitted,
    aiohttp_sender,
    bound_rps,
    cpu_capacity_rps,
    critical_path_s,
    efficiency,
    load_questions,
    markdown_table,
    median_stages,
    process_cpu_seconds,
    process_memory_mb,
    result_row,
    run_level,
    spread,
    summarize_runs,
    thread_cpu_seconds,
)
from benchmarks.local_stack import (
    SAMPLE_CORPUS,
    TOKENIZER_DIR,
    Processes,
    free_port,
    gateway_env,
    ingest,
    loopback,
    start_emulators,
    start_gateway,
    wait_for,
)
from benchmarks.machine import describe_machine, machine_info
from rag_gateway.rag.retrieval.stores.folder_copy import copy_store_folder
from rag_gateway_emulators.server import run_on_uvloop

ROOT = Path(__file__).resolve().parents[1]  # the project root
DEFAULT_LEVELS = (1, 8, 32, 64, 128, 256)
SHARED = ROOT.parent / "shared" / "data"


# --- small helpers ----------------------------------------------------------------------------------------
def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


# --- one measured level -------------------------------------------------------------------------------------
@dataclass
class Measured:
    level: LevelResult
    cpu_s_per_request: float | None
    server_cores: float
    peak_rss_mb: float
    machine_busy: float  # fraction of all cores busy during the window
    others_cores: dict[str, float] = field(default_factory=dict)
    main_thread_cores: float = 0.0  # the server's main thread: uvicorn's event loop
    busiest_other_threads: list[float] = field(default_factory=list)  # cores, largest first
    outside_cores: float = 0.0  # cores busy with processes that are not ours (the machine is shared)


def measure_level(
    url: str,
    pid: int,
    questions: Sequence[str],
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    timeout_s: float,
    other_pids: dict[str, int],
) -> Measured:
    marks: dict[str, Any] = {}

    def snapshot(edge: str) -> Callable[[], None]:
        def take() -> None:
            marks[edge] = {
                "server": process_cpu_seconds(pid),
                "threads": thread_cpu_seconds(pid),
                "self": time.process_time(),
                "machine": machine_busy_jiffies(),
                **{name: process_cpu_seconds(p) for name, p in other_pids.items()},
            }

        return take

    async def go() -> tuple[LevelResult, float]:
        timeout = aiohttp.ClientTimeout(total=timeout_s, connect=10.0)
        async with contextlib.AsyncExitStack() as stack:
            connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
            session = await stack.enter_async_context(
                aiohttp.ClientSession(url, connector=connector, timeout=timeout)
            )
            rss = await stack.enter_async_context(RssSampler(pid))
            result = await run_level(
                aiohttp_sender(session),
                questions,
                concurrency,
                duration_s,
                warmup_s=warmup_s,
                on_window_start=snapshot("start"),
                on_window_end=snapshot("end"),
            )
        return result, rss.peak_mb

    level, peak = run_on_uvloop(go())
    start, end = marks["start"], marks["end"]
    window = level.window_s
    server_cpu = end["server"] - start["server"]
    busy = (end["machine"][0] - start["machine"][0]) / max(1, end["machine"][1] - start["machine"][1])
    others = {name: (end[name] - start[name]) / window for name in other_pids}
    others["load generator"] = (end["self"] - start["self"]) / window
    threads = {tid: (cpu - start["threads"].get(tid, 0.0)) / window for tid, cpu in end["threads"].items()}
    main_thread = threads.pop(pid, 0.0)
    outside = busy * cores() - server_cpu / window - sum(others.values())
    return Measured(
        level=level,
        cpu_s_per_request=server_cpu / level.completed if level.completed else None,
        server_cores=server_cpu / window,
        peak_rss_mb=peak,
        machine_busy=busy,
        others_cores=others,
        main_thread_cores=main_thread,
        busiest_other_threads=sorted((c for c in threads.values() if c >= 0.01), reverse=True),
        outside_cores=max(0.0, outside),
    )


def describe(name: str, m: Measured) -> str:
    lv = m.level
    cpu_ms = f"{m.cpu_s_per_request * 1000:.1f}" if m.cpu_s_per_request else "-"
    others = ", ".join(f"{k} {v:.2f}" for k, v in m.others_cores.items())
    errors = f" errors={lv.errors} {dict(lv.error_kinds)}" if lv.errors else ""
    errors += f" shed={lv.shed}" if lv.shed else ""
    degraded = f" degraded={lv.degraded}" if lv.degraded else ""
    return (
        f"  {name} C={lv.concurrency:<3} {lv.rps:7.2f} rps  p50 {lv.p(50):8.1f}  p95 {lv.p(95):8.1f}  "
        f"p99 {lv.p(99):8.1f} ms  n={lv.completed}{errors}{degraded}  cpu {cpu_ms} ms/req\n"
        f"      server threads (cores): event loop {m.main_thread_cores:.2f}, others "
        f"[{', '.join(f'{c:.2f}' for c in m.busiest_other_threads[:6])}]\n"
        f"      cores used: server {m.server_cores:.2f}, {others}, anything else {m.outside_cores:.2f} "
        f"(machine {m.machine_busy:.0%} busy); peak RSS {m.peak_rss_mb:.0f} MB"
    )


def machine_busy_now(seconds: float = 2.0) -> float:
    """Fraction of all cores busy over the next ``seconds`` (before anything of ours runs)."""
    busy0, total0 = machine_busy_jiffies()
    time.sleep(seconds)
    busy1, total1 = machine_busy_jiffies()
    return (busy1 - busy0) / max(1, total1 - total0)


# --- the run --------------------------------------------------------------------------------------------------
def parse_levels(text: str) -> list[int]:
    levels = [int(x) for x in text.split(",") if x.strip()]
    if not levels or any(c < 1 for c in levels):
        raise argparse.ArgumentTypeError("levels: comma-separated positive integers, e.g. 1,8,32,64")
    return levels


def build_parser() -> argparse.ArgumentParser:
    default_corpus = [SHARED / "articles.json"] if (SHARED / "articles.json").is_file() else None
    default_queries = SHARED / "queries.json" if (SHARED / "queries.json").is_file() else None
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument(
        "--levels", type=parse_levels, default=list(DEFAULT_LEVELS), help="default: 1,8,32,64,128,256"
    )
    p.add_argument("--repeats", type=int, default=3, help="runs of every level (default 3): median, min-max")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per run (default 20)")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each level (3)")
    p.add_argument(
        "--openai-latency", type=float, default=0.15, help="seconds per OpenAI call (default 0.15)"
    )
    p.add_argument(
        "--sagemaker-latency", type=float, default=0.6, help="seconds per SageMaker call (default 0.6)"
    )
    p.add_argument("--skip-baseline", action="store_true", help="do not run the Handbook-style baseline")
    p.add_argument(
        "--baseline-duration",
        type=float,
        default=10.0,
        help="measured seconds per baseline level (default 10, at most --duration)",
    )
    p.add_argument(
        "--corpus",
        type=Path,
        nargs="+",
        default=default_corpus,
        metavar="PATH",
        help="files to ingest (default: ../shared/data/articles.json, else the sample corpus)",
    )
    p.add_argument(
        "--queries",
        type=Path,
        default=default_queries,
        help="queries.json (default: ../shared/data/queries.json, else built-in questions)",
    )
    p.add_argument(
        "--qdrant-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="copy this already-ingested local Qdrant folder instead of ingesting (saves the ingest time)",
    )
    p.add_argument("--calibration-requests", type=int, default=100, help="questions timed in isolation")
    p.add_argument("--seed", type=int, default=20240917, help="question shuffle seed")
    p.add_argument("--output", type=Path, default=ROOT / "bench-results.json")
    p.add_argument("--keep-workdir", action="store_true", help="keep the Qdrant folders and the logs")
    return p


def max_in_flight() -> int:
    """The gateway's MAX_IN_FLIGHT_REQUESTS: the environment's, else the settings' default."""
    from rag_gateway.config import Settings

    return int(
        os.environ.get("MAX_IN_FLIGHT_REQUESTS") or Settings.model_fields["max_in_flight_requests"].default
    )


def base_env(workdir: Path, openai_port: int, sagemaker_port: int) -> dict[str, str]:
    return gateway_env(
        workdir,
        openai_port,
        sagemaker_port,
        EMBEDDING_TOKENIZER_DIR=os.environ.get("EMBEDDING_TOKENIZER_DIR", str(TOKENIZER_DIR)),
        # whatever a developer's .env says: one process, no API keys (the load generator sends none)
        WORKERS="1",
        API_KEYS_SHA256="",
        MAX_IN_FLIGHT_REQUESTS=str(max_in_flight()),  # whatever .env says: the bound uses this value
        # caches off unless asked for: every request then does the full work the bound describes
        QUERY_CACHE_SIZE=os.environ.get("QUERY_CACHE_SIZE", "0"),
        EMBEDDING_CACHE_SIZE=os.environ.get("EMBEDDING_CACHE_SIZE", "0"),
    )


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def estimated_seconds(args: argparse.Namespace) -> float:
    """A rough total: the runs, the baseline levels, and set-up (ingest, calibration, start-ups)."""
    ours = args.repeats * len(args.levels) * (args.duration + args.warmup)
    base = 0.0 if args.skip_baseline else len(args.levels) * (min(args.baseline_duration, args.duration) + 8)
    return ours + base + (20 if args.qdrant_from else 80)


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> int:
    t_start = time.monotonic()
    corpus: list[Path] = args.corpus or sorted(SAMPLE_CORPUS.glob("*.json"))
    questions = load_questions(args.queries, seed=args.seed)
    n_cores = cores()
    limit = max_in_flight()
    machine = machine_info()
    print(describe_machine(machine), flush=True)
    print(
        f"bench: corpus: {', '.join(str(p) for p in corpus)}; "
        f"{len(questions)} questions from {args.queries or 'the built-in list'}; "
        f"emulated latency: OpenAI {args.openai_latency * 1000:.0f} ms/call, "
        f"SageMaker {args.sagemaker_latency * 1000:.0f} ms/call; levels {','.join(map(str, args.levels))} x "
        f"{args.repeats} run(s) of {args.duration:g} s; MAX_IN_FLIGHT_REQUESTS {limit}; "
        f"about {estimated_seconds(args) / 60:.0f} min in all",
        flush=True,
    )
    busy_before = machine_busy_now()
    if busy_before > 0.10:
        print(
            f"WARNING: the machine is already {busy_before:.0%} busy before the benchmark starts (other processes); "
            "expect lower throughput and noisier numbers",
            flush=True,
        )
    openai_port, sagemaker_port = free_port(), free_port()
    env = base_env(workdir, openai_port, sagemaker_port)

    # 1. ingest, a private copy for the baseline, and the CPU model in isolation (the folder is unlocked now)
    t0 = time.monotonic()
    if args.qdrant_from:
        copy_store_folder(args.qdrant_from, workdir / "qdrant")
        print(f"qdrant: copied {args.qdrant_from} (no ingest)", flush=True)
    else:
        ingest(corpus, env, cwd=ROOT)
        print(f"ingest: {time.monotonic() - t0:.1f} s", flush=True)
    if not args.skip_baseline:
        copy_store_folder(workdir / "qdrant", workdir / "qdrant-baseline")
    calibration_cmd = [sys.executable, "-m", "benchmarks.cpu_model", "-n", str(args.calibration_requests)]
    if args.queries:
        calibration_cmd += ["--queries", str(args.queries), "--seed", str(args.seed)]
    calibration = json.loads(
        subprocess.run(calibration_cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    )
    model_cpu_s = float(calibration["cpu_s_per_request"])
    capacity = cpu_capacity_rps(n_cores, model_cpu_s)
    machine = machine_info(
        {key: calibration.get(key) for key in ("embedding_model", "onnxruntime", "providers", "onnx_threads")}
    )
    print(describe_machine(machine), flush=True)
    print(
        f"model work in isolation: {model_cpu_s * 1000:.1f} CPU ms/request "
        f"(stage CPU medians ms: {calibration['stage_cpu_ms_median']}), "
        f"{calibration['wall_s_per_request'] * 1000:.1f} ms wall -> CPU capacity {n_cores}/{model_cpu_s:.4f} s "
        f"= {capacity:.1f} rps",
        flush=True,
    )

    # 2. emulators and the gateway
    emulate = start_emulators(
        procs,
        env,
        openai_port,
        sagemaker_port,
        openai_latency=args.openai_latency,
        sagemaker_latency=args.sagemaker_latency,
        deadline_s=30,
    )
    t0 = time.monotonic()
    gateway, gateway_url = start_gateway(procs, env, deadline_s=180)
    rss_start, hwm = process_memory_mb(gateway.pid)
    print(
        f"gateway (pid {gateway.pid}) ready in {time.monotonic() - t0:.1f} s; "
        f"RSS after start-up {rss_start:.0f} MB (peak so far {hwm:.0f} MB)",
        flush=True,
    )
    first = httpx.post(f"{gateway_url}/rag", json={"query": questions[0]}, timeout=60)
    first.raise_for_status()
    print(f"RSS after the first request: {process_memory_mb(gateway.pid)[0]:.0f} MB", flush=True)

    others = {"emulators": emulate.pid}
    ours: dict[int, list[Measured]] = {c: [] for c in args.levels}
    print(
        f"gateway: {args.duration:g} s per run after {args.warmup:g} s warm-up, {args.repeats} run(s) per level",
        flush=True,
    )
    for repeat in range(1, args.repeats + 1):
        for concurrency in args.levels:
            m = measure_level(
                gateway_url, gateway.pid, questions, concurrency, args.duration, args.warmup, 60.0, others
            )
            ours[concurrency].append(m)
            print(describe(f"gateway {repeat}/{args.repeats}", m), flush=True)

    # 3. the bound
    if 1 in ours:
        stage_timings = [t for m in ours[1] for t in m.level.stage_timings]
    else:
        stage_timings = measure_level(
            gateway_url, gateway.pid, questions, 1, min(10.0, args.duration), 1.0, 60.0, others
        ).level.stage_timings
    stages = median_stages(stage_timings)
    critical = critical_path_s(args.openai_latency, args.sagemaker_latency, stages)
    gw_hwm = process_memory_mb(gateway.pid)[1]
    procs.stop("gateway")

    # 4. the baseline
    baseline: dict[int, Measured] = {}
    if not args.skip_baseline:
        b_duration = min(args.baseline_duration, args.duration)
        b_warmup = min(args.warmup, 2.0)
        b_env = {**env, "QDRANT_PATH": str(workdir / "qdrant-baseline")}
        print(f"baseline: {b_duration:g} s per level after {b_warmup:g} s, a fresh process each", flush=True)
        for concurrency in args.levels:
            port = free_port()
            url = loopback(port)
            process = procs.start(
                "baseline", [sys.executable, "-m", "benchmarks.handbook_baseline", "--port", str(port)], b_env
            )
            wait_for(f"{url}/health", 180, procs=procs, name="baseline")
            for q in questions[:2]:  # warm the model and the code paths
                httpx.post(f"{url}/rag", json={"query": q}, timeout=60).raise_for_status()
            # Requests queue behind each other in the blocked event loop: allow C times the latency.
            timeout = 30.0 + concurrency * 5.0
            baseline[concurrency] = m = measure_level(
                url, process.pid, questions, concurrency, b_duration, b_warmup, timeout, others
            )
            print(describe("baseline", m), flush=True)
            procs.stop("baseline", timeout=3.0)  # drops its backlog of queued requests

    # 5. report
    local = {s: stages.get(s, 0.0) for s in LOCAL_STAGES}
    print()
    print(
        "critical path = max(self-query, expansion) + LLM + local stages at C=1 (gateway timings_ms medians)"
    )
    print(
        f"              = {args.openai_latency * 1000:.0f} + {args.sagemaker_latency * 1000:.0f} + "
        + " + ".join(f"{k} {v:.1f}" for k, v in local.items())
        + f" = {critical * 1000:.1f} ms"
    )
    print("all C=1 stage medians (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stages.items())))
    print(
        f"CPU capacity  = {n_cores} cores / {model_cpu_s * 1000:.1f} ms CPU of model work per request "
        f"(embed+search+rerank timed in-process with time.process_time over {calibration['requests']} "
        f"questions) = {capacity:.1f} rps"
    )
    gw_c1 = spread(m.cpu_s_per_request for m in ours.get(1, []))[0]
    if gw_c1:
        print(
            f"   (for comparison: the whole gateway process used {gw_c1 * 1000:.1f} CPU ms/request at C=1, "
            f"i.e. {cpu_capacity_rps(n_cores, gw_c1):.1f} rps if it had both cores to itself)"
        )
    print(f"gateway RSS: {rss_start:.0f} MB after start-up, {gw_hwm:.0f} MB peak over the run (VmHWM)")
    print()

    runs: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for concurrency, measured in ours.items():
        base = baseline.get(concurrency)
        base_rps = base.level.rps if base else None
        rows = []
        for m in measured:
            row = result_row(
                m.level,
                cpu_s_per_request=m.cpu_s_per_request,
                peak_rss_mb=m.peak_rss_mb,
                efficiency_value=efficiency(m.level.rps, concurrency, critical, capacity, limit),
                baseline_rps=base_rps,
            )
            box = (m.server_cores + sum(m.others_cores.values())) / n_cores
            rows.append({**row, "outside_cores": round(m.outside_cores, 3), "box_busy": round(box, 3)})
        runs += rows
        summary = summarize_runs(rows)
        summary["bound_rps"] = bound_rps(concurrency, critical, capacity, limit)
        summary["bound_by"] = "cpu" if capacity < admitted(concurrency, limit) / critical else "lat"
        summary["outside_cores"] = spread(m.outside_cores for m in measured)[0]
        summary["box_busy"] = spread(float(r["box_busy"]) for r in rows)[0]
        summaries.append(summary)

    def cell(s: dict[str, Any], key: str, digits: int, width: int) -> str:
        median, low, high = s[f"{key}_median"], s[f"{key}_min"], s[f"{key}_max"]
        if median is None:
            return f"{'-':>{width}}"
        text = f"{median:.{digits}f}"
        if args.repeats > 1 and low is not None and high is not None:
            text += f" [{low:.{digits}f}-{high:.{digits}f}]"
        return f"{text:>{width}}"

    wide = 22 if args.repeats > 1 else 8
    header = (
        f"{'C':>4} {'rps [min-max]':>{wide}} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'err':>4} {'shed':>6} "
        f"{'cpu ms/req':>10} {'peak MB':>7} {'bound':>7} {'by':>3} {'effic. [min-max]':>{wide}} "
        f"{'base rps':>8} {'ours/base':>9} {'box':>5} {'ext':>5}"
    )
    print(header)
    print("-" * len(header))
    for s in summaries:
        base_rps = s["baseline_rps"]
        ratio = f"{s['rps_median'] / base_rps:9.1f}" if base_rps else f"{'-':>9}"
        cpu_ms = f"{s['cpu_ms_per_request']:10.1f}" if s["cpu_ms_per_request"] else f"{'-':>10}"
        base_txt = f"{base_rps:8.2f}" if base_rps is not None else f"{'-':>8}"
        p = {k: f"{s[k]:8.1f}" if s[k] is not None else f"{'-':>8}" for k in ("p50_ms", "p95_ms", "p99_ms")}
        print(
            f"{s['concurrency']:>4} {cell(s, 'rps', 2, wide)} {p['p50_ms']} {p['p95_ms']} {p['p99_ms']} "
            f"{s['errors']:>4} {s['shed']:>6} {cpu_ms} {s['peak_rss_mb'] or 0:7.0f} {s['bound_rps']:7.1f} "
            f"{s['bound_by']:>3} {cell(s, 'efficiency', 2, wide)} {base_txt} {ratio} {s['box_busy'] or 0:5.2f} "
            f"{s['outside_cores'] or 0:5.2f}"
        )
    print(
        f"medians over {args.repeats} run(s) per level, [min-max] over the runs; latencies and cpu: medians of "
        "the runs'; err and shed: summed over the runs\n"
        f"bound = min(min(C, MAX_IN_FLIGHT_REQUESTS={limit}) / critical path, CPU capacity) rps; by = which of "
        "the two binds; effic. = rps/bound;\nshed = 503 + Retry-After answers above the in-flight limit (by "
        "design, not errors); err = everything else that was not a good answer;\n"
        "box = share of the machine's cores busy with the benchmark's own processes (gateway, emulators, load\n"
        "generator): near 1.00 the box is saturated and only less CPU per request raises rps;\n"
        "ext = cores busy with processes that are not this benchmark's during the level (a shared machine:\n"
        "anything well above 0 means the gateway did not have the cores the bound assumes)"
    )
    seconds = time.monotonic() - t_start
    command = "python -m benchmarks.bench" + "".join(f" {a}" for a in args.argv)
    footer = (
        f"critical path {critical * 1000:.1f} ms ("
        f"{args.openai_latency * 1000:.0f} + {args.sagemaker_latency * 1000:.0f} + "
        + " + ".join(f"{k} {v:.1f}" for k, v in local.items() if v >= 0.05)
        + f"); CPU capacity for the model work {n_cores} cores / {model_cpu_s * 1000:.1f} ms = {capacity:.0f} rps; "
        f"RSS {rss_start:.0f} MB after start-up, {gw_hwm:.0f} MB peak; {seconds / 60:.0f} min in all"
    )
    print()
    print(f"markdown (README), `{command}`:\n")
    print(f"{describe_machine(machine)}\n")
    print(markdown_table(summaries))
    print(f"\n{footer}\n")
    document = {
        "command": command,
        "machine": machine,
        "settings": {
            "levels": args.levels,
            "repeats": args.repeats,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "openai_latency_s": args.openai_latency,
            "sagemaker_latency_s": args.sagemaker_latency,
            "max_in_flight_requests": limit,
            "corpus": [str(p) for p in corpus],
            "questions": len(questions),
        },
        "critical_path_ms": round(critical * 1000, 2),
        "local_stage_medians_ms": {k: round(v, 2) for k, v in local.items()},
        "model_cpu_ms_per_request": round(model_cpu_s * 1000, 3),
        "cpu_capacity_rps": round(capacity, 2),
        "gateway_rss_after_start_mb": round(rss_start, 1),
        "gateway_peak_rss_mb": round(gw_hwm, 1),
        "levels": summaries,
        "runs": runs,
        "seconds": round(seconds, 1),
    }
    args.output.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    print(f"wrote {args.output} ({seconds:.0f} s in all)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.repeats < 1:
        build_parser().error("--repeats must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    procs = Processes(workdir, cwd=ROOT)
    try:
        with sigterm_as_interrupt():
            return run(args, procs, workdir)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr if isinstance(exc.stderr, str) else ""
        print(f"bench: {exc}\n{detail}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"bench: a warm-up request failed: {exc!r}", file=sys.stderr)
        for name in procs.running:
            print(f"--- {name} log (tail) ---\n{procs.tail(name)}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        if args.keep_workdir:
            print(f"work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
