"""The machine a benchmark ran on, for its report: CPU model, the ISA extensions the model work depends on,
cores, RAM, onnxruntime and its execution provider, date.

The parsers take text, so the tests feed them samples; ``machine_info()`` reads this machine's /proc.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Extensions that decide how fast the embedder's matrix products run: avx2 (fp32 and int8 via 16-bit
#: pairwise adds), avx512f, the int8 dot products (avx512_vnni, avx_vnni) and AMX tiles (amx_tile, amx_int8).
ISA_FLAGS: tuple[str, ...] = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")


def parse_cpuinfo(text: str) -> tuple[str, set[str]]:
    """(model name, flags) of the first processor in the text of ``/proc/cpuinfo``."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
        if model and flags:
            break
    return model or platform.processor() or "unknown CPU", flags


def parse_meminfo_gib(text: str) -> float | None:
    """MemTotal in GiB from the text of ``/proc/meminfo``."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info(embedder: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """This machine; ``embedder`` adds what the measured process reported (model, onnxruntime, provider)."""
    model, flags = parse_cpuinfo(_read("/proc/cpuinfo"))
    try:
        import onnxruntime

        ort_version: str | None = onnxruntime.__version__
        available = list(onnxruntime.get_available_providers())
    except ImportError:
        ort_version, available = None, []
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "cores": _cores(),
        "ram_gib": parse_meminfo_gib(_read("/proc/meminfo")),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "onnxruntime": ort_version,
        "providers_available": available,
    }
    if embedder:
        info.update({key: value for key, value in embedder.items() if value is not None})
    return info


def describe_machine(info: Mapping[str, Any]) -> str:
    """One line: ``machine: <cpu>, <n> cores (ISA: ...), <RAM>; onnxruntime <v> on <provider>; <model>; <date>``."""
    isa = ", ".join(info.get("isa") or []) or "none of " + "/".join(ISA_FLAGS)
    ram = info.get("ram_gib")
    used = info.get("providers")  # what the measured session runs on
    runtime = f"onnxruntime {info.get('onnxruntime') or '?'}"
    if used:
        runtime += f" on {used[0]}"
    else:
        runtime += f" (providers available: {', '.join(info.get('providers_available') or ['?'])})"
    parts = [
        f"machine: {info.get('cpu', 'unknown CPU')}, {info.get('cores', '?')} cores (ISA: {isa})"
        + (f", {ram:.0f} GiB RAM" if isinstance(ram, int | float) else ""),
        runtime,
    ]
    if info.get("embedding_model"):
        parts.append(f"embedder {info['embedding_model']} ({info.get('onnx_threads', '?')} ONNX thread(s))")
    parts.append(f"Python {info.get('python', '?')}, {info.get('date', '?')}")
    return "; ".join(parts)
