"""Lambda's CPU share by memory size: MemorySize / 1,769 vCPUs, capped at the cores present; and the
share an environment was given, as the REPORT line and the bench output say it."""

from __future__ import annotations

import os
from dataclasses import dataclass

MB_PER_VCPU = 1769  # Lambda: one vCPU's worth of CPU per 1,769 MB of memory


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


__all__ = ["MB_PER_VCPU", "UNLIMITED_OFF", "CpuShare", "available_cores", "lambda_vcpus", "share_for"]
