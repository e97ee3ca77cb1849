"""Where a warm request's time goes, and a cold start's: pyinstrument over the real handler.

Runs lambdavision's handler in this process (no runtime client, so nothing but our own code and its
libraries is sampled) on a model folder or artifact, with images fetched by URL from a loopback
server as the function would. It prints, per image:

- the handler's own phases (Server-Timing: fetch, decode + preprocess, forward) and the total;
- the forward floor: ONNX Runtime `run` alone on an already preprocessed input, same session;
- pyinstrument's call tree of the warm requests (the frames that take >= 1 % of the time);

and, with --cold, a call tree of loading the model (App.from_env). Text reports go to --out.

As on Lambda, with --cpu-share this process holds itself to the CPU share of --memory (a cgroup
quota, as the function's environments get; needs root), and with --s3 the model is read from moto
through the shaped stand-in (first-byte latency and bandwidth per connection, as compare.py's
Lambda-shaped conditions), so --cold shows where an S3 cold start's time goes.

    .venv/bin/python benchmarks/profile_warm.py --model benchmarks/.cache/functions/bundled/model
    .venv/bin/python benchmarks/profile_warm.py --model M --image a.jpg --requests 50 --cold
    .venv/bin/python benchmarks/profile_warm.py --model M.tar.gz --memory 2048 --cpu-share --s3 --cold
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from pyinstrument import Profiler

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from lambdavision.bench.images import ImageServer  # noqa: E402
from lambdavision.bench.s3 import preload, s3_env, shaped_s3, upload  # noqa: E402
from lambdavision.bench.timing import parse_server_timing  # noqa: E402
from lambdavision.local.cpu_quota import CpuLimiter  # noqa: E402
from lambdavision.local.shaping import DEFAULT_SHAPING  # noqa: E402
from lambdavision.runtime.app import App  # noqa: E402
from lambdavision.runtime.settings import Settings  # noqa: E402

DEFAULT_IMAGES = [
    REPO / "benchmarks/.cache/images/photo-640x480.jpg",
    REPO / "benchmarks/.cache/images/photo-4032x3024.jpg",
]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "profiles"


def function_env(model: Path | str, memory_mb: int, log_level: str = "WARNING") -> dict[str, str]:
    return {
        **os.environ,
        "MODEL_URI": str(model),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1",  # the images come from a loopback server
        "LOG_LEVEL": log_level,
    }


def load_app(env: dict[str, str], cold: bool, out: Path) -> App:
    profiler = Profiler(interval=0.0005) if cold else None
    if profiler:
        profiler.start()
    with contextlib.redirect_stdout(io.StringIO()):
        app = App.from_env(env)
    if profiler:
        profiler.stop()
        write_report(out / "cold-start.txt", profiler.output_text(unicode=True, show_all=False))
    return app


def floor_ms(app: App, runs: int) -> float:
    size = app.classifier.preprocessing.input_size
    batch = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    app.classifier.backend.run(batch)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        app.classifier.backend.run(batch)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def warm_requests(
    app: App, url: str, requests: int, log: TextIO | None = None
) -> tuple[list[float], list[dict[str, float]], Profiler]:
    event = {"url": url}
    with contextlib.redirect_stdout(io.StringIO()):
        for _ in range(3):
            app(event)  # warm: first-touch page faults and arena growth are not what this measures
    profiler = Profiler(interval=0.0005)
    totals: list[float] = []
    phases: list[dict[str, float]] = []
    sink = io.StringIO()
    profiler.start()
    for _ in range(requests):
        with contextlib.redirect_stdout(sink):
            started = time.perf_counter()
            answer = app(event)
            totals.append((time.perf_counter() - started) * 1000)
        if answer["statusCode"] != 200:
            raise SystemExit(f"the function answered {answer['statusCode']}: {answer['body']}")
        phases.append(parse_server_timing(answer["headers"]["Server-Timing"]))
        if log is not None:
            log.write(sink.getvalue())  # the function's own log lines of this request
        sink.seek(0)
        sink.truncate()
    profiler.stop()
    return totals, phases, profiler


def write_report(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"  call tree: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, required=True, help="a serving folder or a model.tar.gz")
    parser.add_argument("--image", type=Path, action="append", help="JPEG(s) to fetch (default: the benchmark's two)")
    parser.add_argument("--requests", type=int, default=100, help="warm requests profiled per image (default 100)")
    parser.add_argument("--memory", type=int, default=3008, help="the function's memory, MB: sets the threads")
    parser.add_argument("--cold", action="store_true", help="also profile loading the model")
    parser.add_argument("--cpu-share", action="store_true", help="hold this process to --memory's CPU share")
    parser.add_argument(
        "--s3", action="store_true", help="read the model (an artifact) from S3 behind the shaped stand-in"
    )
    parser.add_argument("--smaps", action="store_true", help="also write where the resident memory is, after")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the call trees go")
    parser.add_argument("--log", type=Path, help="also write the function's own log lines of the warm requests here")
    args = parser.parse_args(argv)
    images = args.image or DEFAULT_IMAGES
    for image in images:
        if not image.is_file():
            parser.error(f"no image at {image} (run benchmarks/compare.py once to generate the defaults)")
    if args.requests < 1:
        parser.error("--requests must be at least 1")

    if args.s3 and not args.model.is_file():
        parser.error("--s3 needs --model to be an artifact (model.tar.gz)")
    with contextlib.ExitStack() as stack:
        env = function_env(args.model, args.memory, "INFO" if args.log else "WARNING")
        if args.s3:
            moto, stand_in = stack.enter_context(shaped_s3(DEFAULT_SHAPING))
            upload(moto, {"profile/model.tar.gz": args.model})
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="profile-")))
            preload(stand_in, ["profile/model.tar.gz"], scratch)
            env |= s3_env(stand_in.url, scratch) | {"LAMBDAVISION_CACHE_DIR": str(scratch / "cache")}
            env["MODEL_URI"] = "s3://lambdavision-bench/profile/model.tar.gz"
            print(f"model on S3: moto behind the stand-in, {DEFAULT_SHAPING.describe()}")
        if args.cpu_share:
            limiter = stack.enter_context(contextlib.closing(CpuLimiter(warn=print)))
            group = limiter.group(args.memory)
            if group is not None:
                # This thread only (and the threads it starts: the function's), where cgroup v1 allows
                # it: the S3 stand-in's threads serve from outside the quota, as S3 does.
                by_thread = (group.path / "tasks").exists()
                me = threading.get_native_id() if by_thread else os.getpid()
                (group.path / ("tasks" if by_thread else "cgroup.procs")).write_text(str(me))
                stack.callback(group.remove)
                stack.callback(lambda: _leave(group.path, by_thread, me))
                print(f"held to {group.share.describe()} (MemorySize {args.memory} MB / 1769)")
        return profile(args, env, images)


def _leave(path: Path, by_thread: bool, me: int) -> None:
    """Back to the parent group, so the group can be removed."""
    (path.parent.parent / ("tasks" if by_thread else "cgroup.procs")).write_text(str(me))


def profile_download(env: dict[str, str], out: Path) -> None:
    """The S3 read alone, in this thread (the function runs it in a thread of its own, beside the imports):
    its call tree, and its CPU time against its wall time, which says whether the share or the network bounds it."""
    from lambdavision.runtime import model_source

    fresh = {**env, "LAMBDAVISION_CACHE_DIR": tempfile.mkdtemp(prefix="profile-cache-")}
    profiler = Profiler(interval=0.0005)
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.start()
    model_source.open_s3_artifact(fresh["MODEL_URI"], Settings.from_env(fresh))
    profiler.stop()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"S3 read alone: {wall * 1000:.0f} ms, {cpu * 1000:.0f} ms of CPU (every thread of this process)")
    write_report(out / "s3-download.txt", profiler.output_text(unicode=True, show_all=False))


def memory_map(out: Path) -> None:
    """Where this process's resident memory is, after the warm requests: /proc/self/smaps summed by file
    (anonymous memory by kind), largest first, with VmHWM, the peak the REPORT line reports."""
    sizes: dict[str, int] = {}
    name = "?"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):
            name = fields[5] if len(fields) > 5 else "[anonymous: Python heap, ONNX Runtime arena, buffers]"
            name = Path(name).name if name.startswith("/") else name
        elif fields and fields[0] == "Rss:":
            sizes[name] = sizes.get(name, 0) + int(fields[1])
    status = {
        k: v.strip() for k, _, v in (x.partition(":") for x in Path("/proc/self/status").read_text().splitlines())
    }
    lines = [f"VmHWM (peak) {status['VmHWM']}, VmRSS (now) {status['VmRSS']}", "resident KiB by mapping:"]
    lines += [f"{kib:>9,}  {what}" for what, kib in sorted(sizes.items(), key=lambda kv: -kv[1]) if kib >= 512]
    write_report(out / "peak-memory.txt", "\n".join(lines) + "\n")


def profile(args: argparse.Namespace, env: dict[str, str], images: Sequence[Path]) -> int:
    if args.s3 and args.cold:
        profile_download(env, args.out)
    app = load_app(env, args.cold, args.out)
    served = {image.name: image.read_bytes() for image in images}
    with ImageServer(served) as web:
        for name in served:
            with contextlib.ExitStack() as logging:
                log = logging.enter_context(args.log.open("a")) if args.log else None
                totals, phases, profiler = warm_requests(app, web.url_for(name), args.requests, log)
            floor = floor_ms(app, 50)
            summary: dict[str, Any] = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
            total = statistics.median(totals)
            print(f"{name}: {args.requests} warm requests in process, medians")
            print(
                f"  total {total:.1f} ms = fetch {summary['fetch']:.1f} + decode {summary['decode']:.1f} + "
                f"forward {summary['inference']:.1f} + the rest {total - sum(summary.values()):.1f}"
            )
            print(
                f"  floor (run alone) {floor:.1f} ms; "
                f"overhead above it {total - floor:.1f} ms = {(total - floor) / floor:.0%}"
            )
            write_report(
                args.out / f"warm-{Path(name).stem}.txt",
                profiler.output_text(unicode=True, show_all=False, timeline=False),
            )
    if args.smaps:
        memory_map(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
