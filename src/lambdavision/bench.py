"""Measure a function in the local runtime as Lambda would see it: cold start, warm latency, memory, cost.

Every figure comes from real `awslambdaric` environment processes (`lambdavision.local.pool`):

- cold start: the environment's process start -> its first answer = Init Duration + the first
  request's Duration, split into the model load (from the function's own log line
  "model loaded from X in N ms [(part N ms, ...)]"), the runtime start and imports before it (the
  rest of Init), and the first request;
- warm latency: each request's Duration (what Lambda bills), and its `Server-Timing` split into
  fetch, decode + preprocess and inference;
- peak memory: the REPORT line's Max Memory Used (the process's high-water mark);
- $ per 1M requests from `lambdavision.pricing`.

`compare.py` (benchmarks/) and `lambdavision bench` share it. Local figures approximate Lambda's:
the CPU is not Lambda's; `bench_emulation` holds each environment to the CPU share Lambda gives
its memory size and reads a model on S3 through a shaped stand-in, as on Lambda.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from lambdavision.bench_emulation import BENCH_BUCKET, LAMBDA, Emulation, preload, s3_env, shaped_s3, upload
from lambdavision.bench_emulation import cpu_limiter as emulated_cpu
from lambdavision.cfn import FunctionSpec
from lambdavision.core.artifact import unpack_for_serving
from lambdavision.core.errors import LambdaVisionError
from lambdavision.core.events import invocation_event, parse_proxy_response
from lambdavision.local.cpu_quota import CpuLimiter, CpuShare
from lambdavision.local.environment import Invocation
from lambdavision.local.pool import FunctionPool
from lambdavision.model_source import BUNDLED_DIR
from lambdavision.pricing import Cost, Prices, cost_per_million, load_prices

HANDLER = "lambdavision.handler.lambda_handler"
DEFAULT_MEMORY_SIZES = (1024, 2048, 3008)
COLD_FRACTION = 0.05  # the "some cold starts" cost column: 5 % of requests start an environment
# Lambda's maximum. The local runtime kills an environment as timed out when an event is not picked
# up within its *init* allowance (Timeout + 10 s after the process started), even long after init:
# a long warm phase on a busy machine then fails spuriously. The largest timeout keeps it out of
# the way.
DEFAULT_TIMEOUT_S = 900
MB_PER_VCPU = 1769

ProgressFn = Callable[[str], None]


class BenchError(LambdaVisionError):
    """A measurement could not be taken: the function failed, or the inputs are unusable."""


# --- statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Median and spread of one figure's samples (milliseconds or MB)."""

    n: int
    median: float
    p95: float
    p25: float
    p75: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise BenchError("no samples to summarise")
        data = np.asarray(values, dtype=np.float64)
        p25, median, p75, p95 = (float(v) for v in np.percentile(data, [25, 50, 75, 95]))
        return cls(len(values), median, p95, p25, p75, float(data.min()), float(data.max()))

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median": self.median,
            "p95": self.p95,
            "p25": self.p25,
            "p75": self.p75,
            "min": self.minimum,
            "max": self.maximum,
        }


# --- what the function says -------------------------------------------------------------------

_TIMING = re.compile(r"([A-Za-z0-9_.-]+)\s*;[^,]*?\bdur=([0-9]+(?:\.[0-9]+)?)")
_LOADED = re.compile(r"model loaded from \S+ in ([0-9]+(?:\.[0-9]+)?) ms(?: \(([^)]*)\))?")
_PART = re.compile(r"([A-Za-z_ -]+?) ([0-9]+(?:\.[0-9]+)?) ms")


def parse_server_timing(header: str) -> dict[str, float]:
    """`fetch;dur=1.2, decode;dur=3.4` -> {"fetch": 1.2, "decode": 3.4}."""
    return {name: float(value) for name, value in _TIMING.findall(header)}


def parse_load_line(log_text: str) -> tuple[float | None, dict[str, float]]:
    """How long the model took to load, from the function's log, and its parts when given.

    Two shapes: lambdavision's JSON line `{"message": "model loaded", "init_ms": N, "<part>_ms": N}`
    and the text line `model loaded from X in N ms (part N ms, ...)` (the baseline's).
    """
    for line in log_text.splitlines():
        start = line.find("{")
        if start < 0 or "model loaded" not in line:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") == "model loaded":
            numbers = {
                key[:-3]: float(value)
                for key, value in record.items()
                if key.endswith("_ms") and isinstance(value, int | float) and not isinstance(value, bool)
            }
            total = numbers.pop("init", None)
            if total is None:
                total = numbers.pop("load", None)
            return total, numbers
    match = _LOADED.search(log_text)
    if match is None:
        return None, {}
    parts = {name.strip(): float(value) for name, value in _PART.findall(match.group(2) or "")}
    return float(match.group(1)), parts


