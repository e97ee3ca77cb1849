"""compare.py's chart (compare.png), from its results.json document; matplotlib when installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lambdavision.bench.compare_tables import IMAGE_SIZES, LARGE, SMALL, value_at
from lambdavision.bench.report import COLD_FRACTION


def chart(results: dict[str, Any], out: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (pip install matplotlib)"
    variants = [v for v in results["variants"] if v["available"]]
    labels = [v["label"].replace(", ", "\n") for v in variants]
    colours = ["#b05050" if v["key"] == "baseline" else "#4878a8" for v in variants]
    figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    x = np.arange(len(variants))

    def stacked(axis: Any, title: str, parts: list[tuple[str, list[float]]]) -> None:
        bottom = np.zeros(len(variants))
        for name, values in parts:
            axis.bar(x, values, bottom=bottom, label=name)
            bottom += np.asarray(values)
        axis.set_title(title, fontsize=10)
        axis.set_xticks(x, labels, fontsize=7)
        axis.legend(fontsize=7)

    def value(v: dict[str, Any], *path: str) -> float:
        return value_at(*path)(v) or 0.0

    stacked(
        axes[0][0],
        "cold start, ms (median)",
        [
            ("runtime + imports", [value(v, "cold", "runtime_imports", "median") for v in variants]),
            ("model load", [value(v, "cold", "model_load", "median") for v in variants]),
            ("first request", [value(v, "cold", "first_request", "median") for v in variants]),
        ],
    )
    for axis, key in ((axes[0][1], LARGE), (axes[0][2], SMALL)):
        size = "×".join(map(str, IMAGE_SIZES[key]))
        stacked(
            axis,
            f"warm p50 split, ms, {size}",
            [
                ("fetch", [value(v, "warm", key, "fetch", "median") for v in variants]),
                ("decode + preprocess", [value(v, "warm", key, "decode", "median") for v in variants]),
                ("forward", [value(v, "warm", key, "inference", "median") for v in variants]),
            ],
        )
    simple = [
        (axes[1][0], "peak memory, MB", [value(v, "peak_memory_mb") for v in variants]),
        (axes[1][1], "package unzipped (code + deps), MB", [value(v, "package", "unzipped_mb") for v in variants]),
        (
            axes[1][2],
            f"$ per 1M requests, x86_64, {COLD_FRACTION:.0%} cold",
            [value(v, "cost", "x86_64", "cold", "total") for v in variants],
        ),
    ]
    for axis, title, values in simple:
        axis.bar(x, values, color=colours)
        axis.set_title(title, fontsize=10)
        axis.set_xticks(x, labels, fontsize=7)
    meta = results["meta"]
    figure.suptitle(
        f"lambdavision vs the guide's PyTorch app — {meta['model']}, {meta['memory_mb']} MB, "
        f"{meta['cold_runs']} cold / {meta['warm_requests']} warm, local runtime on {meta['machine']['cpu']}",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return None


__all__ = ["chart"]
