"""Soak `lambdavision local start-api` under a bounded mixed load (a benchmark, not a test).

Three processes, all on 127.0.0.1:
- the server: `lambdavision local start-api --concurrency 2 --warm` on the demo model (an app folder
  from `lambdavision init` and an env.json pointing MODEL_URI at demo/model.tar.gz), started as a
  subprocess in its own process group so its descriptors, threads and children can be measured;
- the load generator: a second process (multiprocessing, spawn) with --concurrency threads, each on
  a keep-alive connection, sending a fixed, shuffled mix of requests until --requests are done or
  --duration seconds have passed;
- this one: a loopback image server (samples, a text file, a slow route) and a sampler that reads the
  RSS, descriptors and threads of the server and of each environment process every --interval s.

Request kinds: good ones (expected 200) are an image URL, an inline base64 image, a raw image body and
a slow upstream (under the fetch timeout); bad ones (expected 4xx) are malformed JSON, a URL of a text
file, a truncated image and an ftp:// URL.

It reports requests by status, the error rate of the good ones (target 0), p50/p95/p99 latency overall
and per kind, each environment's RSS over time (target: the peak in the last thousand requests within
5 % of the peak in the first thousand), the server's descriptors and threads before and after the load
(no leak), and whether any child process outlived the server after SIGTERM. Outputs in --results:
soak.json, soak.png (RSS and latency over time), soak.md (the README snippet, also printed).

    .venv/bin/python benchmarks/soak.py                 # 5,000 requests, concurrency 8 (~40 s on 2 cores)
    .venv/bin/python benchmarks/soak.py --quick --json /tmp/soak.json --results /tmp/soak
"""

from __future__ import annotations

import argparse
import base64
import bisect
import http.client
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psutil

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "demo" / "model.tar.gz"
SAMPLES = ROOT / "demo" / "samples"
RESULTS = ROOT / "benchmarks" / "results"
LAMBDAVISION = Path(sys.executable).with_name("lambdavision")
FUNCTION_ID = "PyTorchFunction"

RSS_GROWTH_TARGET_PCT = 5.0
MEMORY_WINDOW = 1000  # requests at the start and at the end whose RSS peaks are compared (a fifth at most)
REQUEST_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 10.0  # after the load, how long the server gets to close idle connections

# Expected answer of each kind: "200" or "4xx". Weights are shares of the request count.
KINDS: dict[str, tuple[str, float]] = {
    "url": ("200", 0.33),
    "inline": ("200", 0.22),
    "raw": ("200", 0.20),
    "slow_url": ("200", 0.02),
    "bad_json": ("4xx", 0.06),
    "text_url": ("4xx", 0.06),
    "truncated": ("4xx", 0.06),
    "ftp_url": ("4xx", 0.05),
}


# ---- the loopback image server (runs in this process) ----


class _ImageHandler(BaseHTTPRequestHandler):
    """GET /img/NAME (a demo sample), /notes.txt (text), /slow?seconds=S&img=NAME (a sample, late)."""

    server: _ImageServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if parts.path == "/slow":
            time.sleep(min(float(query.get("seconds", "1")), 5.0))
            name = query.get("img", "")
        elif parts.path == "/notes.txt":
            self._answer(200, b"not an image, just some notes\n" * 20, "text/plain")
            return
        else:
            name = parts.path.removeprefix("/img/")
        body = self.server.images.get(name)
        if body is None:
            self._answer(404, b"not found\n", "text/plain")
        else:
            self._answer(200, body, "image/png" if name.endswith(".png") else "image/jpeg")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with suppress(OSError):
            self.wfile.write(body)


class _ImageServer(ThreadingHTTPServer):
    daemon_threads = True
    images: dict[str, bytes]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up early is not news here


@contextmanager
def image_server(images: dict[str, bytes]) -> Iterator[str]:
    server = _ImageServer(("127.0.0.1", 0), _ImageHandler)
    server.images = images
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---- the plan and the load generator (runs in a second process) ----


@dataclass(frozen=True)
class LoadConfig:
    port: int
    image_base: str
    samples: dict[str, str]  # name -> path
    plan: list[tuple[str, str]]  # (kind, sample name), in sending order
    concurrency: int
    duration_s: float
    slow_seconds: float
    results_path: str


