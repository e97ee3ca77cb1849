"""Lambda cost arithmetic and the shipped price table."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdavision.bench.pricing import (
    Prices,
    PricingError,
    billed_ms,
    cost_per_million,
    gb_seconds,
    load_prices,
    parse_prices,
)

TABLE: dict[str, Any] = {
    "region": "us-east-1",
    "currency": "USD",
    "lambda": {
        "gb_second": {"x86_64": 0.0000166667, "arm64": 0.0000133334},
        "per_million_requests": 0.20,
        "init_billed_since": "2025-08-01",
        "read_on": "2026-11",
    },
    "api_gateway": {"per_million_requests": {"rest": 3.50, "http": 1.00}, "read_on": "2026-11"},
}


@pytest.fixture
def prices() -> Prices:
    return parse_prices(TABLE)


def test_shipped_table_has_the_documented_prices_and_dates() -> None:
    prices = load_prices()
    assert prices.gb_second == {"x86_64": 0.0000166667, "arm64": 0.0000133334}
    assert prices.per_request == pytest.approx(0.20 / 1e6)
    assert prices.api_gateway_per_request == {"rest": pytest.approx(3.5e-6), "http": pytest.approx(1e-6)}
    assert prices.init_billed
    assert prices.lambda_read_on and prices.api_gateway_read_on


def test_billing_rounds_up_to_the_millisecond_with_a_floor_of_one() -> None:
    assert [billed_ms(0), billed_ms(0.2), billed_ms(1.0), billed_ms(1.01), billed_ms(99.9)] == [1, 1, 1, 2, 100]


def test_gb_seconds_uses_memory_in_binary_gigabytes() -> None:
    assert gb_seconds(1024, 1000) == 1.0
    assert gb_seconds(3008, 250) == pytest.approx(3008 / 1024 * 0.25)


def test_all_warm_cost_is_compute_plus_requests(prices: Prices) -> None:
    cost = cost_per_million(prices, memory_mb=2048, architecture="x86_64", warm_ms=100)
    # 2 GB x 0.1 s x $0.0000166667 x 1M = $3.33334, plus $0.20 of requests
    assert cost.compute == pytest.approx(3.33334)
    assert cost.requests == pytest.approx(0.20)
    assert cost.api_gateway == 0
    assert cost.total == pytest.approx(3.53334)


def test_cold_starts_add_their_billed_init(prices: Prices) -> None:
    warm = cost_per_million(prices, memory_mb=1024, architecture="arm64", warm_ms=100)
    mixed = cost_per_million(
        prices, memory_mb=1024, architecture="arm64", warm_ms=100, cold_init_ms=900, cold_request_ms=300,
        cold_fraction=0.05,
    )  # fmt: skip
    expected_gbs = 0.95 * 0.1 + 0.05 * 1.2  # 1 GB; cold = 900 ms init + 300 ms request
    assert mixed.compute == pytest.approx(expected_gbs * 0.0000133334 * 1e6)
    assert mixed.compute > warm.compute


def test_init_is_free_where_the_table_says_it_is_not_billed() -> None:
    table = copy.deepcopy(TABLE)
    del table["lambda"]["init_billed_since"]
    prices = parse_prices(table)
    cost = cost_per_million(
        prices, memory_mb=1024, architecture="x86_64", warm_ms=100, cold_init_ms=5000, cold_fraction=1.0
    )
    assert cost.compute == pytest.approx(0.1 * 0.0000166667 * 1e6)


def test_api_gateway_adds_its_request_price(prices: Prices) -> None:
    rest = cost_per_million(prices, memory_mb=128, architecture="x86_64", warm_ms=1, api="rest")
    http = cost_per_million(prices, memory_mb=128, architecture="x86_64", warm_ms=1, api="http")
    assert rest.api_gateway == pytest.approx(3.50)
    assert http.api_gateway == pytest.approx(1.00)
    assert rest.to_dict()["total"] == pytest.approx(rest.compute + 0.20 + 3.50)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"memory_mb": 64}, "128..10240"),
        ({"memory_mb": 20_000}, "128..10240"),
        ({"architecture": "ppc64"}, "ppc64"),
        ({"cold_fraction": 1.5}, "between 0 and 1"),
        ({"warm_ms": -1.0}, ">= 0"),
        ({"warm_ms": float("nan")}, "finite"),
        ({"api": "websocket"}, "websocket"),
    ],
)
def test_impossible_questions_get_a_clear_error(prices: Prices, kwargs: dict[str, Any], needle: str) -> None:
    args: dict[str, Any] = {"memory_mb": 1024, "architecture": "x86_64", "warm_ms": 10.0, **kwargs}
    with pytest.raises(PricingError, match=needle.replace(".", r"\.")):
        cost_per_million(prices, **args)


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("lambda", "gb_second", "arm64"), -1, "positive"),
        (("lambda", "gb_second", "x86_64"), "cheap", "positive"),
        (("lambda", "per_million_requests"), 0, "positive"),
        (("lambda", "read_on"), "", "read_on"),
        (("api_gateway",), None, "api_gateway must be an object"),
        (("region",), 3, "region"),
    ],
)
def test_malformed_tables_are_refused_naming_the_field(path: tuple[str, ...], value: Any, needle: str) -> None:
    table = copy.deepcopy(TABLE)
    target = table
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(PricingError, match=needle):
        parse_prices(table)


def test_a_missing_architecture_is_refused() -> None:
    table = copy.deepcopy(TABLE)
    del table["lambda"]["gb_second"]["arm64"]
    with pytest.raises(PricingError, match="lacks arm64"):
        parse_prices(table)


def test_unreadable_tables_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match="cannot read"):
        load_prices(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PricingError, match="not valid JSON"):
        load_prices(broken)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(TABLE))
    assert load_prices(good).region == "us-east-1"


@given(
    memory=st.integers(min_value=128, max_value=10_240),
    warm=st.floats(min_value=0, max_value=900_000),
    extra=st.floats(min_value=0, max_value=10_000),
    fraction=st.floats(min_value=0, max_value=1),
)
def test_cost_grows_with_duration_memory_and_cold_share(
    memory: int, warm: float, extra: float, fraction: float
) -> None:
    prices = parse_prices(TABLE)
    base = cost_per_million(prices, memory_mb=memory, architecture="x86_64", warm_ms=warm)
    slower = cost_per_million(prices, memory_mb=memory, architecture="x86_64", warm_ms=warm + extra)
    colder = cost_per_million(
        prices, memory_mb=memory, architecture="x86_64", warm_ms=warm, cold_init_ms=extra, cold_fraction=fraction
    )
    assert base.total <= slower.total
    assert base.total <= colder.total + 1e-9
    assert cost_per_million(prices, memory_mb=memory, architecture="arm64", warm_ms=warm).total <= base.total
