"""compare.py's tables, from its results.json document (pure): the full table of the primary condition
with ratios to the guide's app, the targets, the conditions side by side, the threads check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdavision.bench.conditions import conditions_table, value_of
from lambdavision.bench.report import COLD_FRACTION

LARGE, SMALL = "large", "small"
IMAGE_SIZES = {LARGE: (4032, 3024), SMALL: (640, 480)}


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    get: Callable[[dict[str, Any]], float | None]


def value_at(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def getter(variant: dict[str, Any]) -> float | None:
        return value_of(variant, path)

    return getter


def rows() -> list[Row]:
    large, small = "×".join(map(str, IMAGE_SIZES[LARGE])), "×".join(map(str, IMAGE_SIZES[SMALL]))
    table = [
        Row("Cold start (process start → first answer)", "ms", value_at("cold", "total", "median")),
        Row("· runtime start + imports", "ms", value_at("cold", "runtime_imports", "median")),
        Row("· model load (fetch + read + session)", "ms", value_at("cold", "model_load", "median")),
        Row("· first request", "ms", value_at("cold", "first_request", "median")),
    ]
    for key, name in ((LARGE, large), (SMALL, small)):
        table += [
            Row(f"Warm p50, {name}", "ms", value_at("warm", key, "total", "median")),
            Row("· fetch", "ms", value_at("warm", key, "fetch", "median")),
            Row("· decode + preprocess", "ms", value_at("warm", key, "decode", "median")),
            Row("· forward", "ms", value_at("warm", key, "inference", "median")),
            Row(f"Warm p95, {name}", "ms", value_at("warm", key, "total", "p95")),
        ]
    table += [
        Row("Forward floor (ONNX Runtime `run` alone)", "ms", value_at("floor", "median")),
        Row(f"Decode floor ({large} JPEG at the model's scale, alone)", "ms", value_at("decode_floor", "median")),
        Row(f"Warm p50 above decode + forward floors, {large}", "%", value_at("floors_overhead_pct")),
        Row(f"Warm overhead above the floor, {small}", "%", value_at("overhead_pct")),
        Row("Peak memory (Max Memory Used)", "MB", value_at("peak_memory_mb")),
        Row("Package unzipped (code + dependencies)", "MB", value_at("package", "unzipped_mb")),
        Row("Package zipped (code + dependencies)", "MB", value_at("package", "zipped_mb")),
        Row("· with the model bundled, unzipped", "MB", value_at("package_bundled", "unzipped_mb")),
        Row("· with the model bundled, zipped", "MB", value_at("package_bundled", "zipped_mb")),
        Row("$ per 1M, x86_64, all warm", "$", value_at("cost", "x86_64", "warm", "total")),
        Row(f"$ per 1M, x86_64, {COLD_FRACTION:.0%} cold", "$", value_at("cost", "x86_64", "cold", "total")),
        Row("$ per 1M, arm64, all warm", "$", value_at("cost", "arm64", "warm", "total")),
        Row(f"$ per 1M, arm64, {COLD_FRACTION:.0%} cold", "$", value_at("cost", "arm64", "cold", "total")),
    ]
    return table


def shown(value: float, unit: str) -> float:
    """The value as the table prints it (ratios are computed from these)."""
    if unit == "$":
        return round(value, 2) if value >= 1 else round(value, 3)
    if unit in ("ms", "%"):
        return round(value) if abs(value) >= 100 else round(value, 1)
    return round(value, 1)


def fmt(value: float, unit: str) -> str:
    if unit == "$":
        return f"${value:,.2f}" if value >= 1 else f"${value:.3f}"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return f"{text} {unit}" if unit != "%" else f"{text} %"


def fmt_ratio(ratio: float) -> str:
    if ratio <= 0:
        return "–"
    return f"1/{1 / ratio:.1f}" if ratio < 1 else f"×{ratio:.2f}"


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure per variant: the raw value, as shown, and its ratio to the baseline's shown value."""
    out = []
    variants = results["variants"]
    baseline = next(v for v in variants if v["key"] == "baseline")
    for row in rows():
        base_value = row.get(baseline)
        base_shown = None if base_value is None else shown(base_value, row.unit)
        cells: dict[str, dict[str, Any] | None] = {}
        for variant in variants:
            if not variant["available"]:
                continue
            value = row.get(variant)
            if value is None:
                cells[variant["key"]] = None
                continue
            value_shown = shown(value, row.unit)
            ratio = None
            if variant["key"] != "baseline" and base_shown and row.unit != "%":
                ratio = value_shown / base_shown
            cells[variant["key"]] = {
                "value": value,
                "shown": value_shown,
                "text": fmt(value_shown, row.unit),
                "ratio": ratio,
            }
        out.append({"label": row.label, "unit": row.unit, "cells": cells})
    return out


