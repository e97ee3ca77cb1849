"""What `lambdavision bench` found: one row per memory size (and model source), and the whole report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lambdavision.bench.machine import Machine
from lambdavision.bench.pricing import Cost, Prices
from lambdavision.bench.stats import Stats

COLD_FRACTION = 0.05  # the "some cold starts" cost column: 5 % of requests start an environment


@dataclass
class MemoryResult:
    memory_mb: int
    threads: int
    cold: Stats | None = None
    cold_init: Stats | None = None
    cold_first_request: Stats | None = None
    model_load: Stats | None = None
    warm: Stats | None = None
    fetch: Stats | None = None
    decode: Stats | None = None
    inference: Stats | None = None
    peak_memory_mb: int | None = None
    cost_warm: Cost | None = None
    cost_cold: Cost | None = None
    error: str | None = None
    source: str = "bundled"  # or "s3"
    cpu_share: str = ""  # the share each environment was held to, as the REPORT line says it

    def to_dict(self) -> dict[str, Any]:
        def stats(value: Stats | None) -> dict[str, float | int] | None:
            return None if value is None else value.to_dict()

        return {
            "memory_mb": self.memory_mb,
            "source": self.source,
            "cpu_share": self.cpu_share,
            "threads": self.threads,
            "cold_start_ms": stats(self.cold),
            "cold_init_ms": stats(self.cold_init),
            "cold_first_request_ms": stats(self.cold_first_request),
            "model_load_ms": stats(self.model_load),
            "warm_ms": stats(self.warm),
            "warm_fetch_ms": stats(self.fetch),
            "warm_decode_ms": stats(self.decode),
            "warm_inference_ms": stats(self.inference),
            "peak_memory_mb": self.peak_memory_mb,
            "usd_per_million_warm": None if self.cost_warm is None else self.cost_warm.to_dict(),
            "usd_per_million_with_cold": None if self.cost_cold is None else self.cost_cold.to_dict(),
            "error": self.error,
        }


@dataclass
class BenchReport:
    model: str
    image: str
    image_size: tuple[int, int]
    architecture: str
    cold_runs: int
    warm_requests: int
    machine: Machine
    prices: Prices
    results: list[MemoryResult]
    caveat: str
    emulation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "image": self.image,
            "image_size": list(self.image_size),
            "architecture": self.architecture,
            "cold_runs": self.cold_runs,
            "warm_requests": self.warm_requests,
            "cold_fraction": COLD_FRACTION,
            "machine": self.machine.to_dict(),
            "prices": {
                "region": self.prices.region,
                "usd_per_gb_second": self.prices.gb_second_price(self.architecture),
                "usd_per_request": self.prices.per_request,
                "read_on": self.prices.lambda_read_on,
            },
            "results": [r.to_dict() for r in self.results],
            "emulation": self.emulation,
            "caveat": self.caveat,
        }


__all__ = ["COLD_FRACTION", "BenchReport", "MemoryResult"]
