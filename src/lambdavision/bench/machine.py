"""The machine a local measurement ran on, and the caveat every local result carries."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB_PER_VCPU = 1769


@dataclass(frozen=True)
class Machine:
    cpu: str
    logical_cores: int
    physical_cores: int | None
    system: str
    python: str

    def describe(self) -> str:
        cores = f"{self.logical_cores} logical cores"
        if self.physical_cores and self.physical_cores != self.logical_cores:
            cores += f" ({self.physical_cores} physical)"
        return f"{self.cpu}, {cores}, {self.system}, Python {self.python}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "logical_cores": self.logical_cores,
            "physical_cores": self.physical_cores,
            "system": self.system,
            "python": self.python,
        }


def describe_machine() -> Machine:
    import psutil

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return Machine(
        cpu=cpu or platform.processor() or platform.machine(),
        logical_cores=os.cpu_count() or 1,
        physical_cores=psutil.cpu_count(logical=False),
        system=f"{platform.system()} {platform.release()} {platform.machine()}",
        python=platform.python_version(),
    )


def local_caveat(machine: Machine, memory_sizes: Sequence[int], cpu_share: bool = False) -> str:
    """The plain statement every local result carries."""
    shares = ", ".join(f"{m} MB = {m / MB_PER_VCPU:.2f} vCPU" for m in memory_sizes)
    held = (
        "and each environment was held to that share by a cgroup CPU quota"
        if cpu_share
        else "while here every process may use whole cores"
    )
    return (
        f"Measured locally on {machine.describe()}, in lambdavision's local runtime (real awslambdaric "
        f"processes), not on AWS. These figures approximate Lambda's: its CPUs differ, and Lambda gives "
        f"CPU in proportion to memory ({shares}; 1,769 MB = 1 vCPU) {held}; ONNX Runtime's threads were "
        f"set as Lambda's vCPUs would allow."
    )


__all__ = ["MB_PER_VCPU", "Machine", "describe_machine", "local_caveat"]
