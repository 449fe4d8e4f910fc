"""A closed-loop async load generator and the arithmetic of the benchmark report.

Pure and small on purpose (no project imports). The workers send through a ``Send`` callable: the bench's
is ``aiohttp_sender`` (aiohttp's client costs the load generator a fraction of httpx's CPU per request, and
the load generator shares the cores with the gateway it measures); the tests drive ``httpx_sender`` against
``httpx.MockTransport``.

Closed loop: ``C`` worker coroutines share one connection pool; each sends the next question as soon as its
previous answer arrives. The first ``warmup_s`` seconds are not counted; after that, every request
that *completes* inside the measurement window counts, and requests still in flight when it closes are
cancelled and not counted.

A 503 with a ``Retry-After`` header is the gateway shedding load above ``MAX_IN_FLIGHT_REQUESTS`` (by design,
at once, before any work): it is counted as *shed*, not as an error, and the worker waits the Retry-After
time before its next request, as a well-behaved client would. Any other failure is an error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx
import orjson

#: Used when ``../shared/data/queries.json`` is absent: questions about the project's sample corpus.
FALLBACK_QUESTIONS: tuple[str, ...] = (
    "What does Tomas Berg say about chunking articles?",
    "According to Maria Rivera, why must an unknown author never become a filter?",
    "According to Tomas Berg, what changes when QDRANT_URL is set?",
    "Why must temperature be above zero for TGI?",
    "How can retrieved chunks be reranked when no cross-encoder is available?",
    "Why does the gateway create its OpenAI and SageMaker clients once in the lifespan instead of per "
    "request?",
)

#: The keys of one row of ``bench-results.json``, in order.
RESULT_KEYS: tuple[str, ...] = (
    "concurrency",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "errors",
    "shed",
    "cpu_s_per_request",
    "peak_rss_mb",
    "efficiency",
    "baseline_rps",
)

#: Pipeline stages that are local work on the critical path (the upstream calls are emulated latencies).
LOCAL_STAGES: tuple[str, ...] = ("resolve_author", "embed", "search", "rerank")


# --- questions ------------------------------------------------------------------------------------------
def load_questions(path: Path | None, seed: int = 20240917) -> list[str]:
    """The ``query`` field of every item in ``path`` (or the fallback list), shuffled deterministically."""
    questions: list[str] = []
    if path is not None and path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        for item in data if isinstance(data, list) else []:
            text = item.get("query") if isinstance(item, dict) else item
            if isinstance(text, str) and text.strip():
                questions.append(text.strip())
    if not questions:
        questions = list(FALLBACK_QUESTIONS)
    random.Random(seed).shuffle(questions)
    return questions


# --- statistics -----------------------------------------------------------------------------------------
def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between ranks like numpy's default; NaN when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


#: A request's ``total`` less its stages: the event loop's turns between them, which grow under load.
BETWEEN_STAGES = "between stages"
#: The stages that run at the same time (the two OpenAI calls): only the longer one adds to ``total``.
CONCURRENT_STAGES = ("expand", "self_query")


def between_stages_ms(sample: Mapping[str, float]) -> float:
    """``total`` minus the stages it is made of, for one response's ``timings_ms``."""
    concurrent = max((sample.get(stage, 0.0) for stage in CONCURRENT_STAGES), default=0.0)
    sequential = sum(ms for stage, ms in sample.items() if stage not in ("total", *CONCURRENT_STAGES))
    return sample["total"] - concurrent - sequential