# --- the machine ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    cpu: str
    logical_cores: int
    physical_cores: int | None
    system: str
    python: str

    def describe(self) -> str:
        cores = f"{self.logical_cores} logical cores"
        if self.physical_cores and self.physical_cores != self.logical_cores:
            cores += f" ({self.physical_cores} physical)"
        return f"{self.cpu}, {cores}, {self.system}, Python {self.python}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "logical_cores": self.logical_cores,
            "physical_cores": self.physical_cores,
            "system": self.system,
            "python": self.python,
        }


def describe_machine() -> Machine:
    import psutil

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return Machine(
        cpu=cpu or platform.processor() or platform.machine(),
        logical_cores=os.cpu_count() or 1,
        physical_cores=psutil.cpu_count(logical=False),
        system=f"{platform.system()} {platform.release()} {platform.machine()}",
        python=platform.python_version(),
    )


def local_caveat(machine: Machine, memory_sizes: Sequence[int], cpu_share: bool = False) -> str:
    """The plain statement every local result carries."""
    shares = ", ".join(f"{m} MB = {m / MB_PER_VCPU:.2f} vCPU" for m in memory_sizes)
    held = (
        "and each environment was held to that share by a cgroup CPU quota"
        if cpu_share
        else "while here every process may use whole cores"
    )
    return (
        f"Measured locally on {machine.describe()}, in lambdavision's local runtime (real awslambdaric "
        f"processes), not on AWS. These figures approximate Lambda's: its CPUs differ, and Lambda gives "
        f"CPU in proportion to memory ({shares}; 1,769 MB = 1 vCPU) {held}; ONNX Runtime's threads were "
        f"set as Lambda's vCPUs would allow."
    )


# --- a loopback image server ------------------------------------------------------------------


