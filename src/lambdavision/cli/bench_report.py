"""`lambdavision bench`'s report: a table on the terminal (figures, prices read on, the caveat) and the
chart of `--plot` (matplotlib, when installed)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lambdavision.bench.report import COLD_FRACTION, BenchReport, MemoryResult
from lambdavision.bench.stats import Stats


def _ms(stats: Stats | None) -> str:
    return "-" if stats is None else f"{stats.median:,.0f}"


def _ms_spread(stats: Stats | None) -> str:
    if stats is None:
        return "-"
    return f"{stats.median:,.0f} ({stats.minimum:,.0f}-{stats.maximum:,.0f})"


def _split(result: MemoryResult) -> str:
    if result.fetch is None or result.decode is None or result.inference is None:
        return "-"
    return f"{result.fetch.median:.1f} / {result.decode.median:.1f} / {result.inference.median:.1f}"


def print_table(report: BenchReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=120)
    title = (
        f"{report.model} on {report.image} ({report.image_size[0]}x{report.image_size[1]}), "
        f"{report.architecture}: {report.cold_runs} cold starts, {report.warm_requests} warm requests per size"
    )
    table = Table(title=title, title_justify="left")
    headers = ("Memory (threads)", "Model", "CPU share", "Cold ms (min-max)", "p50 ms", "p95 ms")
    for name in (*headers, "fetch/decode/infer ms", "Peak MB", "$/1M warm", f"$/1M {COLD_FRACTION:.0%} cold"):
        table.add_column(name, justify="right")
    for r in report.results:
        memory = f"{r.memory_mb} MB ({r.threads})"
        where = "S3" if r.source == "s3" else "bundled"
        if r.error is not None:
            table.add_row(memory, where, r.cpu_share, f"[red]failed: {r.error}[/red]")
            continue
        table.add_row(
            memory,
            where,
            r.cpu_share,
            _ms_spread(r.cold),
            _ms(r.warm),
            "-" if r.warm is None else f"{r.warm.p95:,.0f}",
            _split(r),
            "-" if r.peak_memory_mb is None else str(r.peak_memory_mb),
            "-" if r.cost_warm is None else f"{r.cost_warm.total:.2f}",
            "-" if r.cost_cold is None else f"{r.cost_cold.total:.2f}",
        )
    console.print(table)
    gb_second = f"{report.prices.gb_second_price(report.architecture):.10f}".rstrip("0")
    console.print(
        f"Prices: {report.prices.region}, {report.architecture} ${gb_second} per GB-second + "
        f"${report.prices.per_request * 1e6:.2f} per 1M requests (INIT billed on cold starts), as read on "
        f"{report.prices.lambda_read_on}; API Gateway not included.",
        highlight=False,
    )
    if "s3" in report.emulation.get("sources", []):
        console.print(f"S3: moto behind the shaped stand-in, {report.emulation['s3_text']}.", highlight=False)
    console.print(report.caveat, highlight=False)


def plot(report: BenchReport, out: Path) -> None:
    """Bars per memory size: cold start, warm p50 and $ per 1M."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise click.ClickException("--plot needs matplotlib: pip install matplotlib") from None
    rows = [r for r in report.results if r.error is None and r.cold and r.warm and r.cost_cold]
    if not rows:
        raise click.ClickException("nothing to plot: every memory size failed")
    labels = [f"{r.memory_mb} MB" + (", S3" if r.source == "s3" else "") for r in rows]
    panels: list[tuple[str, list[float]]] = [
        ("cold start, ms", [r.cold.median for r in rows if r.cold]),
        ("warm p50, ms", [r.warm.median for r in rows if r.warm]),
        ("peak memory, MB", [float(r.peak_memory_mb or 0) for r in rows]),
        (f"$ per 1M ({COLD_FRACTION:.0%} cold)", [r.cost_cold.total for r in rows if r.cost_cold]),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    for axis, (name, values) in zip(axes, panels, strict=True):
        axis.bar(labels, values, color="#4878a8")
        axis.set_title(name, fontsize=10)
        axis.tick_params(labelsize=8)
    figure.suptitle(f"lambdavision bench: {Path(report.model).name}, local estimate", fontsize=10)
    figure.tight_layout()
    try:
        figure.savefig(out, dpi=110)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


__all__ = ["plot", "print_table"]
