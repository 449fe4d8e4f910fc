"""The pure parts of the benchmark tools: statistics, the bound, /proc parsing, the load generator's results.

No timing assertions: the load generator runs against an in-process ``httpx.MockTransport``, and its aiohttp
sender against a local aiohttp server.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import aiohttp
import httpx
import pytest
from aiohttp import web
from benchmarks.loadgen import (
    BETWEEN_STAGES,
    FALLBACK_QUESTIONS,
    RESULT_KEYS,
    LevelResult,
    aiohttp_sender,
    between_stages_ms,
    bound_rps,
    cpu_capacity_rps,
    critical_path_s,
    efficiency,
    httpx_sender,
    load_questions,
    markdown_table,
    median_stages,
    parse_proc_stat_cpu,
    parse_proc_status_kb,
    percentile,
    process_cpu_seconds,
    process_memory_mb,
    result_row,
    run_level,
    shed_delay,
    spread,
    summarize_runs,
    validate_rag_response,
)
from benchmarks.machine import ISA_FLAGS, describe_machine, machine_info, parse_cpuinfo, parse_meminfo_gib

from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.rag.retrieval.stores.folder_copy import copy_store_folder

ROOT = Path(__file__).resolve().parents[2]


# --- percentiles and medians ----------------------------------------------------------------------------
def test_percentile_interpolates_linearly_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 25) == pytest.approx(1.75)


def test_percentile_matches_numpy_default() -> None:
    np = pytest.importorskip("numpy")
    values = [float(v) for v in (13, 2, 7, 99, 5, 5, 41, 0.5, 8, 21, 3)]
    for q in (50, 90, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_edge_cases() -> None:
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_stages_per_stage() -> None:
    samples = [{"embed": 10.0, "search": 4.0}, {"embed": 30.0, "search": 6.0}, {"embed": 20.0}]
    assert median_stages(samples) == {"embed": 20.0, "search": 5.0}


def test_the_time_between_stages_counts_the_concurrent_openai_calls_once() -> None:
    sample = {
        "self_query": 150.0,
        "expand": 160.0,
        "embed": 40.0,
        "search": 1.0,
        "llm": 600.0,
        "total": 810.0,
    }
    assert between_stages_ms(sample) == pytest.approx(9.0)
    assert median_stages([sample, {**sample, "total": 820.0}])[BETWEEN_STAGES] == pytest.approx(14.0)


# --- the bound -------------------------------------------------------------------------------------------
def test_critical_path_is_one_openai_call_plus_llm_plus_local_stages() -> None:
    stages = {
        "resolve_author": 0.5,
        "embed": 12.0,
        "search": 6.0,
        "rerank": 1.5,
        "llm": 600.0,
        "total": 900.0,
    }
    # self-query and expansion run concurrently: one OpenAI latency, not two; llm/total are not local work
    assert critical_path_s(0.15, 0.6, stages) == pytest.approx(0.15 + 0.6 + 0.020)
    assert critical_path_s(0.15, 0.6, {}) == pytest.approx(0.75)


def test_cpu_capacity() -> None:
    assert cpu_capacity_rps(2, 0.025) == pytest.approx(80.0)
    assert math.isinf(cpu_capacity_rps(2, 0.0))


def test_efficiency_uses_the_tighter_bound() -> None:
    critical, capacity = 0.8, 60.0
    # latency-bound at low concurrency: C / critical path
    assert bound_rps(8, critical, capacity) == pytest.approx(10.0)
    assert efficiency(9.0, 8, critical, capacity) == pytest.approx(0.9)
    # CPU-bound at high concurrency: 64 / 0.8 = 80 > 60
    assert bound_rps(64, critical, capacity) == pytest.approx(60.0)
    assert efficiency(30.0, 64, critical, capacity) == pytest.approx(0.5)


def test_the_latency_bound_counts_only_the_requests_the_gateway_admits() -> None:
    # above MAX_IN_FLIGHT_REQUESTS the gateway sheds the rest at once: 128 in flight, not 256
    assert bound_rps(256, 0.8, 1000.0, max_in_flight=128) == pytest.approx(160.0)
    assert bound_rps(64, 0.8, 1000.0, max_in_flight=128) == pytest.approx(80.0)
    assert efficiency(80.0, 256, 0.8, 1000.0, max_in_flight=128) == pytest.approx(0.5)
    assert bound_rps(256, 0.8, 100.0, max_in_flight=128) == pytest.approx(100.0)  # CPU still binds


# --- /proc ------------------------------------------------------------------------------------------------
def test_parse_proc_stat_cpu_handles_parens_and_spaces_in_the_name() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    line = "4242 (rag (gw) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 7 0 100 0 0"
    assert parse_proc_stat_cpu(line, clock_ticks=100) == pytest.approx(3.0)


def test_parse_proc_status_kb() -> None:
    text = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n"
    assert parse_proc_status_kb(text, "VmRSS") == 102400
    assert parse_proc_status_kb(text, "VmHWM") == 204800
    assert parse_proc_status_kb(text, "VmSwap") is None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_reading_this_process_from_proc() -> None:
    assert process_cpu_seconds(os.getpid()) > 0
    rss, hwm = process_memory_mb(os.getpid())
    assert 0 < rss <= hwm


# --- questions and response validation ------------------------------------------------------------------
def test_load_questions_reads_the_query_field_and_shuffles_deterministically(tmp_path: Path) -> None:
    path = tmp_path / "queries.json"
    items = [{"split": "train", "query": f"question {i}?"} for i in range(50)]
    path.write_text(json.dumps([*items, {"split": "test", "query": "  "}, {"nope": 1}]))
    first, second = load_questions(path, seed=7), load_questions(path, seed=7)
    assert first == second
    assert sorted(first) == sorted(item["query"] for item in items)
    assert first != [item["query"] for item in items]  # shuffled
    assert load_questions(path, seed=8) != first


def test_load_questions_falls_back_to_the_built_in_list(tmp_path: Path) -> None:
    assert sorted(load_questions(tmp_path / "missing.json")) == sorted(FALLBACK_QUESTIONS)
    assert sorted(load_questions(None)) == sorted(FALLBACK_QUESTIONS)


def test_validate_rag_response() -> None:
    def response(status: int, body: object) -> httpx.Response:
        return httpx.Response(status, json=body)

    assert validate_rag_response(response(200, {"answer": "yes"})) is None
    assert validate_rag_response(response(200, {"answer": "  "})) == "empty answer"
    assert validate_rag_response(response(200, ["answer"])) == "empty answer"
    assert validate_rag_response(response(503, {"error": {}})) == "HTTP 503"
    assert validate_rag_response(httpx.Response(200, content=b"not json")) == "body is not JSON"


# --- the load generator, against an in-process fake gateway ----------------------------------------------
def fake_gateway() -> tuple[httpx.MockTransport, dict[str, int]]:
    seen = {"requests": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        seen["requests"] += 1
        await asyncio.sleep(0.002)
        query = json.loads(request.content)["query"]
        if query.endswith("boom"):
            raise httpx.ConnectError("refused", request=request)
        if query.endswith("busy"):
            return httpx.Response(503, json={"error": {"type": "overloaded"}})
        if query.endswith("full"):  # the gateway's admission control: 503 + Retry-After
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {"type": "overloaded"}})
        return httpx.Response(
            200,
            json={
                "answer": f"about {query}",
                "timings_ms": {"embed": 10.0, "search": 5.0, "rerank": 1.0, "llm": 600.0},
                "degraded": ["rerank"] if query.endswith("slow") else [],
            },
        )

    return httpx.MockTransport(handler), seen


async def test_closed_loop_run_and_the_results_json_shape() -> None:
    transport, seen = fake_gateway()
    questions = ["a", "b boom", "c", "d busy", "e slow"]
    edges: list[str] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        level = await run_level(
            httpx_sender(client),
            questions,
            concurrency=4,
            duration_s=0.3,
            warmup_s=0.05,
            on_window_start=lambda: edges.append("start"),
            on_window_end=lambda: edges.append("end"),
            error_backoff_s=0.001,
        )
    assert edges == ["start", "end"]
    assert seen["requests"] >= level.completed + level.errors > 0
    assert level.completed > 0 and level.errors > 0 and level.degraded > 0
    assert set(level.error_kinds) <= {"ConnectError", "HTTP 503"}
    assert level.rps == pytest.approx(level.completed / level.window_s)
    assert median_stages(level.stage_timings)["embed"] == 10.0

    row = result_row(level, cpu_s_per_request=0.02, peak_rss_mb=400.0, efficiency_value=0.9, baseline_rps=1.0)
    assert tuple(row) == RESULT_KEYS
    assert row["concurrency"] == 4 and row["errors"] == level.errors
    decoded = json.loads(json.dumps([row]))
    assert decoded[0]["p50_ms"] <= decoded[0]["p95_ms"] <= decoded[0]["p99_ms"]


def test_result_row_turns_missing_numbers_into_null() -> None:
    row = result_row(
        LevelResult(concurrency=8, window_s=10.0),
        cpu_s_per_request=None,
        peak_rss_mb=float("nan"),
        efficiency_value=float("inf"),
        baseline_rps=None,
    )
    assert row == {
        "concurrency": 8,
        "rps": 0.0,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "errors": 0,
        "shed": 0,
        "cpu_s_per_request": None,
        "peak_rss_mb": None,
        "efficiency": None,
        "baseline_rps": None,
    }
    json.dumps(row, allow_nan=False)


async def test_load_shed_above_the_in_flight_limit_is_counted_apart_from_errors() -> None:
    transport, _ = fake_gateway()
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        level = await run_level(
            httpx_sender(client),
            ["a", "b full", "c busy"],
            concurrency=3,
            duration_s=0.3,
            error_backoff_s=0.001,
        )
    assert level.shed > 0 and level.errors > 0 and level.completed > 0
    assert dict(level.error_kinds) == {"HTTP 503": level.errors}  # only the 503 without Retry-After
    assert (
        result_row(level, cpu_s_per_request=None, peak_rss_mb=None, efficiency_value=None, baseline_rps=None)[
            "shed"
        ]
        == level.shed
    )


def test_shed_delay_reads_retry_after_only_on_a_503() -> None:
    assert shed_delay(httpx.Response(503, headers={"Retry-After": "1"})) == 1.0
    assert shed_delay(httpx.Response(503, headers={"Retry-After": "600"})) == 5.0  # capped
    assert shed_delay(httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})) == 1.0
    assert shed_delay(httpx.Response(503)) is None
    assert shed_delay(httpx.Response(429, headers={"Retry-After": "1"})) is None


async def test_workers_take_turns_over_several_senders() -> None:
    used: list[str] = []

    def transport(name: str) -> httpx.MockTransport:
        async def handler(request: httpx.Request) -> httpx.Response:
            used.append(name)
            await asyncio.sleep(0.001)
            return httpx.Response(200, json={"answer": "yes"})

        return httpx.MockTransport(handler)

    async with (
        httpx.AsyncClient(transport=transport("one"), base_url="http://a.test") as one,
        httpx.AsyncClient(transport=transport("two"), base_url="http://b.test") as two,
    ):
        level = await run_level([httpx_sender(one), httpx_sender(two)], ["q"], concurrency=4, duration_s=0.1)
    assert level.completed > 0 and set(used) == {"one", "two"}


async def test_the_aiohttp_sender_posts_json_and_reads_status_headers_and_body() -> None:
    received: list[object] = []

    async def rag(request: web.Request) -> web.Response:
        received.append(await request.json())
        if received[-1] == {"query": "full"}:
            return web.json_response(
                {"error": {"type": "overloaded"}}, status=503, headers={"Retry-After": "2"}
            )
        return web.json_response({"answer": "yes", "timings_ms": {"embed": 3.0}})

    app = web.Application()
    app.router.add_post("/rag", rag)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            send = aiohttp_sender(session)
            good, full = await send({"query": "q"}), await send({"query": "full"})
            level = await run_level(send, ["q"], concurrency=2, duration_s=0.1)
    finally:
        await runner.cleanup()
    assert validate_rag_response(good) is None and good.json()["timings_ms"] == {"embed": 3.0}
    assert shed_delay(full) == 2.0 and validate_rag_response(full) == "HTTP 503"
    assert received[:2] == [{"query": "q"}, {"query": "full"}]
    assert level.completed > 0 and level.errors == 0
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:  # the server is gone now
        failed = await run_level(aiohttp_sender(session), ["q"], concurrency=1, duration_s=0.05)
    assert failed.completed == 0 and failed.errors > 0
    assert set(failed.error_kinds) == {"ClientConnectorError"}


# --- repeated runs: median and spread ---------------------------------------------------------------------
def run_row(concurrency: int, rps: float, eff: float | None, **extra: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(RESULT_KEYS)
    row.update(concurrency=concurrency, rps=rps, efficiency=eff, errors=0, shed=0, p50_ms=800.0)
    row.update(extra)
    return row


def test_spread_is_median_min_max_of_the_numbers() -> None:
    assert spread([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    assert spread([4.0, None, float("nan"), 2.0]) == (3.0, 2.0, 4.0)
    assert spread([]) == (None, None, None)


def test_summarize_runs_reports_median_and_spread_per_level() -> None:
    rows = [
        run_row(64, 70.0, 0.88, p50_ms=850.0, errors=1, shed=0, peak_rss_mb=400.0, cpu_s_per_request=0.010),
        run_row(64, 74.0, 0.93, p50_ms=820.0, errors=0, shed=5, peak_rss_mb=420.0, cpu_s_per_request=0.012),
        run_row(64, 72.0, 0.90, p50_ms=830.0, errors=2, shed=0, peak_rss_mb=410.0, cpu_s_per_request=0.011),
    ]
    summary = summarize_runs(rows)
    assert summary["runs"] == 3
    assert (summary["rps_median"], summary["rps_min"], summary["rps_max"]) == (72.0, 70.0, 74.0)
    assert (summary["efficiency_median"], summary["efficiency_min"], summary["efficiency_max"]) == (
        0.90,
        0.88,
        0.93,
    )
    assert summary["p50_ms"] == 830.0 and summary["cpu_ms_per_request"] == pytest.approx(11.0)
    assert (summary["errors"], summary["shed"], summary["peak_rss_mb"]) == (3, 5, 420.0)
    json.dumps(summary, allow_nan=False)
    with pytest.raises(ValueError):
        summarize_runs([run_row(8, 9.0, 0.9), run_row(64, 70.0, 0.9)])
    with pytest.raises(ValueError):
        summarize_runs([])


def test_the_markdown_table_is_ready_for_the_readme() -> None:
    summaries = [
        summarize_runs([run_row(1, 1.2, 0.95, baseline_rps=1.0), run_row(1, 1.3, 0.97, baseline_rps=1.0)]),
        summarize_runs([run_row(256, 150.0, 0.9, shed=300), run_row(256, 160.0, 0.95, shed=280)]),
    ]
    summaries[1].update(bound_rps=166.7, bound_by="lat", box_busy=0.98)
    lines = markdown_table(summaries).splitlines()
    assert lines[0].startswith("| C | rps |") and "shed" in lines[0] and "efficiency" in lines[0]
    assert set(lines[1]) <= set("|-: ")
    assert lines[2].startswith("| 1 | 1.25 (1.20–1.30) |") and "| 1.2 |" in lines[2]  # ours/baseline
    assert "| 256 | 155.00 (150.00–160.00) |" in lines[3] and "| 580 |" in lines[3]
    assert "| 166.7 | lat | 0.93 (0.90–0.95) | 0.98 |" in lines[3]  # a saturated box, said
    assert all(line.count("|") == lines[0].count("|") for line in lines)


# --- the machine line -------------------------------------------------------------------------------------
CPUINFO = """processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse2 avx2 avx512f avx512_vnni amx_tile amx_int8 amx_bf16
processor	: 1
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu
"""


def test_parse_cpuinfo_and_meminfo() -> None:
    model, flags = parse_cpuinfo(CPUINFO)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"avx2", "avx512_vnni", "amx_int8"} <= flags and "avx_vnni" not in flags
    assert parse_meminfo_gib("MemTotal:       24683444 kB\nMemFree: 1 kB\n") == pytest.approx(23.54, abs=0.01)
    assert parse_meminfo_gib("") is None


def test_the_machine_line_names_cpu_isa_cores_ram_onnxruntime_and_date() -> None:
    info = {
        "date": "2026-11-28 10:00 UTC",
        "cpu": "AMD EPYC",
        "isa": ["avx2", "avx512f", "avx512_vnni"],
        "cores": 2,
        "ram_gib": 23.5,
        "python": "3.11.7",
        "onnxruntime": "1.32.0",
        "providers": ["CPUExecutionProvider"],
        "embedding_model": "local/all-MiniLM-L6-v2-int8-vnni",
        "onnx_threads": 1,
    }
    line = describe_machine(info)
    for part in (
        "AMD EPYC",
        "2 cores",
        "avx512_vnni",
        "24 GiB RAM",
        "onnxruntime 1.32.0 on CPUExecutionProvider",
    ):
        assert part in line
    assert "local/all-MiniLM-L6-v2-int8-vnni" in line and "2026-11-28 10:00 UTC" in line
    assert "none of avx2/" in describe_machine({**info, "isa": []})


def test_machine_info_of_this_machine() -> None:
    info = machine_info({"embedding_model": "m", "providers": None})
    assert info["cores"] >= 1 and info["cpu"] and info["date"].endswith("UTC")
    assert set(info["isa"]) <= set(ISA_FLAGS)
    assert info["embedding_model"] == "m" and "providers" not in info  # None values are left out
    json.dumps(info)


async def test_run_level_rejects_bad_arguments() -> None:
    async with httpx.AsyncClient(transport=fake_gateway()[0], base_url="http://gateway.test") as client:
        with pytest.raises(ValueError):
            await run_level(httpx_sender(client), ["q"], concurrency=0, duration_s=0.1)
        with pytest.raises(ValueError):
            await run_level(httpx_sender(client), [], concurrency=1, duration_s=0.1)
        with pytest.raises(ValueError):
            await run_level([], ["q"], concurrency=1, duration_s=0.1)


# --- the local stack the scripts start (benchmarks/local_stack.py) ---------------------------------------
@pytest.fixture
def local_stack() -> ModuleType:
    return importlib.import_module("benchmarks.local_stack")


def test_gateway_env_points_at_the_emulators_and_takes_overrides(
    local_stack: ModuleType, tmp_path: Path
) -> None:
    env = local_stack.gateway_env(tmp_path, 1111, 2222, label="chaos", LOG_LEVEL="error", WORKERS="1")
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:1111/v1"
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "http://127.0.0.1:2222"
    assert env["QDRANT_PATH"] == str(tmp_path / "qdrant") and env["QDRANT_URL"] == ""
    assert (env["OPENAI_API_KEY"], env["AWS_ACCESS_KEY"]) == ("chaos-key", "chaos")
    assert (env["LOG_LEVEL"], env["WORKERS"]) == ("error", "1")
    assert local_stack.gateway_env(tmp_path, 1, 2)["LOG_LEVEL"] == "warning"


def test_wait_for_gives_up_with_the_log_when_the_child_exits(local_stack: ModuleType, tmp_path: Path) -> None:
    with local_stack.Processes(tmp_path) as procs:
        procs.start("dead", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], dict(os.environ))
        url = f"http://127.0.0.1:{local_stack.free_port()}/"
        with pytest.raises(SystemExit, match="dead exited with status 3:\nboom"):
            local_stack.wait_for(url, 30, procs=procs, name="dead")
    assert procs.running == {}


# --- the other entry points still import and parse ------------------------------------------------------
def test_the_baseline_app_builds_without_loading_anything() -> None:
    from benchmarks.handbook_baseline import create_app

    from rag_gateway.config import Settings

    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/rag", "/health"} <= paths


def test_the_model_work_calibration_searches_the_ingested_store(
    ingested_qdrant: Path, model_settings: Settings, tmp_path: Path
) -> None:
    """The CPU-capacity line of `make bench` counts the searches and the rerank, on the gateway's store."""
    from benchmarks.cpu_model import measure

    copy = tmp_path / "qdrant"
    copy_store_folder(ingested_qdrant, copy)  # the test gateway holds the original's lock
    settings = model_settings.model_copy(update={"qdrant_path": copy})
    result = measure(settings, ["What is RAG?", "How do I fine-tune an LLM?"], requests=2, warmup=0)
    searched = set(result["collections"])
    assert searched and searched <= {c for c in COLLECTIONS if (copy / c).is_dir()}
    assert result["retrieval_mode"] == settings.retrieval_mode
    assert all(result["stage_cpu_ms_median"][stage] > 0 for stage in ("embed", "search", "rerank"))
    assert not (copy / "meta.json").exists()  # the folder is read as the gateway reads it, nothing added