class ImageServer:
    """Serves fixed images on 127.0.0.1 for the function under test to fetch."""

    def __init__(self, images: Mapping[str, bytes]) -> None:
        self._images = {name.strip("/"): data for name, data in images.items()}
        images_ref = self._images

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = images_ref.get(self.path.split("?", 1)[0].strip("/"))
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-images", daemon=True)

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def url_for(self, name: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{name.strip('/')}"


def url_event(url: str) -> dict[str, Any]:
    """The guide's request: an API Gateway REST proxy event whose body is `{"url": ...}`."""
    return invocation_event({"url": url})


# --- measuring one function -------------------------------------------------------------------


@dataclass(frozen=True)
class BenchFunction:
    """A function to measure: its spec, its extra variables, and whether its model comes from S3
    (each cold start then gets an empty download cache, as a new Lambda environment has)."""

    name: str
    spec: FunctionSpec
    extra_env: Mapping[str, str] = field(default_factory=dict)
    fresh_cache: bool = False


@dataclass(frozen=True)
class ColdRun:
    total_ms: float  # process start -> first answer (Init Duration + first Duration)
    init_ms: float
    first_request_ms: float
    load_ms: float | None  # from the function's log line
    load_parts: dict[str, float]
    max_memory_mb: int
    timing: dict[str, float]

    @property
    def runtime_and_imports_ms(self) -> float | None:
        return None if self.load_ms is None else max(0.0, self.init_ms - self.load_ms)


@dataclass(frozen=True)
class WarmRun:
    duration_ms: float
    timing: dict[str, float]
    max_memory_mb: int


def _check_answer(fn: BenchFunction, invocation: Invocation, logs: str) -> dict[str, float]:
    """The Server-Timing of a good answer; anything else is a BenchError saying what went wrong."""
    tail = " | ".join(line.strip() for line in logs.strip().splitlines()[-4:])
    if not invocation.ok:
        try:
            message = str(json.loads(invocation.payload).get("errorMessage", ""))
        except (ValueError, AttributeError):
            message = invocation.payload[:200].decode("utf-8", "replace")
        raise BenchError(f"{fn.name}: the function failed ({invocation.error_type}: {message}); log: {tail}")
    try:
        answer = parse_proxy_response(json.loads(invocation.payload))
    except ValueError as exc:
        raise BenchError(f"{fn.name}: not an API Gateway proxy answer ({exc})") from None
    if answer.status != 200:
        body = answer.body[:300].decode("utf-8", "replace")
        raise BenchError(f"{fn.name}: the function answered HTTP {answer.status}: {body}")
    header = next((v for k, v in answer.headers if k.lower() == "server-timing"), "")
    return parse_server_timing(header)


class Runner:
    """Starts environments of BenchFunctions and measures them."""

    def __init__(
        self,
        *,
        shell_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        cpu_limiter: CpuLimiter | None = None,
    ) -> None:
        base = dict(os.environ if shell_env is None else shell_env)
        # A stray LAMBDAVISION_THREADS etc. in the caller's shell must not leak into the measurement.
        self.shell_env = {k: v for k, v in base.items() if not k.startswith("LAMBDAVISION_")}
        self.python = python
        self.cpu_limiter = cpu_limiter  # Lambda's CPU share for each environment (None: whole cores)

    def _pool(self, fn: BenchFunction, log: io.StringIO, cache_dir: str | None) -> FunctionPool:
        extra = dict(fn.extra_env)
        if cache_dir is not None:
            extra["LAMBDAVISION_CACHE_DIR"] = cache_dir
        return FunctionPool(
            fn.spec,
            concurrency=1,
            log_stream=log,
            python=self.python,
            extra_env=extra,
            shell_env=self.shell_env,
            cpu_limiter=self.cpu_limiter,
        )

    @contextlib.contextmanager
    def _cache(self, fn: BenchFunction) -> Iterator[str | None]:
        if not fn.fresh_cache:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="lambdavision-bench-cache-") as tmp:
            yield tmp

    def cold_start(self, fn: BenchFunction, event: Mapping[str, Any]) -> ColdRun:
        """A new environment and its first request."""
        log = io.StringIO()
        with self._cache(fn) as cache_dir:
            pool = self._pool(fn, log, cache_dir)
            try:
                pool.start()
                invocation = pool.invoke(dict(event))
            finally:
                pool.close()
        text = log.getvalue()
        timing = _check_answer(fn, invocation, text)
        init_ms = invocation.init_duration_ms or 0.0
        load_ms, parts = parse_load_line(text)
        return ColdRun(
            total_ms=init_ms + invocation.duration_ms,
            init_ms=init_ms,
            first_request_ms=invocation.duration_ms,
            load_ms=load_ms,
            load_parts=parts,
            max_memory_mb=invocation.max_memory_mb,
            timing=timing,
        )

    @contextlib.contextmanager
    def warm(self, fn: BenchFunction, event: Mapping[str, Any], warmups: int = 1) -> Iterator[WarmFunction]:
        """An initialised environment that has already answered `event` `warmups` times."""
        log = io.StringIO()
        with self._cache(fn) as cache_dir:
            pool = self._pool(fn, log, cache_dir)
            try:
                pool.start(warm=True)
                warm = WarmFunction(fn, pool, log)
                for _ in range(max(1, warmups)):
                    # The first requests after init pay one-off costs (allocations, TorchScript's
                    # profiling runs): not warm samples.
                    warm.request(event)
                yield warm
            finally:
                pool.close()


class WarmFunction:
    def __init__(self, fn: BenchFunction, pool: FunctionPool, log: io.StringIO) -> None:
        self.fn = fn
        self._pool = pool
        self._log = log
        self.peak_memory_mb = 0

    def request(self, event: Mapping[str, Any]) -> WarmRun:
        invocation = self._pool.invoke(dict(event))
        timing = _check_answer(self.fn, invocation, self._log.getvalue())
        self._log.seek(0)
        self._log.truncate()
        self.peak_memory_mb = max(self.peak_memory_mb, invocation.max_memory_mb)
        return WarmRun(invocation.duration_ms, timing, invocation.max_memory_mb)


_FLOOR_WORKER = """
import sys, time
from lambdavision.loader import load_classifier
classifier = load_classifier(sys.argv[1], environ={"LAMBDAVISION_THREADS": sys.argv[2]})
with open(sys.argv[3], "rb") as image:
    batch = classifier.preprocess(image.read())[None]
for _ in range(3):  # first runs allocate and tune: not samples
    classifier.backend.run(batch)
print("ready", flush=True)
for _ in sys.stdin:
    classifier.backend.run(batch)  # wakes the threads after the pause, as the request's first image did
    started = time.perf_counter()
    classifier.backend.run(batch)
    print((time.perf_counter() - started) * 1000, flush=True)
"""


