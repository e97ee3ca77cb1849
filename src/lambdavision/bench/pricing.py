"""What a request costs on Lambda: pure arithmetic over the price table in `resources/prices.json`.

Lambda bills each invocation's duration rounded up to the millisecond, times the memory size in GB
(MB / 1024), at the architecture's GB-second price, plus a per-request price. Since 2025-08-01 the
INIT phase of an on-demand zip function is billed too, so a cold start costs its init duration on
top of the request's. API Gateway, when in front, adds its own per-request price.

The table keeps the date its figures were read on: prices change, and a benchmark that prints a
dollar figure says from when.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lambdavision.core.errors import PricingError

MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
ARCHITECTURES = ("x86_64", "arm64")
API_KINDS = ("rest", "http")
MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """One region's Lambda (and API Gateway) prices, in dollars."""

    region: str
    currency: str
    gb_second: Mapping[str, float]  # by architecture, Lambda's spelling (x86_64, arm64)
    per_request: float
    api_gateway_per_request: Mapping[str, float]  # "rest", "http"
    init_billed: bool
    lambda_read_on: str
    api_gateway_read_on: str

    def gb_second_price(self, architecture: str) -> float:
        try:
            return self.gb_second[architecture]
        except KeyError:
            raise PricingError(
                f"no Lambda price for architecture {architecture!r}: use one of {', '.join(sorted(self.gb_second))}"
            ) from None


@dataclass(frozen=True)
class Cost:
    """Dollars per 1M requests, by what they pay for."""

    compute: float
    requests: float
    api_gateway: float = 0.0

    @property
    def total(self) -> float:
        return self.compute + self.requests + self.api_gateway

    def to_dict(self) -> dict[str, float]:
        return {
            "compute": self.compute,
            "requests": self.requests,
            "api_gateway": self.api_gateway,
            "total": self.total,
        }


def billed_ms(duration_ms: float) -> int:
    """Lambda's 1 ms billing: rounded up, at least 1 ms."""
    if not math.isfinite(duration_ms) or duration_ms < 0:
        raise PricingError(f"a duration must be a finite number of milliseconds >= 0, got {duration_ms!r}")
    return max(1, math.ceil(duration_ms))


def gb_seconds(memory_mb: int, duration_ms: float) -> float:
    """GB-seconds one invocation is billed for."""
    check_memory(memory_mb)
    return memory_mb / 1024 * billed_ms(duration_ms) / 1000


def check_memory(memory_mb: int) -> None:
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
        raise PricingError(f"Lambda memory sizes are {MIN_MEMORY_MB}..{MAX_MEMORY_MB} MB, got {memory_mb!r}")


def cost_per_million(
    prices: Prices,
    *,
    memory_mb: int,
    architecture: str,
    warm_ms: float,
    cold_init_ms: float = 0.0,
    cold_request_ms: float | None = None,
    cold_fraction: float = 0.0,
    api: str | None = None,
) -> Cost:
    """Dollars per 1M requests when `cold_fraction` of them start a new environment.

    A warm request is billed `warm_ms`; a cold one its own duration (`cold_request_ms`, default
    `warm_ms`) plus, where INIT is billed, `cold_init_ms`.
    """
    if not 0.0 <= cold_fraction <= 1.0:
        raise PricingError(f"the share of cold starts must be between 0 and 1, got {cold_fraction!r}")
    price = prices.gb_second_price(architecture)
    request_ms = warm_ms if cold_request_ms is None else cold_request_ms
    cold_billed = request_ms + (cold_init_ms if prices.init_billed else 0.0)
    per_request_gbs = (1 - cold_fraction) * gb_seconds(memory_mb, warm_ms)
    if cold_fraction:
        per_request_gbs += cold_fraction * gb_seconds(memory_mb, cold_billed)
    gateway = 0.0
    if api is not None:
        try:
            gateway = prices.api_gateway_per_request[api] * MILLION
        except KeyError:
            raise PricingError(f"no API Gateway price for {api!r}: use one of {', '.join(API_KINDS)}") from None
    return Cost(compute=per_request_gbs * price * MILLION, requests=prices.per_request * MILLION, api_gateway=gateway)


# --- the table ---------------------------------------------------------------------------------


def default_prices_path() -> Path:
    return Path(str(resources.files("lambdavision").joinpath("resources/prices.json")))


def load_prices(path: str | Path | None = None) -> Prices:
    """The price table: `path`, or the one shipped with lambdavision."""
    where = Path(path) if path is not None else default_prices_path()
    try:
        document = json.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PricingError(f"cannot read the price table {where}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise PricingError(f"the price table {where} is not valid JSON: {exc}") from None
    return parse_prices(document, str(where))


def parse_prices(document: Any, where: str = "prices.json") -> Prices:
    """Validate the table's shape: every price a positive number, every date present."""
    root = _mapping(document, where)
    lam = _mapping(root.get("lambda"), f"{where}: lambda")
    gateway = _mapping(root.get("api_gateway"), f"{where}: api_gateway")
    gb_second = _prices(lam.get("gb_second"), f"{where}: lambda.gb_second", ARCHITECTURES)
    gateway_prices = _prices(
        gateway.get("per_million_requests"), f"{where}: api_gateway.per_million_requests", API_KINDS
    )
    return Prices(
        region=_text(root.get("region"), f"{where}: region"),
        currency=_text(root.get("currency"), f"{where}: currency"),
        gb_second=gb_second,
        per_request=_positive(lam.get("per_million_requests"), f"{where}: lambda.per_million_requests") / MILLION,
        api_gateway_per_request={kind: value / MILLION for kind, value in gateway_prices.items()},
        init_billed=bool(lam.get("init_billed_since")),
        lambda_read_on=_text(lam.get("read_on"), f"{where}: lambda.read_on"),
        api_gateway_read_on=_text(gateway.get("read_on"), f"{where}: api_gateway.read_on"),
    )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PricingError(f"{where} must be an object")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PricingError(f"{where} must be a non-empty string")
    return value


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise PricingError(f"{where} must be a positive number, got {value!r}")
    return float(value)


def _prices(value: Any, where: str, required: tuple[str, ...]) -> dict[str, float]:
    table = _mapping(value, where)
    missing = [name for name in required if name not in table]
    if missing:
        raise PricingError(f"{where} lacks {', '.join(missing)}")
    return {str(name): _positive(price, f"{where}.{name}") for name, price in table.items()}


__all__ = [
    "Cost",
    "Prices",
    "PricingError",
    "billed_ms",
    "cost_per_million",
    "gb_seconds",
    "load_prices",
    "parse_prices",
]
