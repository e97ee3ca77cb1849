"""`memory_probe`: one child process (tests.memory.probe) that measures the handler's peak memory per request."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.memory.shapes import Shape

ROOT = Path(__file__).resolve().parents[2]


def stated_bound_mib() -> float:
    """The bound SECURITY.md states ("... by more than **N MiB**"): the tests hold the code to it."""
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    match = re.search(r"raises the function's peak memory by more than \*\*(\d+) MiB\*\*", text)
    assert match, "SECURITY.md no longer states the peak-memory bound"
    return float(match.group(1))


@dataclass
class Measured:
    status: int
    statuses: list[int]
    raise_mib: float
    seconds: float
    error: str | None


class MemoryProbe:
    def __init__(self, artifact: Path) -> None:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", PYTHONPATH=str(ROOT))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.memory.probe", str(artifact)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def measure(self, *shapes: Shape, batch: bool = False) -> Measured:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"shapes": [asdict(s) for s in shapes], "batch": batch}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, f"the probe died (exit {self._process.poll()})"
        raw: dict[str, Any] = json.loads(line)
        return Measured(**raw)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="module")
def memory_probe(colour_artifact: Path) -> Iterator[MemoryProbe]:
    probe = MemoryProbe(colour_artifact)
    try:
        yield probe
    finally:
        probe.close()
