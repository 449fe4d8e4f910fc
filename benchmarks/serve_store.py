"""`/rag` under load on an existing store folder, per settings profile, optionally inside a memory limit.

    python -m benchmarks.serve_store STORE [STORE ...] [--profile NAME:KEY=VALUE[,KEY=VALUE]] ...
        [--memory-limit-mb 2048] [--levels 1,64] [--duration 20] [--rounds 1] [--output FILE]

For a store that took long to build (`make bench-scale ... --keep` leaves its folders), this answers what
the scale table cannot afford to repeat: how `/rag` behaves with other settings (e.g. the large-corpus
profile HYBRID_SPARSE_QUERIES=original) and inside a hard memory limit, as a container's would be
(`benchmarks/memory_cgroup.py`: the gateway in a memory cgroup; the cgroup's peak and OOM kills recorded).
Each (store, profile) pair gets a fresh `rag-gateway serve` on the emulators (OpenAI 150 ms, SageMaker
600 ms), in turn, the order reversed every other round; per level: rps, p50/p99, the gateway's median
search and rerank stages (its own timings), CPU per request, RSS (anonymous + file-backed) at the end.
The store folder is opened by one gateway at a time and only read (the gateway rewrites its layout file).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench import SHARED, base_env, measure_level
from benchmarks.loadgen import load_questions, parse_proc_status_kb
from benchmarks.local_stack import RAG_GATEWAY, Processes, free_port, loopback, start_emulators, wait_for
from benchmarks.memory_cgroup import CgroupUnavailableError, MemoryCgroup

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("search", "rerank", "embed")


def parse_profile(text: str) -> tuple[str, dict[str, str]]:
    name, sep, rest = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME[:KEY=VALUE,...], got {text!r}")
    settings: dict[str, str] = {}
    for assignment in filter(None, rest.split(",")) if sep else []:
        key, eq, value = assignment.partition("=")
        if not eq or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {assignment!r}")
        settings[key] = value
    return name, settings


def parse_levels(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def rss_mb(pid: int) -> dict[str, float]:
    """The process's RSS now: whole, anonymous, file-backed (MB)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {
        key: round((parse_proc_status_kb(status, field) or 0) / 1024, 1)
        for key, field in (
            ("rss_mb", "VmRSS"),
            ("anon_mb", "RssAnon"),
            ("file_mb", "RssFile"),
            ("hwm_mb", "VmHWM"),
        )
    }


def serve_once(
    procs: Processes,
    env0: dict[str, str],
    store: Path,
    settings: dict[str, str],
    args: argparse.Namespace,
    questions: Sequence[str],
    emulator_pid: int,
) -> dict[str, Any]:
    env = {**env0, **settings, "QDRANT_PATH": str(store)}
    port = free_port()
    url = loopback(port)
    command = [RAG_GATEWAY, "serve", "--port", str(port)]
    cgroup = None
    if args.memory_limit_mb:
        cgroup = MemoryCgroup.create(f"rag-serve-{port}", args.memory_limit_mb * 1024 * 1024)
        command = cgroup.wrap(command)
    started = time.monotonic()
    gateway = procs.start("gateway", command, env)
    try:
        wait_for(f"{url}/readyz", 600, procs=procs, name="gateway")
        result: dict[str, Any] = {"ready_s": round(time.monotonic() - started, 2), "levels": []}
        for question in questions[:4]:
            httpx.post(f"{url}/rag", json={"query": question}, timeout=60).raise_for_status()
        for concurrency in args.levels:
            m = measure_level(
                url,
                gateway.pid,
                questions,
                concurrency,
                args.duration,
                args.warmup,
                60.0,
                {"emulators": emulator_pid},
            )
            level = m.level
            stages = {
                stage: round(statistics.median(t[stage] for t in level.stage_timings if stage in t), 2)
                for stage in STAGES
                if any(stage in t for t in level.stage_timings)
            }
            result["levels"].append(
                {
                    "concurrency": concurrency,
                    "rps": round(level.rps, 2),
                    "p50_ms": round(level.p(50), 1),
                    "p99_ms": round(level.p(99), 1),
                    "errors": level.errors,
                    "cpu_ms_per_request": round((m.cpu_s_per_request or 0) * 1000, 2),
                    "stage_medians_ms": stages,
                }
            )
        result.update(rss_mb(gateway.pid))
        if cgroup is not None:
            peak = cgroup.peak_bytes()
            result["memory_limit_mb"] = args.memory_limit_mb
            result["cgroup_peak_mb"] = round(peak / 2**20, 1) if peak is not None else None
            result["oom_kills"] = cgroup.oom_kills()
        return result
    finally:
        procs.stop("gateway")
        if cgroup is not None:
            cgroup.remove()


