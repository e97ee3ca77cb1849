"""What `lambdavision local start-api` costs on top of the handler itself (a benchmark, not a test).

For the demo model it measures, and prints as a markdown table:
- median and p95 latency of `POST /invocations` through start-api (a real HTTP server, gateway,
  Runtime API and awslambdaric process) vs a direct in-process call of
  `lambdavision.handler.lambda_handler` on the same event, and the difference per request;
- requests per second with 1 and 2 environments;
- the time from launching `lambdavision local start-api` to its first answer (a cold environment).

The request body is `{"image": "<base64 JPEG>"}`, so no image server is needed.

    .venv/bin/python benchmarks/local_api.py [--model demo/model.tar.gz] [--image demo/samples/X.jpg]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
LAMBDAVISION = Path(sys.executable).with_name("lambdavision")
READY = re.compile(r"Running on http://[^:/]+:(\d+)/")
TARGET_OVERHEAD_MS = 3.0

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  PyTorchFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: lambdavision.handler.lambda_handler
      Runtime: python3.12
      MemorySize: 2048
      Timeout: 29
      Environment:
        Variables:
          MODEL_URI: {model_uri}
{extra_variables}      Events:
        Classify:
          Type: Api
          Properties:
            Path: /invocations
            Method: post
"""


class FakeContext:
    """The bits of Lambda's context object the handler reads."""

    aws_request_id = "benchmark"
    function_name = "PyTorchFunction"
    memory_limit_in_mb = 2048

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def write_app(folder: Path, model: Path, threads: int | None) -> Path:
    (folder / "code").mkdir()
    template = folder / "template.yaml"
    extra = f"          LAMBDAVISION_THREADS: '{threads}'\n" if threads else ""
    template.write_text(TEMPLATE.format(model_uri=json.dumps(str(model.resolve())), extra_variables=extra))
    return template


# ---- the direct in-process call ----


def direct_caller(model: Path, body: bytes) -> Callable[[], int]:
    """Load the handler in this process; return a call of it on the event start-api would send."""
    os.environ["MODEL_URI"] = str(model.resolve())
    from lambdavision.core.event_builders import invocation_event
    from lambdavision.handler import lambda_handler

    event = invocation_event(body, binary=False, headers=[("Content-Length", str(len(body)))])
    context = FakeContext()
    # The handler's logs go to a file here as they go to a pipe in an environment: both pay a write.
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark

    def call() -> int:
        with redirect_stdout(sink):
            return int(lambda_handler(event, context)["statusCode"])

    return call


# ---- through start-api ----


def check(status: int, what: str) -> None:
    if status != 200:
        raise SystemExit(f"{what} answered {status}: is the demo model built (make demo)?")


class Server:
    def __init__(self, process: subprocess.Popen[str], port: int, launched: float) -> None:
        self.process, self.port, self.launched = process, port, launched


@contextmanager
def start_api(template: Path, *options: str) -> Iterator[Server]:
    """`lambdavision local start-api` on a free port; its log goes to a file, not the terminal."""
    with tempfile.TemporaryFile("w+") as log:
        launched = time.perf_counter()
        process = subprocess.Popen(
            [str(LAMBDAVISION), "local", "start-api", "--use-venv", "-t", str(template), "--port", "0", *options],
            cwd=template.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield Server(process, wait_ready(process, log), launched)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[str], log: IO[str]) -> int:
    """The port from the `Running on` line; then the log keeps draining so the pipe never fills."""
    assert process.stderr is not None
    stream = process.stderr
    for line in stream:
        log.write(line)
        match = READY.search(line)
        if match:
            threading.Thread(target=lambda: [log.write(rest) for rest in stream], daemon=True).start()
            return int(match.group(1))
    process.wait()
    log.seek(0)
    raise SystemExit(f"start-api did not start:\n{log.read()}")


def post(connection: http.client.HTTPConnection, body: bytes) -> int:
    connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def first_answer_seconds(server: Server, body: bytes) -> float:
    """Launch → first 200 answer (the environment starts on this first request)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        check(post(connection, body), "start-api")
        return time.perf_counter() - server.launched
    finally:
        connection.close()


def paired_latencies(
    server: Server, direct: Callable[[], int], body: bytes, requests: int, warmup: int, block: int = 10
) -> tuple[list[float], list[float]]:
    """Direct calls and HTTP requests in alternating blocks, so both see the same (shared, noisy)
    machine; blocks rather than single calls, so one process's idle-spinning ONNX Runtime threads
    do not slow the other's next call."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)

    def via_api() -> int:
        return post(connection, body)

    try:
        for _ in range(warmup):
            check(direct(), "direct call")
            check(via_api(), "start-api")
        series: dict[Callable[[], int], list[float]] = {direct: [], via_api: []}
        while len(series[via_api]) < requests:
            for call, latencies in series.items():
                for _ in range(min(block, requests - len(latencies))):
                    started = time.perf_counter()
                    status = call()
                    latencies.append((time.perf_counter() - started) * 1000)
                    check(status, "start-api" if call is via_api else "direct call")
        return series[direct], series[via_api]
    finally:
        connection.close()