def test_bench_script_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for flag in (
        "--levels",
        "--repeats",
        "--duration",
        "--openai-latency",
        "--sagemaker-latency",
        "--skip-baseline",
    ):
        assert flag in result.stdout
    assert "1,8,32,64,128,256" in result.stdout


@pytest.mark.skipif(shutil.which("locust", path=str(Path(sys.executable).parent)) is None, reason="no locust")
def test_locustfile_lists_its_user() -> None:
    locust = shutil.which("locust", path=str(Path(sys.executable).parent))
    assert locust is not None
    result = subprocess.run(
        [locust, "-f", str(ROOT / "locustfile.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "RagUser" in result.stdout


# --- serving a kept store within a memory limit (benchmarks/serve_store.py, memory_cgroup.py) -------------
def test_the_memory_cgroup_is_found_for_either_cgroup_version(tmp_path: Path) -> None:
    from benchmarks.memory_cgroup import own_memory_cgroup

    v1 = "9:name=systemd:/\n4:memory:/jobs/abc\n1:cpu:/\n0::/\n"
    assert own_memory_cgroup(v1, tmp_path) == (tmp_path / "memory" / "jobs" / "abc", 1)
    assert own_memory_cgroup("0::/user.slice/app\n", tmp_path) is None  # no v2 controllers file here
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert own_memory_cgroup("0::/user.slice/app\n", tmp_path) == (tmp_path / "user.slice" / "app", 2)


def test_a_wrapped_command_joins_the_cgroup_before_it_runs(tmp_path: Path) -> None:
    from benchmarks.memory_cgroup import MemoryCgroup

    group = MemoryCgroup(tmp_path, 2, 2**31)
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (tmp_path / "memory.peak").write_text("1048576\n")
    result = subprocess.run(
        group.wrap(["sh", "-c", "echo started $0", "arg zero"]), capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout == "started arg zero\n"
    assert (tmp_path / "cgroup.procs").read_text().strip().isdigit()  # the pid went in first
    assert group.peak_bytes() == 2**20 and group.oom_kills() == 1


def test_serve_store_profiles_parse() -> None:
    from benchmarks.serve_store import parse_profile

    assert parse_profile("default") == ("default", {})
    assert parse_profile("large:HYBRID_SPARSE_QUERIES=original,HYBRID_SPARSE_WEIGHT=10") == (
        "large",
        {"HYBRID_SPARSE_QUERIES": "original", "HYBRID_SPARSE_WEIGHT": "10"},
    )
    with pytest.raises(argparse.ArgumentTypeError):
        parse_profile("bad:NOVALUE")
