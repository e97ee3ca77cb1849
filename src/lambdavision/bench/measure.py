"""`lambdavision bench`: one model at several memory sizes, bundled in the function and/or read from S3.

Every figure comes from real `awslambdaric` environment processes (`bench.runner`):

- cold start: the environment's process start -> its first answer = Init Duration + the first
  request's Duration, split into the model load (from the function's own log line
  "model loaded from X in N ms [(part N ms, ...)]"), the runtime start and imports before it (the
  rest of Init), and the first request;
- warm latency: each request's Duration (what Lambda bills), and its `Server-Timing` split into
  fetch, decode + preprocess and inference;
- peak memory: the REPORT line's Max Memory Used (the process's high-water mark);
- $ per 1M requests from `bench.pricing`.

Local figures approximate Lambda's: the CPU is not Lambda's; `bench.emulation` holds each
environment to the CPU share Lambda gives its memory size, and `bench.s3` reads a model on S3
through a shaped stand-in, as on Lambda.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lambdavision.bench.emulation import LAMBDA, Emulation
from lambdavision.bench.emulation import cpu_limiter as emulated_cpu
from lambdavision.bench.floor import threads_for_memory
from lambdavision.bench.images import ImageServer, url_event
from lambdavision.bench.machine import describe_machine, local_caveat
from lambdavision.bench.pricing import Prices, cost_per_million, load_prices
from lambdavision.bench.report import COLD_FRACTION, BenchReport, MemoryResult
from lambdavision.bench.runner import DEFAULT_TIMEOUT_S, HANDLER, BenchFunction, ColdRun, Runner, WarmFunction, WarmRun
from lambdavision.bench.s3 import BENCH_BUCKET, preload, s3_env, shaped_s3, upload
from lambdavision.bench.stats import BenchError, Stats
from lambdavision.cfn import FunctionSpec
from lambdavision.local.cpu_share import CpuShare
from lambdavision.runtime.artifact_files import unpack_for_serving
from lambdavision.runtime.model_source import BUNDLED_DIR

DEFAULT_MEMORY_SIZES = (1024, 2048, 3008)

ProgressFn = Callable[[str], None]


def _image_size(data: bytes, where: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    from lambdavision.core.preprocess import sniff_format

    if sniff_format(data) is None:
        raise BenchError(f"{where} is not an image the function accepts (JPEG, PNG, WebP, GIF or BMP)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise BenchError(f"{where} cannot be decoded: {exc}") from None


def _read_input(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BenchError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


SOURCES = ("bundled", "s3")
S3_KEY = "model/model.tar.gz"


def bench_model(
    model: str | os.PathLike[str],
    image: str | os.PathLike[str],
    *,
    memory_sizes: Sequence[int] = DEFAULT_MEMORY_SIZES,
    architecture: str = "x86_64",
    cold_runs: int = 3,
    warm_requests: int = 20,
    prices: Prices | None = None,
    progress: ProgressFn | None = None,
    runner: Runner | None = None,
    sources: Sequence[str] = ("bundled",),
    emulation: Emulation = LAMBDA,
    warn: Callable[[str], None] | None = None,
) -> BenchReport:
    """Measure `model` at each memory size, answering `{"url": ...}` for `image` served from a
    loopback server: bundled in the function (as `package --bundle-model` ships it) and/or on S3
    (moto behind the shaped stand-in, a fresh download cache per cold start).

    Under `emulation` (by default Lambda's CPU share per memory size and S3's published latency
    and bandwidth). Cold starts and warm requests of the rows are interleaved, so a burst of load
    from elsewhere on the machine touches them all alike. A row the function cannot run at (out of
    memory, say) gets its error instead of failing the whole bench.
    """
    from lambdavision.bench.pricing import check_memory

    if cold_runs < 1 or warm_requests < 1:
        raise BenchError("cold runs and warm requests must be at least 1 each")
    if not memory_sizes:
        raise BenchError("give at least one memory size")
    if not sources or any(source not in SOURCES for source in sources):
        raise BenchError(f"the model's source must be one of {', '.join(SOURCES)}, got {', '.join(sources) or 'none'}")
    prices = prices or load_prices()
    prices.gb_second_price(architecture)  # an unknown architecture fails before anything runs
    sizes = sorted(set(memory_sizes))
    for size in sizes:
        check_memory(size)
    model_path, image_path = Path(model), Path(image)
    image_bytes = _read_input(image_path, "image")
    image_size = _image_size(image_bytes, str(image_path))
    tick = progress or (lambda _message: None)
    rows = [(source, size) for source in SOURCES if source in sources for size in sizes]

    with contextlib.ExitStack() as stack:
        limiter = stack.enter_context(emulated_cpu(emulation.cpu_share, warn))
        runner = runner or Runner(cpu_limiter=limiter)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambdavision-bench-")))
        web = stack.enter_context(ImageServer({"image": image_bytes}))
        code_dir = tmp / "function"
        code_dir.mkdir()
        # As `package --bundle-model` ships it: unpacked for serving, loaded by path.
        unpack_for_serving(model_path, code_dir / BUNDLED_DIR)
        s3: dict[str, str] = {}
        if "s3" in sources:
            moto, stand_in = stack.enter_context(shaped_s3(emulation.shaping))
            upload(moto, {S3_KEY: model_path})
            preload(stand_in, [S3_KEY], tmp)
            s3 = {**s3_env(stand_in.url, tmp), "MODEL_URI": f"s3://{BENCH_BUCKET}/{S3_KEY}"}
        event = url_event(web.url_for("image"))
        functions = {row: _bench_function(code_dir, row, architecture, s3) for row in rows}
        results = {row: MemoryResult(row[1], threads_for_memory(row[1]), source=row[0]) for row in rows}
        for (_, size), result in results.items():
            result.cpu_share = (limiter.share(size) if limiter else CpuShare(None, "--no-cpu-share")).describe()
        colds: dict[tuple[str, int], list[ColdRun]] = {row: [] for row in rows}
        for run in range(cold_runs):
            for row in rows:
                tick(f"cold start {run + 1}/{cold_runs}, {row[0]} at {row[1]} MB")
                if results[row].error is None:
                    try:
                        colds[row].append(runner.cold_start(functions[row], event))
                    except BenchError as exc:
                        results[row].error = exc.message
        warms: dict[tuple[str, int], list[WarmRun]] = {row: [] for row in rows}
        live: dict[tuple[str, int], WarmFunction] = {}
        for row in rows:
            tick(f"warming an environment, {row[0]} at {row[1]} MB")
            if results[row].error is None:
                try:
                    live[row] = stack.enter_context(runner.warm(functions[row], event))
                except BenchError as exc:
                    results[row].error = exc.message
        for number in range(warm_requests):
            for row in rows:
                tick(f"warm request {number + 1}/{warm_requests}, {row[0]} at {row[1]} MB")
                if row in live and results[row].error is None:
                    try:
                        warms[row].append(live[row].request(event))
                    except BenchError as exc:
                        results[row].error = exc.message
        for row, warm in live.items():
            peaks = [warm.peak_memory_mb, *(c.max_memory_mb for c in colds[row])]
            results[row].peak_memory_mb = max(peaks, default=None)
        for row in rows:
            _summarise(results[row], colds[row], warms[row], prices, architecture)
        held = limiter is not None and limiter.share(sizes[0]).vcpus is not None
    machine = describe_machine()
    return BenchReport(
        model=str(model_path),
        image=str(image_path),
        image_size=image_size,
        architecture=architecture,
        cold_runs=cold_runs,
        warm_requests=warm_requests,
        machine=machine,
        prices=prices,
        results=[results[row] for row in rows],
        caveat=local_caveat(machine, sizes, cpu_share=held),
        emulation={**emulation.to_dict(), "sources": [s for s in SOURCES if s in sources]},
    )


def _bench_function(code_dir: Path, row: tuple[str, int], architecture: str, s3: Mapping[str, str]) -> BenchFunction:
    source, memory_mb = row
    threads = threads_for_memory(memory_mb)
    spec = FunctionSpec(
        logical_id=f"Bench{source.title()}{memory_mb}",
        handler=HANDLER,
        code_dir=code_dir,
        runtime="python3.12",
        memory_mb=memory_mb,
        timeout_s=DEFAULT_TIMEOUT_S,
        environment={},
        architecture=architecture,
    )
    extra = {"LAMBDAVISION_ALLOW_PRIVATE_URLS": "1", "LAMBDAVISION_THREADS": str(threads)}
    if source == "s3":  # MODEL_URI wins over the copy bundled in the code folder
        return BenchFunction(f"{memory_mb} MB, S3", spec, {**extra, **s3}, fresh_cache=True)
    return BenchFunction(f"{memory_mb} MB", spec, extra)


def _summarise(
    result: MemoryResult, colds: Sequence[ColdRun], warms: Sequence[WarmRun], prices: Prices, architecture: str
) -> None:
    if result.error is not None or not colds or not warms:
        result.error = result.error or "no measurements"
        return
    result.cold = Stats.of([c.total_ms for c in colds])
    result.cold_init = Stats.of([c.init_ms for c in colds])
    result.cold_first_request = Stats.of([c.first_request_ms for c in colds])
    loads = [c.load_ms for c in colds if c.load_ms is not None]
    result.model_load = Stats.of(loads) if loads else None
    result.warm = Stats.of([w.duration_ms for w in warms])
    result.fetch = Stats.of([w.timing.get("fetch", 0.0) for w in warms])
    result.decode = Stats.of([w.timing.get("decode", 0.0) for w in warms])
    result.inference = Stats.of([w.timing.get("inference", 0.0) for w in warms])
    result.cost_warm = cost_per_million(
        prices, memory_mb=result.memory_mb, architecture=architecture, warm_ms=result.warm.median
    )
    result.cost_cold = cost_per_million(
        prices,
        memory_mb=result.memory_mb,
        architecture=architecture,
        warm_ms=result.warm.median,
        cold_init_ms=result.cold_init.median,
        cold_request_ms=result.cold_first_request.median,
        cold_fraction=COLD_FRACTION,
    )


__all__ = ["DEFAULT_MEMORY_SIZES", "S3_KEY", "SOURCES", "ProgressFn", "bench_model"]
