"""`lambdavision bench`: cold start, warm latency, peak memory and $ per 1M requests for a model.

The measuring is `lambdavision.bench`; this module parses, shows progress on a terminal, and prints
a table (or JSON with --json, a chart with --plot).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from lambdavision.bench import COLD_FRACTION, DEFAULT_MEMORY_SIZES, BenchReport, MemoryResult, ProgressFn, Stats
from lambdavision.cli.common import cpu_share_option
from lambdavision.local.shaped_s3 import DEFAULT_BANDWIDTH, DEFAULT_LATENCY_S, MB, Shaping
from lambdavision.pricing import ARCHITECTURES, MAX_MEMORY_MB, MIN_MEMORY_MB

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def parse_memory_sizes(values: Sequence[str]) -> list[int]:
    """`--memory 1024 2048`, `--memory 1024,2048` or repeated `--memory` -> sorted unique MB."""
    sizes: set[int] = set()
    for value in values:
        for piece in value.replace(",", " ").split():
            try:
                size = int(piece)
            except ValueError:
                raise click.BadParameter(f"{piece!r} is not a whole number of MB", param_hint="--memory") from None
            if not MIN_MEMORY_MB <= size <= MAX_MEMORY_MB:
                raise click.BadParameter(
                    f"{size} MB is outside Lambda's {MIN_MEMORY_MB}..{MAX_MEMORY_MB} MB", param_hint="--memory"
                )
            sizes.add(size)
    return sorted(sizes) or list(DEFAULT_MEMORY_SIZES)


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[ProgressFn | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=total)

        def advance(message: str) -> None:
            progress.update(task, description=message, advance=1)

        yield advance


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


@click.command("bench")
@click.option("--model", "model", required=True, type=_EXISTING_FILE, help="The artifact, model.tar.gz.")
@click.option("--image", "image", required=True, type=_EXISTING_FILE, help="An image to classify (JPEG, PNG...).")
@click.option(
    "--memory",
    "memory",
    multiple=True,
    metavar="MB...",
    help="Memory sizes to try: --memory 1024 2048 3008 (or 1024,2048) "
    f"[default: {' '.join(map(str, DEFAULT_MEMORY_SIZES))}]",
)
@click.argument("more_memory", nargs=-1, metavar="")
@click.option(
    "--arch",
    "architecture",
    type=click.Choice(ARCHITECTURES),
    default="x86_64",
    show_default=True,
    help="Lambda architecture, for the price (the measurement runs on this machine's CPU).",
)
@click.option("--cold-runs", default=3, show_default=True, type=click.IntRange(min=1), help="Cold starts per size.")
@click.option(
    "--warm", "warm", default=20, show_default=True, type=click.IntRange(min=1), help="Warm requests per size."
)
@click.option(
    "--source",
    "sources",
    type=click.Choice(["bundled", "s3"]),
    multiple=True,
    help="Where the function reads the model: bundled in its package, and/or S3 (moto behind the shaped "
    "stand-in, a fresh download per cold start). Repeat for both.  [default: bundled]",
)
@cpu_share_option
@click.option(
    "--s3-latency",
    "s3_latency_ms",
    default=DEFAULT_LATENCY_S * 1000,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="MS",
    help="S3 time to the first byte of each answer (AWS: tens of ms for small GETs).",
)
@click.option(
    "--s3-bandwidth",
    "s3_bandwidth",
    default=DEFAULT_BANDWIDTH / MB,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    metavar="MB/S",
    help="S3 bandwidth of each connection (AWS: 85-90 MB/s per concurrent request).",
)
@click.option(
    "--s3-aggregate",
    "s3_aggregate",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    metavar="MB/S",
    help="A cap on all S3 connections together (none by default).",
)
@click.option("--s3-loopback", is_flag=True, help="S3 at loopback speed: no latency or bandwidth shaping.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (for scripts).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write a PNG chart.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def bench_command(
    model: Path,
    image: Path,
    memory: tuple[str, ...],
    more_memory: tuple[str, ...],
    architecture: str,
    cold_runs: int,
    warm: int,
    sources: tuple[str, ...],
    cpu_share: bool,
    s3_latency_ms: float,
    s3_bandwidth: float,
    s3_aggregate: float | None,
    s3_loopback: bool,
    as_json: bool,
    plot_path: Path | None,
    quiet: bool,
) -> None:
    """Measure MODEL as a Lambda function on this machine: cold start, warm p50/p95, peak memory and $ per 1M
    requests, for each memory size.

    The model is bundled in the function (as `package --bundle-model` ships it) or read from S3
    (--source s3), and the image is fetched by URL from a loopback server, the guide's
    `{"url": ...}` request. As on Lambda, each environment gets the CPU share of its memory size
    (--no-cpu-share: whole cores) and S3 answers with a first-byte latency and a bandwidth per
    connection (--s3-loopback: at memory speed). Local figures approximate Lambda's; the output
    says on what machine and under which conditions they were taken.
    """
    from lambdavision.bench import bench_model
    from lambdavision.bench_emulation import Emulation

    if more_memory and not memory:
        raise click.UsageError(f"unexpected argument {more_memory[0]!r}")
    sizes = parse_memory_sizes([*memory, *more_memory])
    chosen = sources or ("bundled",)
    shaping = (
        Shaping(0.0, None, None)
        if s3_loopback
        else Shaping(s3_latency_ms / 1000, s3_bandwidth * MB, None if s3_aggregate is None else s3_aggregate * MB)
    )
    steps = len(set(chosen)) * len(sizes) * (cold_runs + 1 + warm)
    with _progress(steps, enabled=not quiet and sys.stderr.isatty()) as advance:
        report = bench_model(
            model,
            image,
            memory_sizes=sizes,
            architecture=architecture,
            cold_runs=cold_runs,
            warm_requests=warm,
            progress=advance,
            sources=chosen,
            emulation=Emulation(cpu_share=cpu_share, shaping=shaping),
            warn=lambda message: click.echo(message, err=True),
        )
    if plot_path is not None:
        plot(report, plot_path)
    if as_json:
        document: dict[str, Any] = report.to_dict()
        if plot_path is not None:
            document["plot"] = str(plot_path)
        click.echo(json.dumps(document, indent=2))
    else:
        print_table(report)
        if plot_path is not None:
            click.echo(f"chart: {plot_path}")
    if all(r.error is not None for r in report.results):
        raise click.ClickException(
            "no memory size could be measured: " + "; ".join(str(r.error) for r in report.results)
        )


def register(cli: click.Group) -> None:
    cli.add_command(bench_command)