def label(store: Path) -> str:
    """A store named by its parent and itself (``n1000000/store-edge``), not by its temporary location."""
    return f"{store.parent.name}/{store.name}"


def describe(name: str, store: Path, result: dict[str, Any]) -> str:
    lines = [
        f"{name} on {label(store)}: ready {result['ready_s']} s; RSS {result['rss_mb']} MB (anon "
        f"{result['anon_mb']}, file {result['file_mb']}), peak {result['hwm_mb']} MB"
    ]
    if "memory_limit_mb" in result:
        lines[0] += (
            f"; memory limit {result['memory_limit_mb']} MB: cgroup peak {result['cgroup_peak_mb']} MB, "
            f"OOM kills {result['oom_kills']}"
        )
    for level in result["levels"]:
        lines.append(
            f"  C={level['concurrency']}: {level['rps']} rps, p50 {level['p50_ms']} / p99 {level['p99_ms']} ms, "
            f"errors {level['errors']}, CPU {level['cpu_ms_per_request']} ms/req, stage medians "
            f"{level['stage_medians_ms']}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("stores", type=Path, nargs="+", help="store folders (QDRANT_PATH) to serve")
    parser.add_argument(
        "--profile",
        type=parse_profile,
        action="append",
        default=None,
        metavar="NAME[:KEY=VALUE,...]",
        help="a settings profile (repeatable; default: the gateway's defaults, named 'default')",
    )
    parser.add_argument("--memory-limit-mb", type=int, default=0, help="run each gateway in a memory cgroup")
    parser.add_argument("--levels", type=parse_levels, default=[1, 64], help="concurrency levels (1,64)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per level (20)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "serve-store-results.json")
    args = parser.parse_args(argv)
    profiles = args.profile or [("default", {})]
    queries = SHARED / "queries.json"
    questions = load_questions(queries if queries.is_file() else None)
    workdir = Path(tempfile.mkdtemp(prefix="rag-serve-"))
    runs: list[dict[str, Any]] = []
    try:
        with Processes(workdir, cwd=ROOT) as procs:
            openai_port, sagemaker_port = free_port(), free_port()
            env0 = base_env(workdir, openai_port, sagemaker_port)
            emulators = start_emulators(
                procs, env0, openai_port, sagemaker_port, openai_latency=0.15, sagemaker_latency=0.6
            )
            pairs = [(store, name, settings) for store in args.stores for name, settings in profiles]
            for round_ in range(args.rounds):
                for store, name, settings in pairs if round_ % 2 == 0 else pairs[::-1]:
                    try:
                        result = serve_once(procs, env0, store, settings, args, questions, emulators.pid)
                    except CgroupUnavailableError as exc:
                        print(f"cannot apply the memory limit here: {exc}", file=sys.stderr)
                        return 2
                    runs.append({"store": label(store), "profile": name, "settings": settings, **result})
                    print(describe(name, store, result), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.output.write_text(
        json.dumps({"argv": list(sys.argv[1:] if argv is None else argv), "runs": runs}, indent=2)
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
