"""`benchmarks/profile_warm.py` end to end on the demo model: the phases, the floor and the call trees
it promises are all there and consistent (no timing is judged)."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_profile_warm_prints_the_phases_and_writes_call_trees(
    demo_artifact: Path, demo_samples: list[tuple[Path, str]], tmp_path: Path
) -> None:
    images = [demo_samples[0][0], demo_samples[1][0]]
    args = [sys.executable, str(REPO / "benchmarks" / "profile_warm.py"), "--model", str(demo_artifact)]
    for image in images:
        args += ["--image", str(image)]
    log = tmp_path / "function.log"
    result = subprocess.run(
        [*args, "--requests", "5", "--cold", "--out", str(tmp_path / "profiles"), "--log", str(log)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The reference: the function's own JSON log line of each profiled request, read here.
    records = [json.loads(line[line.index("{") :]) for line in log.read_text().splitlines() if '"request"' in line]
    assert len(records) == 5 * len(images)
    for index, image in enumerate(images):
        logged = records[5 * index : 5 * (index + 1)]
        assert {r["image_size"] for r in logged} == {"{}x{}".format(*Image.open(image).size)}
        block = out.split(f"{image.name}: 5 warm requests in process, medians", 1)[1]
        total = re.search(
            r"total ([\d.]+) ms = fetch ([\d.]+) \+ decode ([\d.]+) \+ forward ([\d.]+) \+ the rest (-?[\d.]+)", block
        )
        assert total, block
        shown = dict(zip(("total", "fetch", "decode", "inference"), map(float, total.groups()[:4]), strict=True))
        for phase in ("fetch", "decode", "inference"):
            # Each phase printed is the median of what the function measured for it (to the 0.1 ms shown).
            assert shown[phase] == pytest.approx(statistics.median(r["timings_ms"][phase] for r in logged), abs=0.11)
        # The total is timed around each call, so it holds the function's own total of every request.
        assert shown["total"] >= statistics.median(r["timings_ms"]["total"] for r in logged) - 0.05
        floor = re.search(r"floor \(run alone\) ([\d.]+) ms; overhead above it (-?[\d.]+) ms", block)
        assert floor and float(floor.group(1)) > 0
        tree = (tmp_path / "profiles" / f"warm-{image.stem}.txt").read_text()
        assert "App.__call__" in tree and "OnnxBackend.run" in tree
    cold = (tmp_path / "profiles" / "cold-start.txt").read_text()
    assert "App.from_env" in cold and "load_classifier" in cold


def test_profile_warm_refuses_a_missing_image(tmp_path: Path, demo_artifact: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "profile_warm.py"),
            "--model",
            str(demo_artifact),
            "--image",
            str(tmp_path / "nope.jpg"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "no image at" in result.stderr


def test_profile_of_an_s3_cold_start_under_the_cpu_share(
    demo_artifact: Path, demo_samples: list[tuple[Path, str]], tmp_path: Path
) -> None:
    """As compare.py's Lambda-shaped conditions: the model from moto behind the shaped stand-in, this
    process held to 1,024 MB's share (or told, once, that it cannot be)."""
    args = [sys.executable, str(REPO / "benchmarks" / "profile_warm.py"), "--model", str(demo_artifact)]
    args += ["--image", str(demo_samples[0][0]), "--requests", "2", "--cold", "--memory", "1024", "--cpu-share", "--s3"]
    args += ["--smaps"]
    result = subprocess.run(
        [*args, "--out", str(tmp_path / "profiles")], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert "model on S3: moto behind the stand-in, 30 ms to the first byte, 85 MB/s per connection" in result.stdout
    assert (
        "held to 0.58 vCPU (MemorySize 1024 MB / 1769)" in result.stdout
        or "cannot hold environments to Lambda's CPU share" in result.stdout
    )
    cold = (tmp_path / "profiles" / "cold-start.txt").read_text()
    assert "load_classifier" in cold and "S3Download.result" in cold  # the download, waited for here
    assert (
        "S3 read alone: " in result.stdout
        and "open_s3_artifact" in (tmp_path / "profiles" / "s3-download.txt").read_text()
    )
    memory = (tmp_path / "profiles" / "peak-memory.txt").read_text()
    assert memory.startswith("VmHWM (peak) ") and "onnxruntime_pybind11_state" in memory and "[heap]" in memory
