"""`benchmarks/profile_warm.py` end to end on the demo model: the phases, the floor and the call trees
it promises are all there and consistent (no timing is judged)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_profile_warm_prints_the_phases_and_writes_call_trees(
    demo_artifact: Path, demo_samples: list[tuple[Path, str]], tmp_path: Path
) -> None:
    images = [demo_samples[0][0], demo_samples[1][0]]
    args = [sys.executable, str(REPO / "benchmarks" / "profile_warm.py"), "--model", str(demo_artifact)]
    for image in images:
        args += ["--image", str(image)]
    result = subprocess.run(
        [*args, "--requests", "3", "--cold", "--out", str(tmp_path / "profiles")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for image in images:
        block = out.split(f"{image.name}: 3 warm requests in process, medians", 1)[1]
        total = re.search(
            r"total ([\d.]+) ms = fetch ([\d.]+) \+ decode ([\d.]+) \+ forward ([\d.]+) \+ the rest (-?[\d.]+)", block
        )
        assert total, block
        figures = [float(v) for v in total.groups()]
        assert all(v > 0 for v in figures[:4])
        assert abs(figures[0] - sum(figures[1:])) < 0.15  # the parts add up to the total shown
        floor = re.search(r"floor \(run alone\) ([\d.]+) ms; overhead above it (-?[\d.]+) ms", block)
        assert floor and float(floor.group(1)) > 0
        assert abs(float(floor.group(2)) - (figures[0] - float(floor.group(1)))) < 0.15
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