def median_stages(timings: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per stage, the median of the gateway's own ``timings_ms`` over many responses, and the median time
    between stages (`between_stages_ms`)."""
    per_stage: dict[str, list[float]] = {}
    for sample in timings:
        for stage, ms in sample.items():
            per_stage.setdefault(stage, []).append(float(ms))
        if "total" in sample:
            per_stage.setdefault(BETWEEN_STAGES, []).append(between_stages_ms(sample))
    return {stage: statistics.median(values) for stage, values in per_stage.items()}


def critical_path_s(
    openai_latency_s: float,
    sagemaker_latency_s: float,
    stage_medians_ms: Mapping[str, float],
    local_stages: Sequence[str] = LOCAL_STAGES,
) -> float:
    """Least possible latency of one request: max(self-query, expansion) + LLM + local work in isolation.

    Self-query and expansion run concurrently, both on the OpenAI emulator, so together they cost one
    OpenAI latency; the local stages (embed, search, rerank, author lookup) come from the gateway's
    ``timings_ms`` medians at concurrency 1.
    """
    local_ms = sum(stage_medians_ms.get(stage, 0.0) for stage in local_stages)
    return openai_latency_s + sagemaker_latency_s + local_ms / 1000


def cpu_capacity_rps(cores: float, cpu_s_per_request: float) -> float:
    """Requests per second the cores could serve if each request cost ``cpu_s_per_request`` CPU seconds."""
    if cpu_s_per_request <= 0:
        return math.inf
    return cores / cpu_s_per_request


def admitted(concurrency: int, max_in_flight: int | None = None) -> int:
    """Requests the gateway serves at once under ``concurrency`` closed-loop clients: it sheds the rest."""
    return concurrency if max_in_flight is None else min(concurrency, max_in_flight)


def bound_rps(
    concurrency: int, critical_path: float, capacity_rps: float, max_in_flight: int | None = None
) -> float:
    """The best achievable throughput at ``concurrency``: latency-bound (Little's law, over the requests the
    gateway admits at once) or CPU-bound."""
    return min(admitted(concurrency, max_in_flight) / critical_path, capacity_rps)


def efficiency(
    rps: float, concurrency: int, critical_path: float, capacity_rps: float, max_in_flight: int | None = None
) -> float:
    """Achieved over achievable: ``rps / min(min(C, max in flight) / critical_path_s, cpu_capacity_rps)``."""
    return rps / bound_rps(concurrency, critical_path, capacity_rps, max_in_flight)


# --- one level of closed-loop load ------------------------------------------------------------------------
@dataclass
class LevelResult:
    """What one concurrency level measured (only requests that completed inside the window)."""

    concurrency: int
    window_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    #: 503 + Retry-After answers: load shed above the gateway's in-flight limit (not errors).
    shed: int = 0
    #: Good answers the gateway marked ``degraded`` (a step skipped under a fault or a deadline).
    degraded: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    stage_timings: list[dict[str, float]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.completed / self.window_s if self.window_s > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


class HttpAnswer(Protocol):
    """What the load generator reads of a response: an ``Answer``, an httpx one, or a locust one in
    locustfile.py."""

    status_code: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


Validator = Callable[[HttpAnswer], str | None]


@dataclass
class Answer:
    """One HTTP answer as ``aiohttp_sender`` keeps it: status, headers (case-insensitive), body; the body
    is parsed at most once however often ``json()`` is called."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    _parsed: Any = field(default=None, repr=False)

    def json(self) -> Any:
        if self._parsed is None:
            try:
                self._parsed = orjson.loads(self.body)
            except orjson.JSONDecodeError as exc:
                raise ValueError(str(exc)) from exc
        return self._parsed


class TransportError(Exception):
    """A request that got no HTTP answer (refused, reset, timed out); ``kind`` names the client's error."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


#: Sends one request body (a JSON object) and returns the answer, or raises ``TransportError``.
Send = Callable[[dict[str, Any]], Awaitable[HttpAnswer]]

JSON_HEADERS = {"Content-Type": "application/json"}


def aiohttp_sender(session: aiohttp.ClientSession, path: str = "/rag") -> Send:
    """POSTs to ``path`` on ``session`` (its base URL, pool and timeouts)."""

    async def send(payload: dict[str, Any]) -> HttpAnswer:
        try:
            async with session.post(path, data=orjson.dumps(payload), headers=JSON_HEADERS) as response:
                return Answer(response.status, response.headers, await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(type(exc).__name__) from exc

    return send


def httpx_sender(client: httpx.AsyncClient, path: str = "/rag") -> Send:
    """POSTs to ``path`` on an httpx client (its base URL and transport: the tests' mock one)."""

    async def send(payload: dict[str, Any]) -> HttpAnswer:
        try:
            return await client.post(path, json=payload)
        except httpx.HTTPError as exc:
            raise TransportError(type(exc).__name__) from exc

    return send


def validate_rag_response(response: HttpAnswer) -> str | None:
    """None for a good ``POST /rag`` answer, else a short reason (status 200 and a non-empty answer)."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return "body is not JSON"
    answer = body.get("answer") if isinstance(body, dict) else None
    if not isinstance(answer, str) or not answer.strip():
        return "empty answer"
    return None


def shed_delay(response: HttpAnswer, cap_s: float = 5.0) -> float | None:
    """Seconds to wait when ``response`` is the gateway shedding load (503 with Retry-After), else None."""
    if response.status_code != 503:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), cap_s)
    except ValueError:  # an HTTP date: wait a second
        return 1.0


def _body_facts(response: HttpAnswer) -> tuple[dict[str, float] | None, bool]:
    """(``timings_ms``, whether the gateway marked the answer as degraded) of a good answer."""
    try:
        body = response.json()
    except ValueError:
        return None, False
    if not isinstance(body, dict):
        return None, False
    timings = body.get("timings_ms")
    return (dict(timings) if isinstance(timings, dict) else None), bool(body.get("degraded"))


async def run_level(
    send: Send | Sequence[Send],
    questions: Sequence[str],
    concurrency: int,
    duration_s: float,
    *,
    warmup_s: float = 0.0,
    k: int | None = None,
    validate: Validator = validate_rag_response,
    on_window_start: Callable[[], None] | None = None,
    on_window_end: Callable[[], None] | None = None,
    error_backoff_s: float = 0.05,
) -> LevelResult:
    """Closed-loop load: ``concurrency`` workers for ``warmup_s + duration_s`` seconds; see the module doc.

    ``on_window_start``/``on_window_end`` run at the window's edges (e.g. to read the server's CPU time).
    Several senders: worker ``i`` uses sender ``i mod n``.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if not questions:
        raise ValueError("no questions")
    result = LevelResult(concurrency=concurrency, window_s=duration_s)
    next_question = itertools.cycle(questions).__next__
    window: list[float] = []  # [start, end] once known, on the perf_counter clock

    def counted(finished: float) -> bool:
        return len(window) >= 1 and finished >= window[0] and (len(window) < 2 or finished <= window[1])

    senders = list(send) if isinstance(send, Sequence) else [send]
    if not senders:
        raise ValueError("no sender")

    async def worker(send: Send) -> None:
        while True:
            payload: dict[str, Any] = {"query": next_question()}
            if k is not None:
                payload["k"] = k
            started = time.perf_counter()
            reason: str | None
            timings, degraded, shed = None, False, None
            try:
                response = await send(payload)
                shed = shed_delay(response)
                reason = validate(response) if shed is None else None
                if reason is None and shed is None:
                    timings, degraded = _body_facts(response)
            except TransportError as exc:
                reason = exc.kind
            finished = time.perf_counter()
            if shed is not None:
                if counted(finished):
                    result.shed += 1
                await asyncio.sleep(max(shed, error_backoff_s))
                continue
            if counted(finished):
                if reason is None:
                    result.latencies_ms.append((finished - started) * 1000)
                    result.degraded += degraded
                    if timings is not None:
                        result.stage_timings.append(timings)
                else:
                    result.errors += 1
                    result.error_kinds[reason] += 1
            if reason is not None:
                await asyncio.sleep(error_backoff_s)  # a dead server must not turn this into a busy loop

    tasks = [
        asyncio.create_task(worker(senders[i % len(senders)]), name=f"load-worker-{i}")
        for i in range(concurrency)
    ]
    try:
        if warmup_s > 0:
            await asyncio.sleep(warmup_s)
        if on_window_start is not None:
            on_window_start()
        window.append(time.perf_counter())
        await asyncio.sleep(duration_s)
        window.append(time.perf_counter())
        if on_window_end is not None:
            on_window_end()
        result.window_s = window[1] - window[0]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


def result_row(
    level: LevelResult,
    *,
    cpu_s_per_request: float | None,
    peak_rss_mb: float | None,
    efficiency_value: float | None,
    baseline_rps: float | None,
) -> dict[str, Any]:
    """One row of ``bench-results.json`` (keys: ``RESULT_KEYS``); NaN and missing values become null."""

    def num(value: float | None, digits: int) -> float | None:
        if value is None or math.isnan(value) or math.isinf(value):
            return None
        return round(value, digits)

    return {
        "concurrency": level.concurrency,
        "rps": num(level.rps, 3),
        "p50_ms": num(level.p(50), 1),
        "p95_ms": num(level.p(95), 1),
        "p99_ms": num(level.p(99), 1),
        "errors": level.errors,
        "shed": level.shed,
        "cpu_s_per_request": num(cpu_s_per_request, 5),
        "peak_rss_mb": num(peak_rss_mb, 1),
        "efficiency": num(efficiency_value, 3),
        "baseline_rps": num(baseline_rps, 3),
    }


# --- repeated runs of one level ------------------------------------------------------------------------------
def spread(values: Iterable[float | None]) -> tuple[float | None, float | None, float | None]:
    """(median, min, max) of the values that are numbers (None, NaN and inf are left out); Nones if none."""
    numbers = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not numbers:
        return None, None, None
    return statistics.median(numbers), min(numbers), max(numbers)


def summarize_runs(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One concurrency level over its repeated runs (rows of ``result_row``): median and spread (min-max) of
    rps and efficiency, medians of the latency percentiles and of the CPU per request, the largest peak RSS,
    errors and shed requests summed over the runs."""
    if not rows:
        raise ValueError("no runs to summarize")
    levels = {row["concurrency"] for row in rows}
    if len(levels) != 1:
        raise ValueError(f"runs of different levels: {sorted(levels)}")

    def median(key: str) -> float | None:
        return spread(row.get(key) for row in rows)[0]

    rps = spread(row.get("rps") for row in rows)
    eff = spread(row.get("efficiency") for row in rows)
    cpu = median("cpu_s_per_request")
    peaks = [row["peak_rss_mb"] for row in rows if row.get("peak_rss_mb") is not None]
    return {
        "concurrency": rows[0]["concurrency"],
        "runs": len(rows),
        "rps_median": rps[0],
        "rps_min": rps[1],
        "rps_max": rps[2],
        "efficiency_median": eff[0],
        "efficiency_min": eff[1],
        "efficiency_max": eff[2],
        "p50_ms": median("p50_ms"),
        "p95_ms": median("p95_ms"),
        "p99_ms": median("p99_ms"),
        "errors": sum(int(row.get("errors") or 0) for row in rows),
        "shed": sum(int(row.get("shed") or 0) for row in rows),
        "cpu_ms_per_request": None if cpu is None else cpu * 1000,
        "peak_rss_mb": max(peaks) if peaks else None,
        "baseline_rps": median("baseline_rps"),
    }


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _range(summary: Mapping[str, Any], key: str, digits: int) -> str:
    low, high = summary.get(f"{key}_min"), summary.get(f"{key}_max")
    median = _fmt(summary.get(f"{key}_median"), digits)
    if low is None or high is None or summary.get("runs", 1) < 2:
        return median
    return f"{median} ({_fmt(low, digits)}–{_fmt(high, digits)})"


def markdown_table(summaries: Sequence[Mapping[str, Any]]) -> str:
    """The per-level summaries as a markdown table for the README: medians, (min–max) over the runs.

    Reads ``bound_rps``, ``bound_by`` and ``box_busy`` from each summary when present (the bench adds them)."""
    lines = [
        "| C | rps | p50 ms | p95 ms | p99 ms | errors | shed | CPU ms/req | peak MB | bound | by | "
        "efficiency | box busy | baseline rps | ours/baseline |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        base, rps = s.get("baseline_rps"), s.get("rps_median")
        ratio = f"{rps / base:.1f}" if base and rps is not None else "–"
        lines.append(
            f"| {s['concurrency']} | {_range(s, 'rps', 2)} | {_fmt(s.get('p50_ms'), 0)} | "
            f"{_fmt(s.get('p95_ms'), 0)} | {_fmt(s.get('p99_ms'), 0)} | {s.get('errors', 0)} | "
            f"{s.get('shed', 0)} | {_fmt(s.get('cpu_ms_per_request'), 1)} | {_fmt(s.get('peak_rss_mb'), 0)} | "
            f"{_fmt(s.get('bound_rps'), 1)} | {s.get('bound_by', '–')} | {_range(s, 'efficiency', 2)} | "
            f"{_fmt(s.get('box_busy'), 2)} | {_fmt(base, 2)} | {ratio} |"
        )
    return "\n".join(lines)


# --- the server process, read from /proc ------------------------------------------------------------------
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_proc_stat_cpu(stat_line: str, clock_ticks: int = _CLOCK_TICKS) -> float:
    """utime + stime, in seconds, from the text of ``/proc/<pid>/stat`` (comm may hold spaces and parens)."""
    fields = stat_line.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / clock_ticks


def parse_proc_status_kb(status_text: str, key: str) -> int | None:
    """A ``kB`` value such as VmRSS or VmHWM from the text of ``/proc/<pid>/status``."""
    for line in status_text.splitlines():
        name, _, rest = line.partition(":")
        if name == key:
            return int(rest.split()[0])
    return None


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far."""
    return parse_proc_stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds per thread id of the process (the main thread's id is the pid: the event loop's)."""
    seconds: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            seconds[int(task.name)] = parse_proc_stat_cpu((task / "stat").read_text())
        except (OSError, ValueError):  # the thread ended meanwhile
            continue
    return seconds


def process_memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process, in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = parse_proc_status_kb(text, "VmRSS") or 0
    hwm = parse_proc_status_kb(text, "VmHWM") or 0
    return rss / 1024, hwm / 1024


class RssSampler:
    """Samples a process's VmRSS in a background task; ``peak_mb`` is the largest value seen."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        try:
            rss, _ = process_memory_mb(self.pid)
        except (OSError, ValueError):  # the process is gone
            return
        self.peak_mb = max(self.peak_mb, rss)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_s)

    async def __aenter__(self) -> RssSampler:
        self.sample()
        self._task = asyncio.create_task(self._run(), name=f"rss-sampler-{self.pid}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.sample()