def build_plan(requests: int, names: list[str], seed: int) -> list[tuple[str, str]]:
    """Exact shares of each kind (at least one each), shuffled with a fixed seed."""
    rng = random.Random(seed)
    counts = {kind: max(1, round(weight * requests)) for kind, (_, weight) in KINDS.items()}
    counts["url"] += requests - sum(counts.values())  # rounding slack goes to the commonest kind
    plan = [(kind, rng.choice(names)) for kind, count in counts.items() for _ in range(count)]
    rng.shuffle(plan)
    return plan


def _request_for(kind: str, name: str, config: LoadConfig, images: dict[str, bytes]) -> tuple[bytes, str]:
    """(body, Content-Type) of one request of `kind` about sample `name`."""
    image = images[name]
    ctype = "image/png" if name.endswith(".png") else "image/jpeg"
    if kind == "url":
        return json.dumps({"url": f"{config.image_base}/img/{name}"}).encode(), "application/json"
    if kind == "inline":
        return json.dumps({"image": base64.b64encode(image).decode()}).encode(), "application/json"
    if kind == "raw":
        return image, ctype
    if kind == "slow_url":
        url = f"{config.image_base}/slow?seconds={config.slow_seconds}&img={name}"
        return json.dumps({"url": url}).encode(), "application/json"
    if kind == "bad_json":
        return b'{"url": "' + config.image_base.encode() + b"/img/" + name.encode(), "application/json"
    if kind == "text_url":
        return json.dumps({"url": f"{config.image_base}/notes.txt"}).encode(), "application/json"
    if kind == "truncated":
        return image[: len(image) * 2 // 5], ctype
    if kind == "ftp_url":
        return json.dumps({"url": f"ftp://127.0.0.1/{name}"}).encode(), "application/json"
    raise ValueError(f"unknown request kind {kind}")


def run_load(config: LoadConfig) -> None:
    """Send the plan with `concurrency` threads; one JSON line per request to `results_path`."""
    images = {name: Path(path).read_bytes() for name, path in config.samples.items()}
    bodies = {(kind, name): _request_for(kind, name, config, images) for kind, name in set(config.plan)}
    next_index = iter(range(len(config.plan)))
    lock = threading.Lock()
    deadline = time.monotonic() + config.duration_s
    records: list[dict[str, Any]] = []

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", config.port, timeout=REQUEST_TIMEOUT_S)
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                kind, name = config.plan[index]
                body, ctype = bodies[(kind, name)]
                record: dict[str, Any] = {"i": index, "kind": kind, "image": name, "start": time.time()}
                started = time.perf_counter()
                try:
                    connection.request("POST", "/invocations", body=body, headers={"Content-Type": ctype})
                    response = connection.getresponse()
                    answer = response.read()
                    record["status"] = response.status
                    if response.status == 200:
                        record["class"] = json.loads(answer).get("class")
                    else:
                        record["error"] = json.loads(answer).get("error") if answer.startswith(b"{") else None
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    record["status"] = 0
                    record["error"] = f"{type(exc).__name__}: {exc}"
                    connection.close()  # http.client opens a fresh one on the next request
                record["latency_ms"] = (time.perf_counter() - started) * 1000
                record["end"] = time.time()
                with lock:
                    records.append(record)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, name=f"load-{n}") for n in range(config.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(config.results_path, "w") as out:
        for record in sorted(records, key=lambda r: r["end"]):
            out.write(json.dumps(record) + "\n")


# ---- the server under test and the sampler ----


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_app(folder: Path) -> Path:
    from lambdavision.aws.appdir import AppOptions, app_files, write_app_dir

    write_app_dir(folder, app_files(AppOptions()), force=True)
    env = {FUNCTION_ID: {"MODEL_URI": str(MODEL), "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1"}}
    (folder / "env.json").write_text(json.dumps(env))
    return folder


def wait_ready(process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if "Running on http://" in log_path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"start-api did not start (exit {process.poll()}):\n{tail(log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def process_figures(process: psutil.Process) -> dict[str, int]:
    with process.oneshot():
        return {"rss": process.memory_info().rss, "fds": process.num_fds(), "threads": process.num_threads()}


def environment_processes(server: psutil.Process) -> list[psutil.Process]:
    with suppress(psutil.Error):
        return [p for p in server.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    return []


@dataclass
class Sampler:
    """Reads the server's and each environment's figures every `interval` seconds, in a thread."""

    server: psutil.Process
    interval: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    environments: dict[int, psutil.Process] = field(default_factory=dict)  # every one seen, by pid
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"t": time.time(), "server": None, "env": {}}
        with suppress(psutil.Error):
            entry["server"] = process_figures(self.server)
        for child in environment_processes(self.server):
            with suppress(psutil.Error):
                entry["env"][str(child.pid)] = process_figures(child)
                self.environments.setdefault(child.pid, child)
        self.samples.append(entry)
        return entry

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def settle(server: psutil.Process, baseline: dict[str, int]) -> dict[str, int]:
    """The server's figures once its connection threads are gone (or SETTLE_TIMEOUT_S passed)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    figures = process_figures(server)
    while time.monotonic() < deadline and (
        figures["threads"] > baseline["threads"] or figures["fds"] > baseline["fds"]
    ):
        time.sleep(0.2)
        figures = process_figures(server)
    return figures


def open_files_of(process: psutil.Process) -> list[str]:
    """What each descriptor points at (for a leak report): readlink of /proc/PID/fd/*."""
    targets = []
    with suppress(OSError):
        for fd in sorted(os.listdir(f"/proc/{process.pid}/fd"), key=int):
            with suppress(OSError):
                targets.append(f"{fd} -> {os.readlink(f'/proc/{process.pid}/fd/{fd}')}")
    return targets


def stop_server(process: subprocess.Popen[bytes], server: psutil.Process) -> dict[str, Any]:
    """SIGTERM the server; then, which of its descendants (taken just before) are still alive."""
    descendants = []
    with suppress(psutil.Error):
        descendants = server.children(recursive=True)
    before = [{"pid": p.pid, "cmdline": " ".join(p.cmdline()[:4])} for p in descendants if _alive(p)]
    sent = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        exit_code: int | None = process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        exit_code = None
    stop_s = time.perf_counter() - sent
    left = [{"pid": p.pid, "status": _status(p)} for p in descendants if _alive(p)]
    return {
        "sigterm_to_exit_s": round(stop_s, 3),
        "exit_code": exit_code,
        "stopped_in_time": exit_code is not None,
        "descendants_before": before,
        "left_alive": left,
    }


def _alive(process: psutil.Process) -> bool:
    """Running, and the same process (psutil checks the creation time against pid reuse)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _status(process: psutil.Process) -> str:
    try:
        return str(process.status())
    except psutil.Error:
        return "gone"


def kill_everything(process: subprocess.Popen[bytes], children: list[psutil.Process]) -> None:
    """Last resort, always run: the server's process group, then any environment still alive
    (they run in sessions of their own; psutil refuses to signal a pid that was reused)."""
    if process.poll() is None:
        with suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    for child in children:
        if _alive(child):
            with suppress(psutil.Error):
                child.kill()


# ---- analysis ----


def problems_in_log(path: Path) -> dict[str, Any]:
    """What start-api's log says went wrong: REPORT lines with an error, 502 reasons, tracebacks."""
    report_errors: Counter[str] = Counter()
    gateway_errors: Counter[str] = Counter()
    examples: list[str] = []
    tracebacks = 0
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("REPORT") and "Status:" in line:
            kind = line.partition("Error Type:")[2].strip() or line.partition("Status:")[2].split()[0]
            report_errors[kind] += 1
        elif "answering 502" in line or "answering 504" in line:
            gateway_errors[line.split(": answering")[0][-160:]] += 1
        elif "Traceback (most recent call last)" in line:
            tracebacks += 1
        else:
            continue
        if len(examples) < 20:
            examples.append(line[:300])
    return {
        "report_errors": dict(report_errors),
        "gateway_errors": dict(gateway_errors),
        "tracebacks": tracebacks,
        "examples": examples,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency_summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.50), 2),
        "p95": round(percentile(values, 0.95), 2),
        "p99": round(percentile(values, 0.99), 2),
        "max": round(max(values), 2) if values else float("nan"),
    }


def status_key(status: int) -> str:
    return "connection error" if status == 0 else str(status)


def is_wrong(expected: str, record: dict[str, Any], classes: dict[str, str]) -> bool:
    status = int(record["status"])
    if expected == "4xx":
        return not 400 <= status < 500
    # A good request must get a class, the same one every time for the same image (no crossed answers).
    return status != 200 or record.get("class") is None or classes.get(record["image"]) != record["class"]


def analyse_requests(records: list[dict[str, Any]]) -> dict[str, Any]:
    # The class each image gets most often is its class; an answer that differs was crossed or wrong.
    votes: dict[str, Counter[str]] = {}
    for record in records:
        if record["status"] == 200 and record.get("class"):
            votes.setdefault(record["image"], Counter())[record["class"]] += 1
    classes = {image: counter.most_common(1)[0][0] for image, counter in votes.items()}
    kinds: dict[str, Any] = {}
    for kind, (expected, _) in KINDS.items():
        mine = [r for r in records if r["kind"] == kind]
        wrong = [r for r in mine if is_wrong(expected, r, classes)]
        kinds[kind] = {
            "expected": expected,
            "count": len(mine),
            "statuses": dict(sorted(Counter(status_key(r["status"]) for r in mine).items())),
            "wrong": len(wrong),
            "wrong_examples": sorted({f"{status_key(r['status'])}: {r.get('error')}" for r in wrong})[:5],
            "latency_ms": latency_summary([r["latency_ms"] for r in mine]),
        }
    good = [r for r in records if KINDS[r["kind"]][0] == "200"]
    bad = [r for r in records if KINDS[r["kind"]][0] == "4xx"]
    good_errors = sum(kinds[k]["wrong"] for k, (e, _) in KINDS.items() if e == "200")
    bad_wrong = sum(kinds[k]["wrong"] for k, (e, _) in KINDS.items() if e == "4xx")
    return {
        "status_counts": dict(sorted(Counter(status_key(r["status"]) for r in records).items())),
        "kinds": kinds,
        "good": {
            "count": len(good),
            "errors": good_errors,
            "error_rate": good_errors / len(good) if good else float("nan"),
        },
        "bad": {"count": len(bad), "not_4xx": bad_wrong, "rate_4xx": 1 - bad_wrong / len(bad) if bad else float("nan")},
        "classes": classes,
        "latency_ms": latency_summary([r["latency_ms"] for r in records]),
    }


def analyse_memory(samples: list[dict[str, Any]], records: list[dict[str, Any]], window: int) -> dict[str, Any]:
    """Peak RSS of each environment while the first `window` and the last `window` requests ran."""
    ends = sorted(r["end"] for r in records)
    total = len(ends)
    window = min(window, max(1, total // 5))  # a short run compares its first and last fifths
    if not ends:
        return {"window_requests": window, "environments": [], "server": {}, "max_growth_pct": None}
    load_start = min(r["start"] for r in records)
    first_until = ends[min(window, total) - 1]
    last_from = ends[max(total - window, 0)]
    first = [s for s in samples if load_start <= s["t"] <= first_until]
    last = [s for s in samples if last_from <= s["t"] <= ends[-1]]
    # A short run can fall between two samples: then take the nearest sample on each side.
    during = [s for s in samples if load_start <= s["t"]] or samples
    first = first or during[:1]
    last = last or during[-1:]

    def rss_mib(sample: dict[str, Any], pid: str | None) -> float | None:
        figures = sample["server"] if pid is None else sample["env"].get(pid)
        return figures["rss"] / 2**20 if figures else None

    def peak(of: list[dict[str, Any]], pid: str | None) -> float | None:
        values = [v for v in (rss_mib(s, pid) for s in of) if v is not None]
        return max(values) if values else None

    def growth(pid: str | None) -> dict[str, Any]:
        seen = [s["t"] for s in samples if rss_mib(s, pid) is not None]
        head, end = peak(first, pid), peak(last, pid)
        pct = (end / head - 1) * 100 if head and end else None
        return {
            "first_seen_s": _round(seen[0] - load_start if seen else None),
            "last_seen_s": _round(seen[-1] - load_start if seen else None),
            "rss_first_sample_mib": _round(next((v for v in (rss_mib(s, pid) for s in samples) if v), None)),
            "first_window_peak_mib": _round(head),
            "last_window_peak_mib": _round(end),
            "growth_pct": _round(pct),  # None unless the process ran in both windows
        }

    pids = sorted({pid for s in samples for pid in s["env"]}, key=lambda pid: (rss_seen(samples, pid), int(pid)))
    environments = [{"pid": int(pid), **growth(pid)} for pid in pids]
    measured = [e["growth_pct"] for e in environments if e["growth_pct"] is not None]
    return {
        "window_requests": window,
        "target_growth_pct": RSS_GROWTH_TARGET_PCT,
        "environments": environments,
        "server": growth(None),
        "max_growth_pct": max(measured) if measured else None,
    }


def rss_seen(samples: list[dict[str, Any]], pid: str) -> float:
    return float(next(s["t"] for s in samples if pid in s["env"]))


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# ---- report ----


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def mark(ok: bool | None) -> str:
    return "–" if ok is None else "✓" if ok else "✗"


def markdown(result: dict[str, Any]) -> str:
    config, run, good, memory, server, shutdown, targets = (
        result[k] for k in ("config", "run", "good", "memory", "server", "shutdown", "targets")
    )
    intro = (
        f"`benchmarks/soak.py`: `lambdavision local start-api --concurrency {config['environments']} --warm` on the "
        f"demo model, {run['completed']:,} requests from a second process with {config['concurrency']} "
        f"concurrent keep-alive clients in {run['wall_s']:.0f} s ({run['requests_per_s']:.1f} requests/s; "
        f"{config['cpus']} CPUs shared, Python {config['python']}), all on 127.0.0.1. Mix: image URL, inline "
        f"base64, raw image body, a {config['slow_seconds']:g} s slow upstream (expected 200); malformed JSON, "
        "a text file's URL, a truncated image, an ftp:// URL (expected 4xx)."
    )
    kinds = table(
        ("kind", "expected", "requests", "answers", "wrong", "p50 ms", "p95 ms", "p99 ms"),
        [
            (
                kind,
                k["expected"],
                f"{k['count']:,}",
                ", ".join(f"{status}: {n:,}" for status, n in k["statuses"].items()),
                str(k["wrong"]),
                f"{k['latency_ms']['p50']:.1f}",
                f"{k['latency_ms']['p95']:.1f}",
                f"{k['latency_ms']['p99']:.1f}",
            )
            for kind, k in result["kinds"].items()
        ]
        + [
            (
                "**all**",
                "",
                f"{run['completed']:,}",
                ", ".join(f"{status}: {n:,}" for status, n in result["status_counts"].items()),
                str(good["errors"] + result["bad"]["not_4xx"]),
                f"{result['latency_ms']['p50']:.1f}",
                f"{result['latency_ms']['p95']:.1f}",
                f"{result['latency_ms']['p99']:.1f}",
            )
        ],
    )
    window = memory["window_requests"]
    rss_rows = [
        (
            f"environment {n} (pid {e['pid']})",
            _mib(e["rss_first_sample_mib"]),
            _mib(e["first_window_peak_mib"]),
            _mib(e["last_window_peak_mib"]),
            _pct(e["growth_pct"]),
        )
        for n, e in enumerate(memory["environments"], 1)
    ]
    s = memory["server"]
    rss_rows.append(
        (
            "server (gateway)",
            _mib(s["rss_first_sample_mib"]),
            _mib(s["first_window_peak_mib"]),
            _mib(s["last_window_peak_mib"]),
            _pct(s["growth_pct"]),
        )
    )
    rss = table(
        ("RSS (MiB)", "first sample", f"peak, first {window:,} requests", f"peak, last {window:,}", "growth"),
        rss_rows,
    )
    checks = table(
        ("target", "measured", ""),
        [
            (
                "error rate of good requests = 0",
                f"{good['errors']} / {good['count']:,} ({good['error_rate']:.2%})",
                mark(targets["good_error_rate_zero"]),
            ),
            (
                "bad inputs answered 4xx (never 5xx)",
                f"{result['bad']['count'] - result['bad']['not_4xx']:,} / {result['bad']['count']:,}",
                mark(targets["bad_inputs_4xx"]),
            ),
            (
                f"environment RSS growth < {RSS_GROWTH_TARGET_PCT:g} % (first vs last {window:,})",
                _pct(memory["max_growth_pct"]) + " (largest)",
                mark(targets["rss_growth_under_target"]),
            ),
            (
                "server file descriptors, before → after",
                f"{server['fds_start']} → {server['fds_end']}",
                mark(targets["no_fd_leak"]),
            ),
            (
                "server threads, before → after",
                f"{server['threads_start']} → {server['threads_end']}",
                mark(targets["no_thread_leak"]),
            ),
            (
                "environment file descriptors / threads, before → after",
                "; ".join(
                    f"{e['fds_start']} → {e['fds_end'] if e['fds_end'] is not None else 'replaced'}"
                    f" / {e['threads_start']} → {e['threads_end'] if e['threads_end'] is not None else 'replaced'}"
                    for e in result["environments"]
                ),
                mark(targets["no_environment_fd_leak"]),
            ),
            (
                "environments replaced during the run (why: start-api's REPORT lines)",
                f"{run['environments_started'] - config['environments']}"
                + "".join(f"; {kind}: {n}" for kind, n in result["server_log"]["report_errors"].items()),
                mark(targets["no_environment_replaced"]),
            ),
            (
                "child processes alive after SIGTERM",
                f"{len(shutdown['left_alive'])} of {len(shutdown['descendants_before'])} "
                f"(server stopped in {shutdown['sigterm_to_exit_s']:.2f} s)",
                mark(targets["no_child_left"]),
            ),
        ],
    )
    chart = "![RSS per environment and latency over the soak](benchmarks/results/soak.png)"
    return f"### Soak under load\n\n{intro}\n\n{kinds}\n\n{rss}\n\n{checks}\n\n{chart}\n"


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f} %"


def chart(result: dict[str, Any], samples: list[dict[str, Any]], records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min([s["t"] for s in samples] + [r["start"] for r in records])
    figure, (memory_axes, latency_axes) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
    for n, environment in enumerate(result["memory"]["environments"], 1):
        pid = str(environment["pid"])
        points = [(s["t"] - t0, s["env"][pid]["rss"] / 2**20) for s in samples if pid in s["env"]]
        memory_axes.plot(*zip(*points, strict=True), label=f"environment {n} (pid {pid})")
    server_points = [(s["t"] - t0, s["server"]["rss"] / 2**20) for s in samples if s["server"]]
    memory_axes.plot(*zip(*server_points, strict=True), label="server (gateway)", linestyle="--", color="grey")
    ends = sorted(r["end"] for r in records)
    window = result["memory"]["window_requests"]
    if ends:
        memory_axes.axvspan(min(r["start"] for r in records) - t0, ends[window - 1] - t0, alpha=0.08, color="C2")
        memory_axes.axvspan(ends[-window] - t0, ends[-1] - t0, alpha=0.08, color="C3")
    memory_axes.set_ylabel("RSS (MiB)")
    memory_axes.set_ylim(bottom=0)
    memory_axes.set_title(f"RSS over time (shaded: first and last {window:,} requests)")
    memory_axes.legend(loc="lower right", fontsize="small")
    for kind in KINDS:
        mine = [r for r in records if r["kind"] == kind]
        if mine:
            latency_axes.scatter(
                [r["end"] - t0 for r in mine], [r["latency_ms"] for r in mine], s=3, alpha=0.4, label=kind
            )
    latency_axes.set_yscale("log")
    latency_axes.set_ylabel("latency (ms)")
    latency_axes.set_xlabel("seconds since start")
    latency_axes.set_title("Latency of each request, by kind")
    latency_axes.legend(loc="upper right", fontsize="x-small", ncol=4, markerscale=3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---- main ----


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, help="requests to send (default 5000; --quick: 150)")
    parser.add_argument("--concurrency", type=int, help="concurrent clients (default 8; --quick: 4)")
    parser.add_argument(
        "--duration", type=float, help="stop sending after this many seconds (default 900; --quick: 60)"
    )
    parser.add_argument("--environments", type=int, default=2, help="start-api --concurrency (default 2)")
    parser.add_argument("--slow-seconds", type=float, default=0.5, help="delay of the slow upstream (default 0.5)")
    parser.add_argument("--interval", type=float, help="sampling interval in s (default 0.5; --quick: 0.2)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a tiny run; writes no results unless --results")
    parser.add_argument(
        "--results", type=Path, help="folder for soak.json, soak.png, soak.md (default benchmarks/results)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file ('-' for stdout)")
    parser.add_argument("--log", type=Path, help="keep start-api's own log (requests, environments) in this file")
    args = parser.parse_args(argv)
    quick = args.quick
    args.requests = args.requests or (150 if quick else 5000)
    args.concurrency = args.concurrency or (4 if quick else 8)
    args.duration = args.duration or (60.0 if quick else 900.0)
    args.interval = args.interval or (0.2 if quick else 0.5)
    if args.results is None and not quick:
        args.results = RESULTS
    if args.requests < 1 or args.concurrency < 1 or args.environments < 1 or args.duration <= 0:
        parser.error("--requests, --concurrency, --environments and --duration must be positive")
    return args


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if not MODEL.is_file():
        raise SystemExit(f"no demo model at {MODEL}: run `make demo` first")
    samples_by_name = {p.name: str(p) for p in sorted(SAMPLES.iterdir()) if p.suffix in (".jpg", ".png")}
    images = {name: Path(path).read_bytes() for name, path in samples_by_name.items()}
    app = write_app(workdir / "app")
    log_path = workdir / "start-api.log"
    port = free_port()
    plan = build_plan(args.requests, sorted(samples_by_name), args.seed)
    with image_server(images) as image_base, open(log_path, "wb") as log:
        progress(f"starting start-api on 127.0.0.1:{port} with {args.environments} warm environments")
        process = subprocess.Popen(
            [
                str(LAMBDAVISION),
                "local",
                "start-api",
                "--use-venv",  # the gateway under load, on this venv's Python (as before builds existed)
                "-n",
                "env.json",
                "--port",
                str(port),
                "--warm",
                "--concurrency",
                str(args.environments),
            ],
            cwd=app,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the finally below can always kill it
        )
        sampler: Sampler | None = None
        try:
            wait_ready(process, log_path)
            server = psutil.Process(process.pid)
            sampler = Sampler(server, args.interval)
            first = sampler.sample()
            start_figures = first["server"]
            start_env = {pid: figures for pid, figures in first["env"].items()}
            start_open_files = open_files_of(server)
            sampler.start()
            config = LoadConfig(
                port=port,
                image_base=image_base,
                samples=samples_by_name,
                plan=plan,
                concurrency=args.concurrency,
                duration_s=args.duration,
                slow_seconds=args.slow_seconds,
                results_path=str(workdir / "requests.jsonl"),
            )
            progress(f"sending {len(plan):,} requests with {args.concurrency} clients (cap {args.duration:g} s)")
            load = multiprocessing.get_context("spawn").Process(target=run_load, args=(config,), name="soak-load")
            load_started = time.time()
            load.start()
            load.join(timeout=args.duration + REQUEST_TIMEOUT_S + 60)
            if load.is_alive():
                load.kill()
                load.join()
                raise SystemExit("the load generator did not finish in time")
            load_wall = time.time() - load_started
            if load.exitcode != 0:
                raise SystemExit(f"the load generator failed (exit {load.exitcode})")
            records = [json.loads(line) for line in Path(config.results_path).read_text().splitlines()]
            progress(f"{len(records):,} requests answered; letting the server settle")
            end_figures = settle(server, start_figures)
            end_open_files = open_files_of(server)
            last = sampler.sample()
            sampler.stop()
            progress("stopping start-api with SIGTERM")
            shutdown = stop_server(process, server)
        finally:
            if sampler is not None:
                sampler.stop()
            kill_everything(process, list(sampler.environments.values()) if sampler else [])
            if args.log is not None:
                shutil.copyfile(log_path, args.log)

    server_problems = problems_in_log(log_path)
    requests = analyse_requests(records)
    memory = analyse_memory(sampler.samples, records, MEMORY_WINDOW)
    server_figures = {
        "pid": process.pid,
        "fds_start": start_figures["fds"],
        "fds_end": end_figures["fds"],
        "threads_start": start_figures["threads"],
        "threads_end": end_figures["threads"],
        "rss_start_mib": round(start_figures["rss"] / 2**20, 2),
        "rss_end_mib": round(end_figures["rss"] / 2**20, 2),
        "fds_peak": max(s["server"]["fds"] for s in sampler.samples if s["server"]),
        "threads_peak": max(s["server"]["threads"] for s in sampler.samples if s["server"]),
        "fds_added": sorted(set(end_open_files) - set(start_open_files)),
    }
    environment_figures = [
        {
            "pid": int(pid),
            "fds_start": figures["fds"],
            "fds_end": last["env"].get(pid, {}).get("fds"),
            "threads_start": figures["threads"],
            "threads_end": last["env"].get(pid, {}).get("threads"),
        }
        for pid, figures in start_env.items()
    ]
    lasting = [e for e in environment_figures if e["fds_end"] is not None]
    environments_started = len(sampler.environments)
    ends = sorted(r["end"] for r in records)
    completed = len(records)
    run = {
        "planned": len(plan),
        "completed": completed,
        "stopped_by": "count" if completed == len(plan) else "duration",
        "wall_s": round(load_wall, 2),
        "requests_per_s": round(completed / load_wall, 2) if load_wall else None,
        "environments_started": environments_started,
    }
    max_growth = memory["max_growth_pct"]
    targets = {
        "good_error_rate_zero": requests["good"]["errors"] == 0,
        "bad_inputs_4xx": requests["bad"]["not_4xx"] == 0,
        "rss_growth_under_target": max_growth is not None and max_growth < RSS_GROWTH_TARGET_PCT,
        "no_fd_leak": end_figures["fds"] <= start_figures["fds"],
        "no_thread_leak": end_figures["threads"] <= start_figures["threads"],
        # Judged on the environments that ran from start to end (a replaced one has no end figures).
        "no_environment_fd_leak": all(e["fds_end"] <= e["fds_start"] for e in lasting) if lasting else None,
        "no_environment_replaced": environments_started == args.environments,
        "no_child_left": not shutdown["left_alive"] and shutdown["stopped_in_time"],
    }
    targets["all_met"] = all(ok is True for ok in targets.values())
    return {
        "config": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "duration_cap_s": args.duration,
            "environments": args.environments,
            "slow_seconds": args.slow_seconds,
            "sample_interval_s": args.interval,
            "seed": args.seed,
            "quick": args.quick,
            "model": str(MODEL.relative_to(ROOT)),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "mix": {kind: {"expected": expected, "share": weight} for kind, (expected, weight) in KINDS.items()},
        },
        "run": run,
        "status_counts": requests["status_counts"],
        "good": requests["good"],
        "bad": requests["bad"],
        "latency_ms": requests["latency_ms"],
        "kinds": requests["kinds"],
        "classes": requests["classes"],
        "memory": memory,
        "server": server_figures,
        "environments": environment_figures,
        "shutdown": shutdown,
        "server_log": server_problems,
        "targets": targets,
        "timeline": [
            {
                "t": round(s["t"] - load_started, 2),
                "completed": bisect.bisect_right(ends, s["t"]),
                "server": s["server"],
                "env": s["env"],
            }
            for s in sampler.samples
        ],
        "_samples": sampler.samples,
        "_records": records,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lambdavision-soak-") as folder:
        result = soak(args, Path(folder))
    samples, records = result.pop("_samples"), result.pop("_records")
    snippet = markdown(result)
    # With --json - the figures own stdout; the snippet goes to stderr then.
    print(snippet, file=sys.stderr if str(args.json) == "-" else sys.stdout)
    if args.results is not None:
        args.results.mkdir(parents=True, exist_ok=True)
        chart(result, samples, records, args.results / "soak.png")
        (args.results / "soak.md").write_text(snippet)
        (args.results / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
        progress(f"wrote soak.json, soak.png and soak.md in {args.results}")
    if args.json is not None:
        text = json.dumps(result, indent=1) + "\n"
        if str(args.json) == "-":
            sys.stdout.write(text)
        else:
            args.json.write_text(text)
    verdict = (
        "all targets met"
        if result["targets"]["all_met"]
        else "targets NOT met: "
        + ", ".join(name for name, ok in result["targets"].items() if ok is not True and name != "all_met")
    )
    progress(verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
