"""Where a py-spy profile's CPU went: per thread, per innermost library, and the heaviest calls.

    python -m benchmarks.profile_summary PROFILE.txt [...] [--thread MainThread] [--top 20] [--ms-per-request MS]

Reads py-spy's collapsed stacks (``py-spy record --format raw --threads``, as ``benchmarks.ab_gateway
--py-spy DIR`` writes them; idle samples are not recorded). Several files are summed. Prints, for the chosen
thread, the share of samples by the package of the innermost frame (``rag_gateway``, ``aiobotocore``,
``uvloop``, ...) and the calls with the largest inclusive share (each counted once per stack).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*?)(?::\d+)?\)$")


@dataclass
class Profile:
    """Samples per thread, per innermost package and per call (inclusive)."""

    threads: Counter[str] = field(default_factory=Counter)
    packages: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    selected: int = 0


def package_of(file: str) -> str:
    """``aiobotocore/client.py`` -> ``aiobotocore``; a bare module file (``<string>``) names itself."""
    head = file.split("/", 1)[0]
    return head.removesuffix(".py") or file


def thread_name(label: str) -> str:
    """``thread (1234): MainThread`` -> ``MainThread``; worker threads keep their name without numbers."""
    name = label.split(":", 1)[1].strip() if ":" in label else label
    return re.sub(r"[_-]?\d+$", "", name) or name


def summarise(lines: Iterable[str], thread: str) -> Profile:
    profile = Profile()
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        label, *frames = stack.split(";")
        name = thread_name(label)
        profile.threads[name] += count
        if name != thread or not frames:
            continue
        profile.selected += count
        parsed = [FRAME.match(frame) for frame in frames]
        innermost = parsed[-1]
        profile.packages[package_of(innermost["file"]) if innermost else frames[-1]] += count
        seen = set()
        for match, raw in zip(parsed, frames, strict=True):
            key = f"{match['function']} ({match['file']})" if match else raw
            if key not in seen:
                seen.add(key)
                profile.calls[key] += count
    return profile


#: Calls on at least this share of a thread's samples are its frame (the loop, the worker), not its work.
FRAME_SHARE = 0.7


def report(profile: Profile, thread: str, top: int, ms_per_request: float | None = None) -> str:
    """The thread's innermost packages and heaviest calls; with ``ms_per_request`` (the thread's CPU per
    request, e.g. ab_gateway's event_loop_ms), each share also as milliseconds per request."""
    total = sum(profile.threads.values()) or 1
    selected = profile.selected or 1

    def cell(count: int) -> str:
        share = count / selected
        return f"{share:6.1%}" + (f" {share * ms_per_request:5.2f} ms" if ms_per_request else "")

    out = [
        "samples by thread: " + ", ".join(f"{n} {c / total:.0%}" for n, c in profile.threads.most_common())
    ]
    out.append(f"\n{thread}: innermost package (share of the thread's samples)")
    out += [f"  {cell(c)}  {name}" for name, c in profile.packages.most_common(top)]
    out.append(
        f"\n{thread}: heaviest calls, inclusive (leaving out those on over {FRAME_SHARE:.0%} of samples)"
    )
    calls = [(name, c) for name, c in profile.calls.most_common() if c / selected < FRAME_SHARE]
    out += [f"  {cell(c)}  {name}" for name, c in calls[:top]]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--thread", default="MainThread", help="thread name (numbers at the end ignored)")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument(
        "--ms-per-request", type=float, help="the thread's CPU ms per request, to print shares as ms"
    )
    args = parser.parse_args(argv)
    lines = (line for path in args.profiles for line in path.read_text().splitlines())
    print(report(summarise(lines, args.thread), args.thread, args.top, args.ms_per_request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
