"""`benchmarks/soak.py --quick` end to end: a real start-api subprocess, a load process, the report.

Shape and sanity of its figures only (every figure present, counts that add up, nothing left
running); how fast it was is for the benchmark to say, not for a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOAK = ROOT / "benchmarks" / "soak.py"
REQUESTS = 150
KINDS = {"url", "inline", "raw", "slow_url", "bad_json", "text_url", "truncated", "ftp_url"}
TARGETS = {
    "good_error_rate_zero",
    "bad_inputs_4xx",
    "rss_growth_under_target",
    "no_fd_leak",
    "no_thread_leak",
    "no_environment_fd_leak",
    "no_environment_replaced",
    "no_child_left",
    "all_met",
}


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick soak for the module: its JSON figures, its results folder and its output."""
    folder = tmp_path_factory.mktemp("soak")
    figures = folder / "figures.json"
    process = subprocess.Popen(
        [
            sys.executable,
            str(SOAK),
            "--quick",
            "--requests",
            str(REQUESTS),
            "--concurrency",
            "4",
            "--slow-seconds",
            "0.2",
            "--json",
            str(figures),
            "--results",
            str(folder / "results"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=150)
    finally:
        if process.poll() is None:  # only on a timeout: the script's own finally did not run
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-3000:]
    return {"figures": json.loads(figures.read_text()), "results": folder / "results", "stdout": stdout}


def test_every_request_is_counted_once(soak: dict[str, Any]) -> None:
    figures = soak["figures"]
    run = figures["run"]
    assert run["planned"] == REQUESTS
    assert run["completed"] == REQUESTS, "the quick run is far inside its time cap"
    assert run["stopped_by"] == "count"
    assert sum(figures["status_counts"].values()) == REQUESTS
    assert set(figures["kinds"]) == KINDS
    assert sum(kind["count"] for kind in figures["kinds"].values()) == REQUESTS
    for kind in figures["kinds"].values():
        assert kind["count"] >= 1
        assert sum(kind["statuses"].values()) == kind["count"]
        assert 0 <= kind["wrong"] <= kind["count"]
    assert figures["good"]["count"] + figures["bad"]["count"] == REQUESTS


def test_good_error_rate_and_bad_inputs_are_reported(soak: dict[str, Any]) -> None:
    figures = soak["figures"]
    good, bad, kinds = figures["good"], figures["bad"], figures["kinds"]
    assert good["count"] == sum(k["count"] for k in kinds.values() if k["expected"] == "200")
    assert good["errors"] == sum(k["wrong"] for k in kinds.values() if k["expected"] == "200")
    assert good["error_rate"] == pytest.approx(good["errors"] / good["count"])
    assert bad["not_4xx"] == sum(k["wrong"] for k in kinds.values() if k["expected"] == "4xx")
    assert figures["targets"]["good_error_rate_zero"] is (good["errors"] == 0)
    # Each image's class is known from its answers (so crossed answers would be counted as errors).
    assert figures["classes"]


def test_latency_figures_are_present_and_ordered(soak: dict[str, Any]) -> None:
    figures = soak["figures"]
    for summary in [figures["latency_ms"], *(kind["latency_ms"] for kind in figures["kinds"].values())]:
        assert set(summary) == {"p50", "p95", "p99", "max"}
        assert 0 < summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"]


def test_memory_of_each_environment_is_sampled(soak: dict[str, Any]) -> None:
    figures = soak["figures"]
    memory = figures["memory"]
    assert figures["run"]["environments_started"] == 2
    assert len(memory["environments"]) == 2
    assert memory["window_requests"] == REQUESTS // 5
    for environment in [*memory["environments"], memory["server"]]:
        for name in ("rss_first_sample_mib", "first_window_peak_mib", "last_window_peak_mib"):
            assert environment[name] > 10, name  # a Python process with numpy and ONNX Runtime loaded
        growth = (environment["last_window_peak_mib"] / environment["first_window_peak_mib"] - 1) * 100
        assert environment["growth_pct"] == pytest.approx(growth, abs=0.05)
    assert memory["max_growth_pct"] == max(e["growth_pct"] for e in memory["environments"])
    timeline = figures["timeline"]
    assert len(timeline) >= 3
    assert [s["completed"] for s in timeline] == sorted(s["completed"] for s in timeline)
    assert timeline[-1]["completed"] == REQUESTS


def test_descriptors_threads_and_shutdown_are_reported(soak: dict[str, Any]) -> None:
    figures = soak["figures"]
    server = figures["server"]
    for name in ("fds_start", "fds_end", "threads_start", "threads_end", "fds_peak", "threads_peak"):
        assert server[name] > 0, name
    assert server["fds_peak"] >= server["fds_start"]
    assert figures["targets"]["no_fd_leak"] is (server["fds_end"] <= server["fds_start"])
    assert len(figures["environments"]) == 2
    shutdown = figures["shutdown"]
    assert shutdown["stopped_in_time"] and shutdown["exit_code"] == 0
    assert len(shutdown["descendants_before"]) == 2
    assert all("awslambdaric" in child["cmdline"] for child in shutdown["descendants_before"])
    assert shutdown["left_alive"] == []
    assert set(figures["targets"]) == TARGETS
    assert figures["targets"]["no_child_left"] is True
    # What start-api's own log says went wrong, so a failed target comes with its reason.
    log = figures["server_log"]
    assert set(log) == {"report_errors", "gateway_errors", "tracebacks", "examples"}
    assert all(isinstance(n, int) and n > 0 for n in log["report_errors"].values())
    assert isinstance(log["tracebacks"], int)


def test_no_environment_outlives_the_run(soak: dict[str, Any]) -> None:
    pids = [child["pid"] for child in soak["figures"]["shutdown"]["descendants_before"]]
    pids.append(soak["figures"]["server"]["pid"])
    survivors = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE and "lambda" in " ".join(process.cmdline()):
                survivors.append(pid)
        except psutil.Error:
            pass
    assert survivors == []


def test_results_folder_has_chart_snippet_and_json(soak: dict[str, Any]) -> None:
    results: Path = soak["results"]
    assert (results / "soak.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    snippet = (results / "soak.md").read_text()
    assert snippet.startswith("### Soak under load")
    assert "| **all** |" in snippet and "soak.png" in snippet
    assert snippet in soak["stdout"]  # the README snippet is printed too
    assert json.loads((results / "soak.json").read_text()) == soak["figures"]
