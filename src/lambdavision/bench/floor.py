"""Floors: the parts of a warm request no serving code can remove, each timed alone in a worker process
of its own (like the function), sampled between warm requests so both see the same machine load.

- `Floor`: ONNX Runtime's `run` on an already preprocessed input;
- `DecodeFloor`: the image decoded at the scale the model needs (JPEG draft mode).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Callable

from lambdavision.bench.stats import Stats
from lambdavision.core.errors import LambdaVisionError

_FLOOR_WORKER = """
import sys, time
from lambdavision.runtime.loader import load_classifier
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


_DECODE_WORKER = """
import sys, time
from lambdavision.runtime.artifact_files import read_serving_dir, read_artifact
from lambdavision.core.preprocess import decode_image
from pathlib import Path
model = Path(sys.argv[1])
prep = (read_serving_dir(model) if model.is_dir() else read_artifact(model)).preprocessing
data = Path(sys.argv[2]).read_bytes()
for _ in range(3):
    decode_image(data, prep)
print("ready", flush=True)
for _ in sys.stdin:
    started = time.perf_counter()
    decode_image(data, prep)
    print((time.perf_counter() - started) * 1000, flush=True)
"""


class _Worker:
    """A worker process running `script` on the image: it prints "ready", then one time in ms per line
    it reads. `preexec` runs in the worker before exec: joining the function's CPU share, say."""

    def __init__(
        self, script: str, args: list[str], image: bytes, preexec: Callable[[], None] | None, failure: str
    ) -> None:
        fd, image_path = tempfile.mkstemp(suffix=".img")
        with os.fdopen(fd, "wb") as out:
            out.write(image)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", script, *args, image_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )
        weakref.finalize(self, self._proc.kill)
        weakref.finalize(self, os.unlink, image_path)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise LambdaVisionError(failure)
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


class Floor(_Worker):
    """ONNX Runtime's `run` alone on an already preprocessed input.

    Measured inside the benchmark's process (which imported torch to export the models) instead of
    a worker, the same `run` took ~1.6x as long.
    """

    def __init__(
        self, model: str | os.PathLike[str], image: bytes, threads: int, preexec: Callable[[], None] | None = None
    ) -> None:
        args = [os.fspath(model), str(threads)]
        super().__init__(_FLOOR_WORKER, args, image, preexec, f"the floor worker could not load {model}")


class DecodeFloor(_Worker):
    """The image decoded at the scale the model needs (JPEG draft mode), alone: the part of a warm
    request's decode no serving code can remove."""

    def __init__(self, model: str | os.PathLike[str], image: bytes, preexec: Callable[[], None] | None = None) -> None:
        failure = f"the decode floor worker could not start on {model}"
        super().__init__(_DECODE_WORKER, [os.fspath(model)], image, preexec, failure)


def threads_for_memory(memory_mb: int) -> int:
    """The intra-op threads the handler picks at this memory size on this machine."""
    from lambdavision.runtime.settings import Settings

    return Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)}).threads or (os.cpu_count() or 1)


__all__ = ["DecodeFloor", "Floor", "threads_for_memory"]
