"""Lambda as it really is, for the benchmarks: its CPU share by memory size, and S3 over a real network.

`lambdavision bench` and benchmarks/compare.py measure under an `Emulation`:

- `cpu_share`: every function environment (and every floor worker) in a cgroup quota of
  MemorySize/1769 vCPUs (`local.cpu_quota`), as Lambda gives CPU in proportion to memory;
- `shaping`: a model on S3 is read from moto through the shaped stand-in (`local.shaped_s3`):
  a first-byte latency and a bandwidth per connection from AWS's published figures by default,
  `LOOPBACK` for S3 at memory speed.

The S3 side (moto + stand-in, the artifact uploaded) is `bench.s3`; the floors are `bench.floor`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lambdavision.local.cgroups import CpuGroup
from lambdavision.local.cpu_quota import CpuLimiter
from lambdavision.local.cpu_share import CpuShare
from lambdavision.local.shaping import DEFAULT_SHAPING, LOOPBACK, Shaping


@dataclass(frozen=True)
class Emulation:
    """Which of Lambda's conditions a measurement reproduces."""

    cpu_share: bool = True
    shaping: Shaping = DEFAULT_SHAPING

    @property
    def lambda_like(self) -> bool:
        return self.cpu_share and self.shaping.shaped

    def describe(self, memory_mb: int, limiter: CpuLimiter | None = None) -> str:
        share = (limiter.share(memory_mb) if limiter else CpuShare(None, "--no-cpu-share")).describe()
        return f"{memory_mb} MB, CPU share {share}, S3 {self.shaping.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_share": self.cpu_share, "s3": self.shaping.to_dict(), "s3_text": self.shaping.describe()}


LAMBDA = Emulation()
LOCAL = Emulation(cpu_share=False, shaping=LOOPBACK)


@contextlib.contextmanager
def cpu_limiter(enabled: bool, warn: Callable[[str], None] | None = None) -> Iterator[CpuLimiter | None]:
    """A limiter for one benchmark run (None when the share is off); its groups are removed after."""
    if not enabled:
        yield None
        return
    limiter = CpuLimiter(warn=warn)
    try:
        yield limiter
    finally:
        limiter.close()


@dataclass
class WorkerGroup:
    """A cgroup for a floor worker: the same share as the function it is the floor of."""

    limiter: CpuLimiter | None
    memory_mb: int
    group: CpuGroup | None = field(default=None, init=False)

    def preexec(self) -> Callable[[], None] | None:
        if self.limiter is None:
            return None
        self.group = self.limiter.group(self.memory_mb)
        return None if self.group is None else self.group.join_self

    def close(self) -> None:
        if self.group is not None:
            self.group.remove(wait_s=0.5)


__all__ = ["LAMBDA", "LOCAL", "Emulation", "WorkerGroup", "cpu_limiter"]