def requests_per_second(server: Server, body: bytes, requests: int, clients: int) -> float:
    def client(count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        try:
            for _ in range(count):
                check(post(connection, body), "start-api")
        finally:
            connection.close()

    # Warm every environment first, so this measures serving, not starting.
    with ThreadPoolExecutor(max_workers=clients) as executor:
        list(executor.map(client, [2] * clients))
    shares = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as executor:
        list(executor.map(client, shares))
    return requests / (time.perf_counter() - started)


# ---- report ----


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def step(label: str, action: Callable[[], Any]) -> Any:
    print(f"... {label}", file=sys.stderr, flush=True)
    return action()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "demo" / "model.tar.gz")
    parser.add_argument("--image", type=Path, help="a JPEG (default: the first of demo/samples/)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per latency series")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rps-requests", type=int, default=200, help="requests per throughput run")
    parser.add_argument(
        "--threads",
        type=int,
        help="ONNX Runtime threads per environment (LAMBDAVISION_THREADS; default: the vCPUs of MemorySize)",
    )
    args = parser.parse_args()

    image = args.image or next(iter(sorted((ROOT / "demo" / "samples").glob("*.jp*g"))), None)
    if not args.model.is_file() or image is None:
        raise SystemExit("no demo model or sample image: run `make demo` first (or pass --model and --image)")
    body = json.dumps({"image": base64.b64encode(image.read_bytes()).decode()}).encode()

    with tempfile.TemporaryDirectory(prefix="lambdavision-bench-") as folder:
        template = write_app(Path(folder), args.model, args.threads)
        if args.threads:
            os.environ["LAMBDAVISION_THREADS"] = str(args.threads)
        with start_api(template, "--concurrency", "1") as server:
            startup = step("start-api launch -> first answer", lambda: first_answer_seconds(server, body))
            direct_call = step("loading the handler in-process", lambda: direct_caller(args.model, body))
            direct, api = step(
                "latency: direct calls and start-api requests in alternating blocks",
                lambda: paired_latencies(server, direct_call, body, args.requests, args.warmup),
            )
        throughput = {}
        for environments in (1, 2):
            with start_api(template, "--concurrency", str(environments), "--warm") as server:
                throughput[environments] = step(
                    f"throughput with {environments} environment(s)",
                    lambda server=server, n=environments: requests_per_second(server, body, args.rps_requests, 2 * n),
                )

    api_median, api_p95 = statistics.median(api), percentile(api, 0.95)
    direct_median, direct_p95 = statistics.median(direct), percentile(direct, 0.95)
    overhead = api_median - direct_median
    print(
        f"lambdavision local start-api benchmark: {args.model.name}, {image.name} "
        f"({image.stat().st_size / 1024:.0f} KiB, sent as base64 JSON), {args.requests} requests per series, "
        f"ONNX Runtime threads per environment: {args.threads or 'default'}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n"
    )
    print(
        table(
            ("", "median (ms)", "p95 (ms)"),
            [
                ("direct call of `lambda_handler`", f"{direct_median:.2f}", f"{direct_p95:.2f}"),
                ("`POST /invocations` through start-api", f"{api_median:.2f}", f"{api_p95:.2f}"),
                (
                    f"difference per request (target ≤ {TARGET_OVERHEAD_MS:g} ms)",
                    f"{overhead:.2f} {'✓' if overhead <= TARGET_OVERHEAD_MS else '✗'}",
                    f"{api_p95 - direct_p95:.2f}",
                ),
            ],
        )
    )
    print()
    print(
        table(
            ("start-api", "value"),
            [
                ("requests/s, 1 environment (2 clients)", f"{throughput[1]:.1f}"),
                ("requests/s, 2 environments (4 clients)", f"{throughput[2]:.1f}"),
                ("launch → first answer (cold environment)", f"{startup:.2f} s"),
            ],
        )
    )


if __name__ == "__main__":
    main()
