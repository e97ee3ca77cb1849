"""How long fuzzing runs: a few hundred cases per target in the suite; `make fuzz` runs for minutes.

`LAMBDAVISION_FUZZ_MINUTES=N` (set by `make fuzz`) repeats each target's hypothesis run until N
minutes have passed and prints how many cases ran.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from hypothesis import HealthCheck, settings

SUITE_EXAMPLES = int(os.environ.get("LAMBDAVISION_FUZZ_EXAMPLES", "250"))
MINUTES = float(os.environ.get("LAMBDAVISION_FUZZ_MINUTES", "0") or 0)

FUZZ_SETTINGS = settings(
    max_examples=SUITE_EXAMPLES,
    deadline=None,  # speed is measured by benchmarks, not asserted in tests
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,
)


class Counter:
    def __init__(self) -> None:
        self.cases = 0

    def tick(self) -> None:
        self.cases += 1


def run_budget(name: str, target: Callable[[], None], counter: Counter) -> None:
    """Run a hypothesis-decorated target once (suite), or repeatedly for MINUTES (`make fuzz`)."""
    target()
    if MINUTES > 0:
        stop = time.monotonic() + MINUTES * 60
        while time.monotonic() < stop:
            target()
    print(f"\nfuzz {name}: {counter.cases} cases")
    assert counter.cases > 0
