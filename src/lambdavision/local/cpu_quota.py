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
from collections.abc import Callable
from pathlib import Path

from lambdavision.local.cgroups import (
    PREFIX,
    CpuGroup,
    Hierarchy,
    enable_cpu,
    find_hierarchy,
    remove_stale,
    write_quota,
)
from lambdavision.local.cpu_share import UNLIMITED_OFF, CpuShare, available_cores, share_for

log = logging.getLogger("lambdavision")


class CpuLimiter:
    """Makes a quota'd cgroup per environment; warns once and gives None where it cannot."""

    _counter = itertools.count(1)

    def __init__(
        self,
        *,
        enabled: bool = True,
        cores: int | None = None,
        hierarchy: Hierarchy | None = None,
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

    def _prepare(self, hierarchy: Hierarchy | None, proc: Path) -> str | None:
        if hierarchy is None:
            try:
                hierarchy = find_hierarchy((proc / "self/mountinfo").read_text(), (proc / "self/cgroup").read_text())
            except OSError as exc:
                return f"cannot read this process's cgroups ({exc.strerror or exc})"
        if hierarchy is None:
            return "no cgroup CPU controller is mounted"
        self._version = hierarchy.version
        remove_stale(hierarchy.base, proc)
        parent = hierarchy.base / f"{PREFIX}{os.getpid()}-{next(self._counter)}"
        try:
            if hierarchy.version == 2:
                enable_cpu(hierarchy.base)
            parent.mkdir(exist_ok=True)
            if hierarchy.version == 2:
                enable_cpu(parent)
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
                write_quota(path, self._version, vcpus)
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


__all__ = ["CpuLimiter"]
