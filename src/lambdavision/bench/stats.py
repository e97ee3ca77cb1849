"""The summary of one figure's samples, and the error a measurement that cannot be taken raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lambdavision.core.errors import BenchError


@dataclass(frozen=True)
class Stats:
    """Median and spread of one figure's samples (milliseconds or MB)."""

    n: int
    median: float
    p95: float
    p25: float
    p75: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise BenchError("no samples to summarise")
        data = np.asarray(values, dtype=np.float64)
        p25, median, p75, p95 = (float(v) for v in np.percentile(data, [25, 50, 75, 95]))
        return cls(len(values), median, p95, p25, p75, float(data.min()), float(data.max()))

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median": self.median,
            "p95": self.p95,
            "p25": self.p25,
            "p75": self.p75,
            "min": self.minimum,
            "max": self.maximum,
        }


__all__ = ["BenchError", "Stats"]
