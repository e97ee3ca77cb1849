"""Lambda's CPU share for local environments: a cgroup CPU quota of MemorySize / 1,769 vCPUs.

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU's worth, so a
1,024 MB function gets ~0.58 of a CPU however many cores its host has. Locally each environment
process then runs in a cgroup of its own whose CFS quota holds the whole process (every thread,
and whatever it starts) to that share, capped at the cores this process may use:

- cgroup v1, the `cpu` controller: `cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota = share x
  100 ms per 100 ms period), under this process's own `cpu` cgroup;
- cgroup v2: `cpu.max` ("quota period") in a group under the hierarchy's root.

Creating groups and moving processes into them needs root (or a delegated hierarchy). Where that
is refused (a laptop without root, a container without cgroup access) the limiter says so once,
in one line, and every environment runs on whole cores; the REPORT line says which share applied.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("lambdavision")

MB_PER_VCPU = 1769  # Lambda: one vCPU's worth of CPU per 1,769 MB of memory
PERIOD_US = 100_000  # the CFS period: the quota is enforced per 100 ms
MIN_QUOTA_US = 1_000  # the kernel refuses quotas under 1 ms
_PREFIX = "lambdavision-"


def lambda_vcpus(memory_mb: int) -> float:
    """The vCPUs Lambda gives a function of this memory size."""
    return memory_mb / MB_PER_VCPU


def available_cores() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def share_for(memory_mb: int, cores: int | None = None) -> float:
    """MemorySize / 1,769 vCPUs, capped at the cores present."""
    return min(lambda_vcpus(memory_mb), float(cores or available_cores()))


@dataclass(frozen=True)
class CpuShare:
    """The CPU an environment was given: a quota of `vcpus`, or whole cores (and why)."""

    vcpus: float | None  # None: no quota, the process may use every core
    reason: str = ""  # why there is no quota

    def describe(self) -> str:
        """As the REPORT line and the bench output say it."""
        if self.vcpus is not None:
            return f"{self.vcpus:.2f} vCPU"
        return f"unlimited ({self.reason})" if self.reason else "unlimited"

    def to_dict(self) -> dict[str, float | str | None]:
        return {"vcpus": self.vcpus, "applied": self.vcpus is not None, "reason": self.reason or None}


UNLIMITED_OFF = CpuShare(None, "--no-cpu-share")


@dataclass(frozen=True)
class _Hierarchy:
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


def find_hierarchy(mountinfo: str, own_cgroups: str) -> _Hierarchy | None:
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
            return _Hierarchy(1, Path(point) / relative.lstrip("/"))
    for _root, point, fstype, _options in _mountinfo(mountinfo):
        if fstype == "cgroup2":
            with contextlib.suppress(OSError):
                if "cpu" in (Path(point) / "cgroup.controllers").read_text().split():
                    return _Hierarchy(2, Path(point))
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


class CpuLimiter:
    """Makes a quota'd cgroup per environment; warns once and gives None where it cannot."""

    _counter = itertools.count(1)

    def __init__(
        self,
        *,
        enabled: bool = True,
        cores: int | None = None,
        hierarchy: _Hierarchy | None = None,
        proc: Path = Path("/proc"),
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.enabled = enabled
        self.cores = cores or available_cores()
        self._warn = warn or (lambda message: log.warning("%s", message))
        self._lock = threading.Lock()
        self._parent: Path | None = None
        self._version = 1
        self._failure: str | None = None
        self._warned = False
        if enabled:
            self._failure = self._prepare(hierarchy, proc)

    def _prepare(self, hierarchy: _Hierarchy | None, proc: Path) -> str | None:
        if hierarchy is None:
            try:
                hierarchy = find_hierarchy((proc / "self/mountinfo").read_text(), (proc / "self/cgroup").read_text())
            except OSError as exc:
                return f"cannot read this process's cgroups ({exc.strerror or exc})"
        if hierarchy is None:
            return "no cgroup CPU controller is mounted"
        self._version = hierarchy.version
        _remove_stale(hierarchy.base, proc)
        parent = hierarchy.base / f"{_PREFIX}{os.getpid()}-{next(self._counter)}"
        try:
            if hierarchy.version == 2:
                _enable_cpu(hierarchy.base)
            parent.mkdir(exist_ok=True)
            if hierarchy.version == 2:
                _enable_cpu(parent)
        except OSError as exc:
            return f"cgroups are not writable here ({exc.strerror or exc}: {parent})"
        self._parent = parent
        return None

    def share(self, memory_mb: int) -> CpuShare:
        """What `group` would apply, without making a group."""
        if not self.enabled:
            return UNLIMITED_OFF
        if self._failure is not None:
            return CpuShare(None, "cgroups not writable")
        return CpuShare(round(share_for(memory_mb, self.cores), 2))

    def group(self, memory_mb: int) -> CpuGroup | None:
        """A new group holding a process to this memory size's share; None (warned once) if impossible."""
        if not self.enabled:
            return None
        if self._failure is None and self._parent is not None:
            vcpus = share_for(memory_mb, self.cores)
            path = self._parent / f"env-{next(self._counter)}"
            try:
                path.mkdir()
                _write_quota(path, self._version, vcpus)
                return CpuGroup(path, self._version, round(vcpus, 2))
            except OSError as exc:
                with contextlib.suppress(OSError):
                    path.rmdir()
                self._failure = f"cannot set a CPU quota in {path} ({exc.strerror or exc})"
        self._warn_once()
        return None

    def failed(self, reason: str) -> None:
        """A group could not hold its process: no more quotas, one warning."""
        self._failure = self._failure or reason
        self._warn_once()

    def _warn_once(self) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        self._warn(
            f"lambdavision: cannot hold environments to Lambda's CPU share: {self._failure}; they run on "
            "whole cores (run as root for the share, or pass --no-cpu-share to silence this)"
        )

    def close(self) -> None:
        """Remove this process's parent group (its environment groups were removed with them)."""
        if self._parent is not None:
            for child in self._parent.glob("env-*"):
                CpuGroup(child, self._version, 0.0).remove(wait_s=0.5)
            with contextlib.suppress(OSError):
                self._parent.rmdir()


def _write_quota(path: Path, version: int, vcpus: float) -> None:
    quota = max(MIN_QUOTA_US, round(vcpus * PERIOD_US))
    if version == 2:
        (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
    else:
        (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (path / "cpu.cfs_quota_us").write_text(str(quota))


def _enable_cpu(group: Path) -> None:
    """cgroup v2: let the children of `group` have CPU quotas."""
    control = group / "cgroup.subtree_control"
    if not control.exists() or "cpu" not in control.read_text().split():
        control.write_text("+cpu")


def _remove_stale(base: Path, proc: Path) -> None:
    """Empty groups left by lambdavision processes that were killed before they could clean up."""
    with contextlib.suppress(OSError):
        for parent in base.glob(f"{_PREFIX}*"):
            pid = parent.name[len(_PREFIX) :].partition("-")[0]
            if not pid.isdigit() or (proc / pid).exists():
                continue
            for child in parent.glob("env-*"):
                with contextlib.suppress(OSError):
                    child.rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()


__all__ = [
    "MB_PER_VCPU",
    "UNLIMITED_OFF",
    "CpuGroup",
    "CpuLimiter",
    "CpuShare",
    "available_cores",
    "find_hierarchy",
    "lambda_vcpus",
    "share_for",
]
