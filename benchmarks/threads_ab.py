"""A/B of the function's two hand-tuned threads, on the benchmarks' shaped S3 (moto behind bench_emulation's
stand-in: first-byte latency and bandwidth per connection, as compare.py's Lambda-shaped conditions).

- the S3 read-ahead (`runtime.s3_object`): one GET (LAMBDAVISION_S3_CONNECTIONS=1), with and without it;
- the unpack's hashing writer (`runtime.unpack_sink`): ranged GETs, hashing and writing in a thread or inline.

Each line is `model_source.open_s3_artifact` into a fresh cache folder, timed; medians of --runs.

    .venv/bin/python benchmarks/threads_ab.py MODEL.tar.gz --runs 5
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from lambdavision.bench.s3 import preload, s3_env, shaped_s3, upload  # noqa: E402
from lambdavision.local.shaped_s3 import DEFAULT_SHAPING  # noqa: E402
from lambdavision.runtime import model_source, s3_object, unpack_sink  # noqa: E402
from lambdavision.runtime.s3_body import Body  # noqa: E402
from lambdavision.runtime.settings import Settings  # noqa: E402

KEY = "threads-ab/model.tar.gz"


class InlineWriter:
    """The hashing writer without its thread."""

    def __init__(self, out: IO[bytes], what: str) -> None:
        self._out, self._digest = out, hashlib.sha256()

    def put(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._out.write(chunk)

    def close(self) -> None:
        self._out.close()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class NoReadAhead:
    """The S3 body read in the caller's thread."""

    def __init__(self, body: Body) -> None:
        self._body, self.name = body, body.name

    def read(self, size: int = -1) -> bytes:
        return self._body.fetch(s3_object.CHUNK_BYTES if size < 0 else size)

    def close(self) -> None:
        pass


def timed(env: dict[str, str], runs: int, label: str) -> None:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="threads-ab-cache-") as cache:
            settings = Settings.from_env({**env, "LAMBDAVISION_CACHE_DIR": cache})
            started = time.perf_counter()
            model_source.open_s3_artifact(env["MODEL_URI"], settings)
            times.append((time.perf_counter() - started) * 1000)
    listed = ", ".join(f"{t:.0f}" for t in times)
    print(f"{label}: median {statistics.median(times):,.0f} ms ({listed})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("model", type=Path, help="a model.tar.gz (a ResNet-50's is ~100 MB)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memory", type=int, default=2048, help="the function's memory, MB (sets connections)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        moto, stand_in = stack.enter_context(shaped_s3(DEFAULT_SHAPING))
        upload(moto, {KEY: args.model})
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="threads-ab-")))
        preload(stand_in, [KEY], scratch)
        env = s3_env(stand_in.url, scratch) | {
            "MODEL_URI": f"s3://lambdavision-bench/{KEY}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(args.memory),
        }
        one_get = {**env, "LAMBDAVISION_S3_CONNECTIONS": "1"}
        print(f"model on S3: moto behind the stand-in, {DEFAULT_SHAPING.describe()}")
        timed(one_get, args.runs, "one GET, read-ahead (as shipped)")
        with _swapped(s3_object, "_ReadAhead", NoReadAhead):
            timed(one_get, args.runs, "one GET, no read-ahead")
        timed(env, args.runs, "ranged GETs, hashing writer thread (as shipped)")
        with _swapped(unpack_sink, "HashingWriter", InlineWriter):
            timed(env, args.runs, "ranged GETs, hashing and writing inline")
    return 0


@contextlib.contextmanager
def _swapped(module: object, name: str, replacement: object) -> object:
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield replacement
    finally:
        setattr(module, name, original)


if __name__ == "__main__":
    raise SystemExit(main())
