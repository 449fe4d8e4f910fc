"""The local stack the measuring scripts drive: `rag-gateway emulate` and `rag-gateway serve` as child processes.

Free loopback ports, the gateway's environment pointed at the emulators and at a throwaway local Qdrant
folder, readiness polling, and stopping every child at the end (``with Processes() as procs: ...``).
Shared by benchmarks/measure_latency.py, benchmarks/chaos.py and benchmarks/bench.py (each run from the
project root as ``python -m benchmarks.<name>``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS = ROOT / "src" / "rag_gateway" / "sample_corpus"
TOKENIZER_DIR = ROOT / "models" / "all-MiniLM-L6-v2"
RAG_GATEWAY = str(Path(sys.executable).parent / "rag-gateway")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loopback(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def gateway_env(
    workdir: Path, openai_port: int, sagemaker_port: int, *, label: str = "bench", **overrides: str
) -> dict[str, str]:
    """``os.environ`` plus the settings that point the gateway (and ingest) at the emulators and at
    ``workdir/qdrant``; ``label`` names the dummy credentials, ``overrides`` win over everything."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "EMBEDDING_TOKENIZER_DIR": str(TOKENIZER_DIR),
        "QDRANT_PATH": str(workdir / "qdrant"),
        "QDRANT_URL": "",
        "OPENAI_API_KEY": f"{label}-key",
        "OPENAI_BASE_URL": f"{loopback(openai_port)}/v1",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": loopback(sagemaker_port),
        "AWS_ACCESS_KEY": label,
        "AWS_SECRET_KEY": label,
        "LOG_LEVEL": "warning",
        **overrides,
    }


def ingest(paths: Iterable[Path], env: dict[str, str], cwd: Path | None = None) -> None:
    subprocess.run([RAG_GATEWAY, "ingest", "--no-progress", *map(str, paths)], env=env, cwd=cwd, check=True)


class Processes:
    """Child processes in their own sessions (Ctrl-C reaches only us); a context manager that stops them.

    With a ``logdir`` each child logs to ``<logdir>/<name>.log``; without, it shares our terminal.
    """

    def __init__(self, logdir: Path | None = None, cwd: Path | None = None) -> None:
        self.logdir = logdir
        self.cwd = cwd
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self, name: str, command: Sequence[str], env: dict[str, str], *, quiet: bool = False
    ) -> subprocess.Popen[bytes]:
        """``quiet`` (without a logdir): discard the child's stdout."""
        log = (self.logdir / f"{name}.log").open("wb") if self.logdir is not None else None
        try:
            process = subprocess.Popen(
                list(command),
                env=env,
                cwd=self.cwd,
                stdout=log or (subprocess.DEVNULL if quiet else None),
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,
            )
        finally:
            if log is not None:
                log.close()
        self.running[name] = process
        return process

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.logdir / f"{name}.log" if self.logdir is not None else None
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, name: str, timeout: float = 10.0) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)


def wait_for(url: str, deadline_s: float = 60.0, *, procs: Processes | None = None, name: str = "") -> None:
    """Poll until GET ``url`` answers 200; give up early if ``procs``' child ``name`` exits meanwhile."""
    process = procs.running.get(name) if procs is not None else None
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = procs.tail(name) if procs is not None else ""
            raise SystemExit(f"{name} exited with status {process.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = procs.tail(name) if procs is not None else ""
    raise SystemExit(f"{name or url} did not answer {url} within {deadline_s:.0f} s:\n{tail}")


def start_emulators(
    procs: Processes,
    env: dict[str, str],
    openai_port: int,
    sagemaker_port: int,
    *,
    openai_latency: float | None = None,
    sagemaker_latency: float | None = None,
    deadline_s: float = 60.0,
) -> subprocess.Popen[bytes]:
    """`rag-gateway emulate` (OpenAI and SageMaker), once both answer; latencies left out use its defaults."""
    command = [
        RAG_GATEWAY,
        "emulate",
        "--openai-port",
        str(openai_port),
        "--sagemaker-port",
        str(sagemaker_port),
    ]
    if openai_latency is not None:
        command += ["--openai-latency", str(openai_latency)]
    if sagemaker_latency is not None:
        command += ["--sagemaker-latency", str(sagemaker_latency)]
    process = procs.start("emulate", command, env, quiet=True)
    for port in (openai_port, sagemaker_port):
        wait_for(f"{loopback(port)}/_emulator/health", deadline_s, procs=procs, name="emulate")
    return process


def start_gateway(
    procs: Processes, env: dict[str, str], port: int | None = None, *, deadline_s: float = 60.0
) -> tuple[subprocess.Popen[bytes], str]:
    """`rag-gateway serve` on ``port`` (default: a free one), once it answers: (process, base URL)."""
    port = port or free_port()
    url = loopback(port)
    process = procs.start("gateway", [RAG_GATEWAY, "serve", "--port", str(port)], env)
    wait_for(f"{url}/healthz", deadline_s, procs=procs, name="gateway")
    return process, url
