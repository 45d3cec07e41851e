"""A CPU budget for one process: a cgroup whose CFS quota lets it use ``cores`` of CPU time and no more.

``taskset`` gives a worker one core, but on a machine with few cores the bot, Redis and the load
client share those same cores with the workers, so adding a worker also takes CPU from the bot. A
quota below a core leaves the rest of the machine to them: how a worker on its own machine behaves.
Needs root and a writable cgroup cpu controller (v2, or v1 as in many containers).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


class QuotaUnavailable(RuntimeError):
    pass


def _make_group(name: str, cores: float) -> Path:
    quota = max(1_000, round(cores * PERIOD_US))
    v2 = CGROUP_ROOT / "cgroup.controllers"
    if v2.is_file() and "cpu" in v2.read_text().split():
        subtree = CGROUP_ROOT / "cgroup.subtree_control"
        if "cpu" not in subtree.read_text().split():
            subtree.write_text("+cpu")
        group = CGROUP_ROOT / name
        group.mkdir()
        (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        return group
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        if (CGROUP_ROOT / mount / "cpu.cfs_quota_us").is_file():
            group = CGROUP_ROOT / mount / name
            group.mkdir()
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
            return group
    raise QuotaUnavailable("no cgroup cpu controller (v2 or v1) under /sys/fs/cgroup")


@contextlib.contextmanager
def cpu_quota(cores: float) -> Iterator[Path]:
    """A fresh cgroup limited to ``cores`` CPUs; put a process in with ``limit(group, pid)``. Removed on exit
    (its processes must have ended by then)."""
    try:
        group = _make_group(f"lyricbot-bench-{secrets.token_hex(4)}", cores)
    except OSError as exc:
        raise QuotaUnavailable(f"cannot create a cgroup with a CPU quota ({exc}); run as root") from exc
    try:
        yield group
    finally:
        with contextlib.suppress(OSError):
            group.rmdir()


def limit(group: Path, pid: int) -> None:
    """Move a process, all its threads, into the group."""
    try:
        (group / "cgroup.procs").write_text(str(pid))
    except OSError as exc:
        raise QuotaUnavailable(f"cannot move process {pid} into {group} ({exc})") from exc
