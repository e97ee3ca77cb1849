"""What S3 over a real network costs each response, for the shaped stand-in (`local.shaped_s3`): a
first-byte latency and a bandwidth per connection (AWS's published figures by default: first-byte
latencies of small GETs "often in the tens of milliseconds", one concurrent request per 85-90 MB/s
of throughput), optionally an aggregate cap shared by every connection."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

MB = 1_000_000
# AWS, "Performance design patterns for Amazon S3" and "Timeouts and retries for latency-sensitive applications".
DEFAULT_LATENCY_S = 0.030
DEFAULT_BANDWIDTH = 85 * MB


@dataclass(frozen=True)
class Shaping:
    """What each response costs: first-byte latency (s); bandwidth per connection and in all (B/s; None: unlimited)."""

    latency_s: float = DEFAULT_LATENCY_S
    bandwidth: float | None = DEFAULT_BANDWIDTH
    aggregate: float | None = None

    def __post_init__(self) -> None:
        if not self.latency_s >= 0:
            raise ValueError(f"latency must be >= 0 s, got {self.latency_s}")
        for name in ("bandwidth", "aggregate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 bytes/s (or None for unlimited), got {value}")

    @property
    def shaped(self) -> bool:
        return self.latency_s > 0 or self.bandwidth is not None or self.aggregate is not None

    def describe(self) -> str:
        if not self.shaped:
            return "loopback (no shaping)"
        parts = [f"{self.latency_s * 1000:g} ms to the first byte"]
        parts.append(
            "unlimited per connection" if self.bandwidth is None else f"{self.bandwidth / MB:g} MB/s per connection"
        )
        if self.aggregate is not None:
            parts.append(f"{self.aggregate / MB:g} MB/s in all")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, float | None]:
        return {
            "latency_ms": self.latency_s * 1000,
            "bandwidth_mb_s": _mb(self.bandwidth),
            "aggregate_mb_s": _mb(self.aggregate),
        }


DEFAULT_SHAPING = Shaping()
LOOPBACK = Shaping(latency_s=0.0, bandwidth=None, aggregate=None)


def _mb(value: float | None) -> float | None:
    return None if value is None else value / MB


class Pacer:
    """When the next bytes may leave: per transfer (its own rate) and shared (the aggregate cap)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = 0.0

    def reserve(self, size: int) -> float:
        """The time at which `size` more bytes may be sent under the shared cap (booked now)."""
        if self.rate is None:
            return 0.0
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + size / self.rate
            return start


__all__ = ["DEFAULT_BANDWIDTH", "DEFAULT_LATENCY_S", "DEFAULT_SHAPING", "LOOPBACK", "MB", "Pacer", "Shaping"]
