"""compare.py's README section, from its results.json document: the table, the targets, what each
difference between variants bought (in numbers from the run), and how the figures were taken."""

from __future__ import annotations

from typing import Any

from lambdavision.bench.compare_tables import (
    LARGE,
    conditions_markdown,
    markdown_table,
    markdown_targets,
    threads_markdown,
    value_at,
)
from lambdavision.bench.report import COLD_FRACTION


def _median(variant: dict[str, Any], *path: str) -> float | None:
    return value_at(*path)(variant)


def findings(results: dict[str, Any]) -> list[str]:
    """What each difference between variants bought, in numbers from this run."""
    v = {x["key"]: x for x in results["variants"] if x["available"]}
    notes = []
    base, full, s3, bundled = (v.get(k) for k in ("baseline", "lv_s3_full", "lv_s3", "lv_bundled"))
    for variant in (base, s3, bundled):
        parts = (variant or {}).get("cold", {}).get("load_parts") or {}
        if variant and parts:
            listed = ", ".join(f"{name} {stats['median']:,.0f} ms" for name, stats in parts.items() if stats)
            notes.append(f"{variant['label']}: its model load splits into {listed}.")
    if base and s3:
        a, b = _median(base, "cold", "runtime_imports", "median"), _median(s3, "cold", "runtime_imports", "median")
        if a and b:
            notes.append(
                f"ONNX Runtime + numpy + Pillow instead of torch: runtime start + imports {a:,.0f} → {b:,.0f} ms."
            )
    if full and s3:
        a, b = _median(full, "cold", "model_load", "median"), _median(s3, "cold", "model_load", "median")
        if a and b:
            notes.append(
                f"Leaving the .pth out of the serving artifact (now `export`'s default): model load from S3 "
                f"{a:,.0f} → {b:,.0f} ms (the reader stops before a .pth, but the ranges it fetched ahead are paid)."
            )
    if s3 and bundled:
        a, b = _median(s3, "cold", "model_load", "median"), _median(bundled, "cold", "model_load", "median")
        if a and b:
            notes.append(f"Bundling the model in the package instead of S3: model load {a:,.0f} → {b:,.0f} ms.")
    int8 = v.get("lv_int8")
    if bundled and int8:
        a, b = _median(bundled, "cold", "total", "median"), _median(int8, "cold", "total", "median")
        c, d = _median(bundled, "peak_memory_mb"), _median(int8, "peak_memory_mb")
        if a and b and c and d:
            notes.append(
                f"int8 instead of float32 (bundled): cold start {a:,.0f} → {b:,.0f} ms, peak memory {c:,.0f} → "
                f"{d:,.0f} MB (a quarter of the weights to read); judge its accuracy on a trained model."
            )
    if base and s3:
        a, b = _median(base, "warm", LARGE, "decode", "median"), _median(s3, "warm", LARGE, "decode", "median")
        if a and b:
            notes.append(
                f"Decoding the 4032×3024 JPEG in draft mode and preprocessing only the crop: {a:,.0f} → {b:,.0f} ms."
            )
        a, b = _median(base, "warm", LARGE, "inference", "median"), _median(s3, "warm", LARGE, "inference", "median")
        if a and b:
            notes.append(f"Forward pass, TorchScript (torch) → ONNX Runtime: {a:,.0f} → {b:,.0f} ms.")
    by_condition = {c["key"]: {x["key"]: x for x in c["variants"] if x["available"]} for c in results["conditions"]}
    loopback, primary = (
        by_condition.get("loopback"),
        next(
            ({x["key"]: x for x in c["variants"] if x["available"]} for c in results["conditions"] if c["primary"]),
            None,
        ),
    )
    if loopback and primary:
        for key in ("baseline", "lv_s3"):
            a, b = (
                _median(loopback.get(key, {}), "cold", "model_load", "median"),
                _median(primary.get(key, {}), "cold", "model_load", "median"),
            )
            if a and b:
                name = primary[key]["label"]
                notes.append(
                    f"{name}: model load on loopback (S3 at memory speed, whole cores) {a:,.0f} ms → "
                    f"{b:,.0f} ms as on Lambda at {results['meta']['memory_mb']:,} MB."
                )
    return notes


