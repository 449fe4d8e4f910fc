"""A/B of gateway builds under the bench's closed-loop load: CPU per request, interleaved.

    python -m benchmarks.ab_gateway --build NAME=SRC[,KEY=VALUE...] --build ... [--rounds 4]
                                    [--concurrency 64] [--duration 20]

Each ``--build`` is a name, a source folder (a copy of ``src/`` as it was, put first on ``PYTHONPATH``; ``-``
for the installed code) and settings for that gateway; ``QDRANT_FROM=DIR`` names an already-ingested store
folder to copy (its index must match the build's embedding model). One emulator process (the bench's
latencies) serves all; the builds run in turn, one gateway at a time, the order reversed every other round,
so the drift of a shared machine spreads over all of them. Per run: rps, the gateway's CPU per completed
request from /proc, split into the event loop (the main thread) and the other threads, and its peak RSS;
then medians [min-max] per build.

    # e.g. the code before a change (a copy of src/ from git) against the working tree:
    git archive HEAD src | tar -x -C /tmp/before
    python -m benchmarks.ab_gateway --build before=/tmp/before/src,QDRANT_FROM=/tmp/q \\
        --build now=-,QDRANT_FROM=/tmp/q
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from benchmarks.bench import SHARED, base_env, measure_level
from benchmarks.loadgen import load_questions, median_stages
from benchmarks.local_stack import Processes, free_port, start_emulators, start_gateway
from rag_gateway.rag.retrieval.stores.folder_copy import copy_store_folder

ROOT = Path(__file__).resolve().parents[1]


def parse_build(text: str) -> tuple[str, str, dict[str, str]]:
    name, sep, rest = text.partition("=")
    source, *assignments = rest.split(",")
    if not sep or not name or not source:
        raise argparse.ArgumentTypeError(f"expected NAME=SRC[,KEY=VALUE...], got {text!r}")
    settings = {}
    for assignment in assignments:
        key, eq, value = assignment.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {assignment!r}")
        settings[key] = value
    return name, source, settings


def py_spy_command() -> str | None:
    """py-spy from PATH or beside this interpreter (a virtualenv that is not activated)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.is_file() else None)


def record_stacks(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (every thread, without pausing it) for ``seconds`` into ``out``."""
    command = [
        str(py_spy_command()),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(round(seconds)),
        "--rate",
        "250",
    ]
    command += ["--format", "raw", "--threads", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--build", type=parse_build, action="append", required=True, metavar="NAME=SRC[,K=V]")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="also record each run's stacks with py-spy (a developer tool, `pip install py-spy`) into "
        "DIR/NAME-ROUND.txt (collapsed stacks per thread; summarise with `python -m benchmarks.profile_summary`)",
    )
    args = parser.parse_args(argv)
    if args.py_spy:
        if py_spy_command() is None:
            parser.error("--py-spy needs the py-spy command (pip install py-spy)")
        args.py_spy.mkdir(parents=True, exist_ok=True)

    queries = SHARED / "queries.json"
    questions = load_questions(queries if queries.is_file() else None)
    workdir = Path(tempfile.mkdtemp(prefix="rag-ab-"))
    openai_port, sagemaker_port = free_port(), free_port()
    env0 = base_env(workdir, openai_port, sagemaker_port)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in args.build}
    try:
        with Processes(workdir, cwd=ROOT) as procs:
            emulators = start_emulators(
                procs, env0, openai_port, sagemaker_port, openai_latency=0.15, sagemaker_latency=0.6
            )
            for round_ in range(args.rounds):
                order = args.build if round_ % 2 == 0 else args.build[::-1]
                for name, source, settings in order:
                    settings = dict(settings)
                    env = {**env0, **settings}
                    store = settings.pop("QDRANT_FROM", None)
                    if store:
                        folder = workdir / f"qdrant-{name}"
                        shutil.rmtree(folder, ignore_errors=True)
                        copy_store_folder(Path(store), folder)
                        env["QDRANT_PATH"] = str(folder)
                    env.pop("QDRANT_FROM", None)
                    if source != "-":
                        env["PYTHONPATH"] = source
                    gateway, url = start_gateway(procs, env, deadline_s=180)
                    for question in questions[:8]:
                        httpx.post(f"{url}/rag", json={"query": question}, timeout=60).raise_for_status()
                    recorder = (
                        record_stacks(
                            gateway.pid, args.py_spy / f"{name}-{round_}.txt", args.duration + args.warmup
                        )
                        if args.py_spy
                        else None
                    )
                    m = measure_level(
                        url,
                        gateway.pid,
                        questions,
                        args.concurrency,
                        args.duration,
                        args.warmup,
                        60.0,
                        {"emulators": emulators.pid},
                    )
                    if recorder is not None:
                        recorder.wait(timeout=60)
                    rps = m.level.rps or float("nan")
                    row = {
                        "rps": m.level.rps,
                        "cpu_ms": (m.cpu_s_per_request or float("nan")) * 1000,
                        "event_loop_ms": m.main_thread_cores / rps * 1000,
                        "other_threads_ms": sum(m.busiest_other_threads) / rps * 1000,
                        "peak_rss_mb": m.peak_rss_mb,
                        "errors": m.level.errors,
                        "outside_cores": m.outside_cores,
                    }
                    runs[name].append(row)
                    print(name, {k: round(v, 2) for k, v in row.items()}, flush=True)
                    stages = median_stages(m.level.stage_timings)
                    print(
                        "   stage medians ms:",
                        {k: round(v, 1) for k, v in sorted(stages.items())},
                        flush=True,
                    )
                    procs.stop("gateway")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nC={args.concurrency}, {args.duration:g} s windows, {args.rounds} rounds: medians [min-max]")
    for name, rows in runs.items():
        cells = []
        for key in ("rps", "cpu_ms", "event_loop_ms", "other_threads_ms", "peak_rss_mb", "outside_cores"):
            values = [row[key] for row in rows]
            cells.append(f"{key} {statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]")
        print(f"  {name}: " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