class Floor:
    """ONNX Runtime's `run` alone on an already preprocessed input: the part of a warm request no
    serving code can remove. Sample it between warm requests, so both see the same machine load.

    It runs in a worker process of its own, like the function: measured inside the benchmark's
    process (which imported torch to export the models) the same `run` took ~1.6x as long.
    """

    def __init__(
        self, model: str | os.PathLike[str], image: bytes, threads: int, preexec: Callable[[], None] | None = None
    ) -> None:
        """`preexec` runs in the worker before exec: joining the function's CPU share, say."""
        import subprocess
        import weakref

        fd, image_path = tempfile.mkstemp(suffix=".img")
        with os.fdopen(fd, "wb") as out:
            out.write(image)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _FLOOR_WORKER, os.fspath(model), str(threads), image_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )
        weakref.finalize(self, self._proc.kill)
        weakref.finalize(self, os.unlink, image_path)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise LambdaVisionError(f"the floor worker could not load {model}")
        self.samples: list[float] = []

    def sample(self) -> float:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("\n")
        self._proc.stdin.flush()
        elapsed = float(self._proc.stdout.readline())
        self.samples.append(elapsed)
        return elapsed

    def stats(self) -> Stats:
        return Stats.of(self.samples)

    def close(self) -> None:
        """Stop the worker now (its samples stay)."""
        self._proc.kill()
        self._proc.wait()


def onnx_floor(model: str | os.PathLike[str], image: bytes, threads: int, runs: int) -> Stats:
    """The floor from `runs` back-to-back samples."""
    floor = Floor(model, image, threads)
    for _ in range(max(1, runs)):
        floor.sample()
    return floor.stats()


def threads_for_memory(memory_mb: int) -> int:
    """The intra-op threads the handler picks at this memory size on this machine."""
    from lambdavision.backends import threads_for

    return threads_for({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)}) or (os.cpu_count() or 1)


# --- `lambdavision bench`: one model, several memory sizes ------------------------------------


@dataclass
class MemoryResult:
    memory_mb: int
    threads: int
    cold: Stats | None = None
    cold_init: Stats | None = None
    cold_first_request: Stats | None = None
    model_load: Stats | None = None
    warm: Stats | None = None
    fetch: Stats | None = None
    decode: Stats | None = None
    inference: Stats | None = None
    peak_memory_mb: int | None = None
    cost_warm: Cost | None = None
    cost_cold: Cost | None = None
    error: str | None = None
    source: str = "bundled"  # or "s3"
    cpu_share: str = ""  # the share each environment was held to, as the REPORT line says it

    def to_dict(self) -> dict[str, Any]:
        def stats(value: Stats | None) -> dict[str, float | int] | None:
            return None if value is None else value.to_dict()

        return {
            "memory_mb": self.memory_mb,
            "source": self.source,
            "cpu_share": self.cpu_share,
            "threads": self.threads,
            "cold_start_ms": stats(self.cold),
            "cold_init_ms": stats(self.cold_init),
            "cold_first_request_ms": stats(self.cold_first_request),
            "model_load_ms": stats(self.model_load),
            "warm_ms": stats(self.warm),
            "warm_fetch_ms": stats(self.fetch),
            "warm_decode_ms": stats(self.decode),
            "warm_inference_ms": stats(self.inference),
            "peak_memory_mb": self.peak_memory_mb,
            "usd_per_million_warm": None if self.cost_warm is None else self.cost_warm.to_dict(),
            "usd_per_million_with_cold": None if self.cost_cold is None else self.cost_cold.to_dict(),
            "error": self.error,
        }


@dataclass
class BenchReport:
    model: str
    image: str
    image_size: tuple[int, int]
    architecture: str
    cold_runs: int
    warm_requests: int
    machine: Machine
    prices: Prices
    results: list[MemoryResult]
    caveat: str
    emulation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "image": self.image,
            "image_size": list(self.image_size),
            "architecture": self.architecture,
            "cold_runs": self.cold_runs,
            "warm_requests": self.warm_requests,
            "cold_fraction": COLD_FRACTION,
            "machine": self.machine.to_dict(),
            "prices": {
                "region": self.prices.region,
                "usd_per_gb_second": self.prices.gb_second_price(self.architecture),
                "usd_per_request": self.prices.per_request,
                "read_on": self.prices.lambda_read_on,
            },
            "results": [r.to_dict() for r in self.results],
            "emulation": self.emulation,
            "caveat": self.caveat,
        }


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
    from lambdavision.pricing import check_memory

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


__all__ = [
    "COLD_FRACTION",
    "DEFAULT_MEMORY_SIZES",
    "BenchError",
    "BenchFunction",
    "BenchReport",
    "ColdRun",
    "Floor",
    "ImageServer",
    "Machine",
    "MemoryResult",
    "Runner",
    "Stats",
    "WarmFunction",
    "WarmRun",
    "bench_model",
    "describe_machine",
    "local_caveat",
    "onnx_floor",
    "parse_load_line",
    "parse_server_timing",
    "threads_for_memory",
    "url_event",
]