def readme_section(results: dict[str, Any], chart_note: str | None) -> str:
    meta = results["meta"]
    command = meta["command"]
    s3 = meta["s3"]
    others = [c for c in results["conditions"] if not c["primary"]]
    parts = [
        "## Benchmark: lambdavision vs the guide's PyTorch app",
        "",
        f"Made by `{command}` on {meta['date']}: {meta['model']} with random weights. Each variant ran as a real "
        "`awslambdaric` process in lambdavision's local runtime, its model on a moto S3 server behind a loopback "
        "stand-in and its images fetched by URL from a loopback server, under the conditions below. Figures are "
        "medians; each ratio is to the guide's app in the same condition of the same run (1/6.0 = six times less).",
        "",
        "**As on Lambda** (`lambdavision.bench.emulation`): every function environment runs in a cgroup CPU quota of "
        "MemorySize/1769 vCPUs (Lambda's CPU share by memory size; 2,048 MB = 1.16 vCPU), and S3 answers each "
        f"request after a first-byte latency of {s3['latency_ms']:g} ms and sends at most "
        f"{s3['bandwidth_mb_s']:g} MB/s per connection"
        + (f", {s3['aggregate_mb_s']:g} MB/s in all" if s3["aggregate_mb_s"] else "")
        + " (`lambdavision.local.shaped_s3`; the defaults are AWS's published figures, see below). "
        "**On loopback**: whole cores, S3 at memory speed, as these figures were taken before.",
        "",
        f"### {meta['condition']}",
        "",
        f"{meta['cold_runs']} cold starts and {meta['warm_requests']} warm requests per image size and variant, "
        "variants interleaved.",
        "",
        markdown_table(results),
        "",
    ]
    if chart_note is None:
        parts += ["![benchmark chart](benchmarks/results/compare.png)", ""]
    parts += ["### Targets", "", markdown_targets(results), ""]
    parts += [
        "### Every condition: loopback and as on Lambda at 1,024, 2,048 and 3,008 MB",
        "",
        f"{meta['other_cold_runs']} cold starts and {meta['other_warm_requests']} warm requests per image size in "
        f"{'each of the other conditions' if others else 'the condition'}; the same code and models.",
        "",
        conditions_markdown(results),
        "",
    ]
    parts += [
        "ONNX Runtime's intra-op threads follow the vCPUs the memory size buys (ceil(MemorySize/1769), at most the "
        "cores): checked against the quota, the forward floor with them and with the other choice, each worker held "
        "to the same share:",
        "",
        threads_markdown(results),
        "",
    ]
    notes = findings(results)
    if notes:
        parts += ["### What each difference bought", "", *[f"- {n}" for n in notes], ""]
    parts += [
        "### How to read it",
        "",
        f"- {meta['caveat']}",
        "- The machine may be shared with other work: repeat the command for your own figures. Between runs here "
        "the ratios moved by up to 2×, the guide's torch forward pass being the most sensitive to CPU contention.",
        "- Cold start = Init Duration + the first request's Duration: process start to the first answer. The model "
        'load is the function\'s own log line; "runtime start + imports" is the rest of Init.',
        "- Warm figures are the function's Duration (what Lambda bills), split by its `Server-Timing` header. The "
        "floors are what no serving code can remove, each measured alone in a worker process held to the same CPU "
        "share, between the warm rounds: ONNX Runtime's `run` on an already preprocessed input, with the function's "
        "threads, and the 4032×3024 JPEG decoded at the scale the model needs (draft mode), as the function decodes "
        "it.",
        f"- Cost: {meta['prices']}. Warm = every request warm at the 4032×3024 image's p50; "
        f"{COLD_FRACTION:.0%} cold adds Init (billed since 2025-08-01) and the first request's duration. API Gateway "
        "adds $3.50 (REST) or $1.00 (HTTP API) per 1M requests to every variant alike.",
        "- Package sizes: the guide's torch stack is the installed size of torch (CPU) and its requirements with "
        "numpy, Pillow and requests (zipped: torch's own wheel, the rest deflated); lambdavision's is the zip "
        "`lambdavision package` builds for python3.12. A bundled model adds its own size, and a zip over 50 MB "
        "must be deployed from S3 (as `lambdavision package` does), not uploaded directly.",
        "- S3's figures: AWS's *Performance design patterns for Amazon S3* suggests one concurrent request per "
        "85–90 MB/s of throughput and byte-range GETs of 8–16 MB; its *Timeouts and retries for latency-sensitive "
        "applications* puts small requests' median latency in the tens of milliseconds. Lambda's own network "
        "bandwidth is not published; `--s3-aggregate` caps all connections together when you want to assume one. "
        "The guide's app reads its model with one boto3 GET (one connection); lambdavision reads a model over 8 MiB "
        "with parallel ranged GETs.",
    ]
    return "\n".join(parts) + "\n"


__all__ = ["findings", "readme_section"]
