"""Lambda's Python runtimes and their lifecycle: which ones Lambda has retired, and since when.

The dates are AWS's deprecation table as cfn-lint 1.58 carries it
(`cfnlint/data/AdditionalSpecs/LmbdRuntimeLifecycle.json`): `deprecated` = no more security
patches, `create_block` = Lambda refuses to create a function on it, `update_block` = and to update
one. The clock is passed in, so the table is judged against the day of the deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# Where a function should go instead: the runtimes lambdavision packages for (onnxruntime's wheels
# need glibc 2.28; python3.12+ runs on Amazon Linux 2023).
SUCCESSORS = "python3.12 or python3.13"


@dataclass(frozen=True)
class Lifecycle:
    deprecated: date
    create_block: date
    update_block: date


LIFECYCLES: dict[str, Lifecycle] = {
    "python2.7": Lifecycle(date(2021, 7, 15), date(2021, 7, 15), date(2022, 5, 30)),
    "python3.6": Lifecycle(date(2022, 7, 18), date(2022, 7, 18), date(2022, 8, 29)),
    "python3.7": Lifecycle(date(2023, 12, 4), date(2024, 1, 9), date(2027, 3, 3)),
    "python3.8": Lifecycle(date(2024, 10, 14), date(2027, 2, 1), date(2027, 3, 3)),
    "python3.9": Lifecycle(date(2025, 12, 15), date(2027, 2, 1), date(2027, 3, 3)),
    "python3.10": Lifecycle(date(2026, 10, 31), date(2027, 2, 1), date(2027, 3, 3)),
    "python3.11": Lifecycle(date(2027, 6, 30), date(2027, 7, 31), date(2027, 8, 31)),
    "python3.12": Lifecycle(date(2028, 10, 31), date(2028, 11, 30), date(2029, 1, 10)),
    "python3.13": Lifecycle(date(2029, 6, 30), date(2029, 7, 31), date(2029, 8, 31)),
    "python3.14": Lifecycle(date(2029, 6, 30), date(2029, 7, 31), date(2029, 8, 31)),
}


def retired_reason(runtime: str, today: date) -> str | None:
    """Why `runtime` is retired on `today` (one clause), or None while Lambda still supports it."""
    lifecycle = LIFECYCLES.get(runtime)
    if lifecycle is None or today < lifecycle.deprecated:
        return None
    if today >= lifecycle.create_block:
        return (
            f"{runtime} is retired on Lambda (deprecated {lifecycle.deprecated.isoformat()}; new functions "
            f"refused since {lifecycle.create_block.isoformat()})"
        )
    return (
        f"{runtime} is retired on Lambda (deprecated {lifecycle.deprecated.isoformat()}, no security patches; "
        f"new functions refused from {lifecycle.create_block.isoformat()})"
    )


__all__ = ["LIFECYCLES", "SUCCESSORS", "Lifecycle", "retired_reason"]
