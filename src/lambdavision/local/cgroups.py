"""cgroups for CPU quotas: where they can go (v1's `cpu` controller under this process's own group, else
v2's root), one environment's group (`CpuGroup`), the quota written, and groups left by killed runs
removed."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from lambdavision.local.cpu_share import CpuShare

log = logging.getLogger("lambdavision")

PERIOD_US = 100_000  # the CFS period: the quota is enforced per 100 ms
MIN_QUOTA_US = 1_000  # the kernel refuses quotas under 1 ms
PREFIX = "lambdavision-"


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    base: Path  # where this process's groups go


def _mountinfo(text: str) -> list[tuple[str, str, str, str]]:
    """(mount root, mount point, fs type, super options) of each mount."""
    mounts = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3:
            mounts.append((fields[3], fields[4], tail[0], tail[2]))
    return mounts


def find_hierarchy(mountinfo: str, own_cgroups: str) -> Hierarchy | None:
    """Where CPU quotas can go: v1's `cpu` controller under this process's own group, else v2's root."""
    own: dict[str, str] = {}
    for line in own_cgroups.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        for name in controllers.split(",") if number != "0" else ["<v2>"]:
            own[name] = path
    for root, point, fstype, options in _mountinfo(mountinfo):
        if fstype == "cgroup" and "cpu" in options.split(",") and "cpu" in own:
            relative = own["cpu"]
            if root != "/" and relative.startswith(root):  # a container sees its own group as "/"
                relative = relative[len(root) :]
            return Hierarchy(1, Path(point) / relative.lstrip("/"))
    for _root, point, fstype, _options in _mountinfo(mountinfo):
        if fstype == "cgroup2":
            with contextlib.suppress(OSError):
                if "cpu" in (Path(point) / "cgroup.controllers").read_text().split():
                    return Hierarchy(2, Path(point))
    return None


class CpuGroup:
    """One environment's cgroup. The child joins it before exec (`join_self`), so its whole life,
    init included, runs under the quota; `remove` deletes it once its processes are gone."""

    def __init__(self, path: Path, version: int, vcpus: float) -> None:
        self.path = path
        self.version = version
        self.share = CpuShare(vcpus)
        self._procs = str(path / "cgroup.procs").encode()

    def join_self(self) -> None:
        """For preexec_fn: move the calling process here ("0" is the writer itself).

        Runs between fork and exec: no allocation-heavy work, no exceptions out (the parent
        checks with `adopt` and says so if the move did not happen).
        """
        try:
            fd = os.open(self._procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError:
            pass

    def adopt(self, pid: int) -> None:
        """Move `pid` here (a no-op when it joined already); OSError if the kernel refuses."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        return []

    def throttling(self) -> dict[str, int]:
        """cpu.stat: periods, throttled periods and time (how often the quota held the process back)."""
        stats: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / "cpu.stat").read_text().splitlines():
                name, _, value = line.partition(" ")
                stats[name] = int(value)
        return stats

    def remove(self, wait_s: float = 2.0) -> None:
        """Delete the group; its processes must have exited (a killed process leaves it shortly after)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    log.debug("cannot remove the cgroup %s yet; left behind", self.path)
                    return
                time.sleep(0.02)


def write_quota(path: Path, version: int, vcpus: float) -> None:
    quota = max(MIN_QUOTA_US, round(vcpus * PERIOD_US))
    if version == 2:
        (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
    else:
        (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (path / "cpu.cfs_quota_us").write_text(str(quota))


def enable_cpu(group: Path) -> None:
    """cgroup v2: let the children of `group` have CPU quotas."""
    control = group / "cgroup.subtree_control"
    if not control.exists() or "cpu" not in control.read_text().split():
        control.write_text("+cpu")


def remove_stale(base: Path, proc: Path) -> None:
    """Empty groups left by lambdavision processes that were killed before they could clean up."""
    with contextlib.suppress(OSError):
        for parent in base.glob(f"{PREFIX}*"):
            pid = parent.name[len(PREFIX) :].partition("-")[0]
            if not pid.isdigit() or (proc / pid).exists():
                continue
            for child in parent.glob("env-*"):
                with contextlib.suppress(OSError):
                    child.rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()


__all__ = [
    "MIN_QUOTA_US",
    "PERIOD_US",
    "PREFIX",
    "CpuGroup",
    "Hierarchy",
    "enable_cpu",
    "find_hierarchy",
    "remove_stale",
    "write_quota",
]