def markdown_table(results: dict[str, Any]) -> str:
    variants = [v for v in results["variants"] if v["available"]]
    header = "| Figure | " + " | ".join(v["label"] for v in variants) + " |"
    lines = [header, "|" + "---|" * (len(variants) + 1)]
    for row in results["table"]:
        cells = []
        for variant in variants:
            cell = row["cells"].get(variant["key"])
            if cell is None:
                cells.append("–")
            elif cell["ratio"] is None:
                cells.append(cell["text"])
            else:
                cells.append(f"{cell['text']} ({fmt_ratio(cell['ratio'])})")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    for variant in results["variants"]:
        if variant.get("reason"):
            text += f"\n\n*{variant['label']}: {variant['reason']}.*"
    return text


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    by_key = {row["label"]: row for row in results["table"]}
    rows_ = rows()
    label = {r.label: r for r in rows_}
    large, small = (f"{IMAGE_SIZES[k][0]}×{IMAGE_SIZES[k][1]}" for k in (LARGE, SMALL))
    s3_keys, bundled_keys = {"lv_s3_full", "lv_s3"}, {"lv_bundled", "lv_int8"}
    cold = "Cold start (process start → first answer)"
    checks: list[tuple[str, str, str, float, set[str] | None]] = [
        ("cold start from S3 ≤ 1/6 of the guide app's", cold, "ratio", 1 / 6, s3_keys),
        ("cold start bundled ≤ 1/10 of the guide app's", cold, "ratio", 1 / 10, bundled_keys),
        ("peak memory ≤ 1/4", "Peak memory (Max Memory Used)", "ratio", 1 / 4, None),
        (
            f"warm p50 within 15 % of decode + forward floors ({large})",
            f"Warm p50 above decode + forward floors, {large}",
            "value",
            15.0,
            None,
        ),
        (
            f"warm p50 within 15 % of the forward floor ({small})",
            f"Warm overhead above the floor, {small}",
            "value",
            15.0,
            None,
        ),
        ("package unzipped ≤ 1/8", "Package unzipped (code + dependencies)", "ratio", 1 / 8, None),
        ("package zipped ≤ 40 MB", "Package zipped (code + dependencies)", "value", 40.0, None),
    ]
    out = []
    for name, row_label, kind, limit, keys in checks:
        assert row_label in label, row_label
        row = by_key[row_label]
        verdicts = {}
        for key, cell in row["cells"].items():
            if key == "baseline" or cell is None or (keys is not None and key not in keys):
                continue
            figure = cell["ratio"] if kind == "ratio" else cell["shown"]
            if figure is None:
                continue
            verdicts[key] = {"figure": figure, "met": figure <= limit + 1e-9}
        out.append({"target": name, "row": row_label, "kind": kind, "limit": limit, "variants": verdicts})
    return out


def markdown_targets(results: dict[str, Any]) -> str:
    variants = [v for v in results["variants"] if v["available"] and v["key"] != "baseline"]
    lines = ["| Target | " + " | ".join(v["label"] for v in variants) + " |", "|" + "---|" * (len(variants) + 1)]
    for target in results["targets"]:
        cells = []
        for variant in variants:
            verdict = target["variants"].get(variant["key"])
            if verdict is None:
                cells.append("–")
                continue
            figure = fmt_ratio(verdict["figure"]) if target["kind"] == "ratio" else f"{verdict['figure']:g}"
            cells.append(f"{'met' if verdict['met'] else '**missed**'} ({figure})")
        lines.append(f"| {target['target']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def conditions_markdown(results: dict[str, Any]) -> str:
    large, small = (f"{IMAGE_SIZES[k][0]}×{IMAGE_SIZES[k][1]}" for k in (LARGE, SMALL))
    return conditions_table(results, large, small, shown, fmt, fmt_ratio)


def threads_markdown(results: dict[str, Any]) -> str:
    lines = [
        "| Conditions | ONNX Runtime threads (the function's) | forward floor | other choice | its forward floor |",
        "|---|---|---|---|---|",
    ]
    for condition in results["conditions"]:
        check = condition.get("threads_check") or {}
        if check.get("floor_ms") is None or check.get("other_floor_ms") is None:
            continue
        lines.append(
            f"| {condition['label']} | {check['threads']} | {fmt(shown(check['floor_ms'], 'ms'), 'ms')} | "
            f"{check['other_threads']} | {fmt(shown(check['other_floor_ms'], 'ms'), 'ms')} |"
        )
    return "\n".join(lines)


__all__ = [
    "IMAGE_SIZES",
    "LARGE",
    "SMALL",
    "conditions_markdown",
    "fmt",
    "fmt_ratio",
    "markdown_table",
    "markdown_targets",
    "rows",
    "shown",
    "table_rows",
    "targets",
    "threads_markdown",
    "value_at",
]
