"""Keeps the CPU busy for a while and says how much CPU it got: the quota's measured property.

Event: {"seconds": S, "processes": N}. The handler spins for S seconds of wall time in N busy
processes (itself and N - 1 children it starts, which inherit its cgroup) and answers the CPU
time they used together, from getrusage, with the wall time it took.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from typing import Any

SPIN = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    seconds = float(event.get("seconds", 1.0))
    processes = int(event.get("processes", 1))
    started, own, children = time.monotonic(), _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    helpers = [subprocess.Popen([sys.executable, "-c", SPIN, str(seconds)]) for _ in range(processes - 1)]
    end = started + seconds
    while time.monotonic() < end:
        pass
    for helper in helpers:
        helper.wait()
    wall = time.monotonic() - started
    cpu = _cpu_s(resource.RUSAGE_SELF) - own + _cpu_s(resource.RUSAGE_CHILDREN) - children
    return {"cpu_s": cpu, "wall_s": wall, "pid": os.getpid(), "cgroup": open("/proc/self/cgroup").read()}
