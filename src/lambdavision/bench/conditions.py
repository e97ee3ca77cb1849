"""The conditions compare.py measures under: on loopback as before, and as on Lambda at several memory sizes.

- loopback: whole cores, S3 at memory speed (the stand-in unshaped), the guide's 3,008 MB;
- Lambda-shaped, at each memory size: every environment (and floor worker) held to Lambda's
  CPU share, MemorySize/1769 vCPUs, and S3 with a first-byte latency and a bandwidth per
  connection (`lambdavision.local.shaped_s3`, AWS's published figures by default).

The guide's app and lambdavision run under the same condition in the same stretch of the run,
and every ratio is taken within a condition. This module builds the conditions and the table
that sets them side by side; compare.py measures them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lambdavision.bench.emulation import LOCAL, Emulation
from lambdavision.local.cpu_quota import CpuLimiter
from lambdavision.local.cpu_share import share_for
from lambdavision.local.shaping import Shaping

# In every condition; the .onnx+.pth and int8 variants run in the primary one only.
CORE_VARIANTS = ("baseline", "lv_s3", "lv_bundled")


@dataclass(frozen=True)
class Condition:
    key: str
    memory_mb: int
    emulation: Emulation
    primary: bool = False

    def label(self, limiter: CpuLimiter | None) -> str:
        if not self.emulation.cpu_share:
            return f"loopback: {self.memory_mb:,} MB on whole cores, S3 at memory speed"
        share = limiter.share(self.memory_mb).describe() if limiter else "unlimited"
        return f"Lambda-shaped: {self.memory_mb:,} MB = {share}, S3 {self.emulation.shaping.describe()}"

    def to_dict(self, limiter: CpuLimiter | None) -> dict[str, Any]:
        return {
            **self.emulation.to_dict(),
            "key": self.key,
            "label": self.label(limiter),
            "memory_mb": self.memory_mb,
            "primary": self.primary,
            # The share applied, as the REPORT lines say it; None on loopback (whole cores, on purpose).
            "cpu_share": (limiter.share(self.memory_mb).describe() if limiter and self.emulation.cpu_share else None),
            "vcpus_lambda": round(share_for(self.memory_mb, 10**6), 2),
        }


def conditions(
    memory_sizes: Sequence[int], primary_mb: int, loopback_mb: int | None, shaping: Shaping
) -> list[Condition]:
    """Loopback first (when asked), then Lambda-shaped at each size; `primary_mb` is the full table's."""
    lambda_like = Emulation(cpu_share=True, shaping=shaping)
    out = [Condition("loopback", loopback_mb, LOCAL)] if loopback_mb else []
    for size in sorted({*memory_sizes, primary_mb}):
        out.append(Condition(f"lambda-{size}", size, lambda_like, primary=size == primary_mb))
    return out


# --- the table of conditions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    label: str
    unit: str
    path: tuple[str, ...]


def columns(large: str, small: str) -> list[Column]:
    return [
        Column("Cold start", "ms", ("cold", "total", "median")),
        Column("· model load", "ms", ("cold", "model_load", "median")),
        Column(f"Warm p50, {large}", "ms", ("warm", "large", "total", "median")),
        Column(f"Warm p50, {small}", "ms", ("warm", "small", "total", "median")),
        Column("Peak memory", "MB", ("peak_memory_mb",)),
    ]


def value_of(variant: dict[str, Any], path: tuple[str, ...]) -> float | None:
    """The number at `path` in a variant's results, or None where it was not measured."""
    value: Any = variant
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def conditions_table(
    results: dict[str, Any],
    large: str,
    small: str,
    shown: Callable[[float, str], float],
    fmt: Callable[[float, str], str],
    fmt_ratio: Callable[[float], str],
) -> str:
    """One row per condition and variant; each figure with its ratio to the guide's app in that condition."""
    cols = columns(large, small)
    lines = [
        "| Conditions | Variant | " + " | ".join(c.label for c in cols) + " |",
        "|" + "---|" * (len(cols) + 2),
    ]
    for condition in results["conditions"]:
        variants = [v for v in condition["variants"] if v["available"] and v["key"] in CORE_VARIANTS]
        baseline = next((v for v in variants if v["key"] == "baseline"), None)
        for number, variant in enumerate(variants):
            cells = []
            for column in cols:
                value = value_of(variant, column.path)
                if value is None:
                    cells.append("–")
                    continue
                text = fmt(shown(value, column.unit), column.unit)
                base = value_of(baseline, column.path) if baseline and variant is not baseline else None
                if base:
                    text += f" ({fmt_ratio(shown(value, column.unit) / shown(base, column.unit))})"
                cells.append(text)
            name = condition["label"] if number == 0 else ""
            lines.append(f"| {name} | {variant['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["CORE_VARIANTS", "Condition", "conditions", "conditions_table", "value_of"]
