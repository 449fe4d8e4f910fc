"""A memory cgroup with a hard limit for one child process: what a container's memory limit does.

The embedded engine maps its segment files; their pages count in a process's RSS, yet the kernel drops
and re-reads them under pressure. Whether a store fits a memory budget is therefore a question of what the
process does inside that budget, not of its RSS on a roomy machine. This creates a child cgroup under
the current process's own memory cgroup (v2: ``memory.max``; v1: ``memory.limit_in_bytes``), starts the
command inside it, and reads back the cgroup's peak and its OOM kills. Where cgroups cannot be written
(no permission, no memory controller) `MemoryCgroup.create` raises `CgroupUnavailableError`.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class CgroupUnavailableError(RuntimeError):
    """This machine does not let the benchmark create a memory cgroup."""


def own_memory_cgroup(proc_cgroup: str, root: Path = CGROUP_ROOT) -> tuple[Path, int] | None:
    """The folder of this process's memory cgroup and the cgroup version, from /proc/self/cgroup's text."""
    unified: Path | None = None
    for line in proc_cgroup.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return root / "memory" / path.lstrip("/"), 1
        if hierarchy == "0" and controllers == "":
            unified = root / path.lstrip("/")
    if unified is not None and (root / "cgroup.controllers").exists():
        return unified, 2
    return None


@dataclass
class MemoryCgroup:
    path: Path
    version: int
    limit_bytes: int

    @classmethod
    def create(cls, name: str, limit_bytes: int) -> MemoryCgroup:
        found = own_memory_cgroup(Path("/proc/self/cgroup").read_text())
        if found is None:
            raise CgroupUnavailableError("no memory cgroup controller found in /proc/self/cgroup")
        parent, version = found
        path = parent / name
        try:
            path.mkdir(exist_ok=True)
            limit_file = "memory.limit_in_bytes" if version == 1 else "memory.max"
            (path / limit_file).write_text(str(limit_bytes))
        except OSError as exc:
            raise CgroupUnavailableError(f"cannot create a memory cgroup at {path}: {exc}") from exc
        return cls(path, version, limit_bytes)

    def wrap(self, command: Sequence[str]) -> list[str]:
        """``command`` made to join this cgroup before it starts (a shell writes its pid, then execs)."""
        procs = shlex.quote(str(self.path / "cgroup.procs"))
        return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *command]

    def peak_bytes(self) -> int | None:
        """The most memory the cgroup held (RSS and page cache charged to it)."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        """Processes the kernel killed for lack of memory in this cgroup (0 where it does not say)."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        with contextlib.suppress(OSError):  # a cgroup still holding a process stays; the kernel says why
            self.path.rmdir()
