"""Lambda as it really is, for the benchmarks: its CPU share by memory size, and S3 over a real network.

`lambdavision bench` and benchmarks/compare.py measure under an `Emulation`:

- `cpu_share`: every function environment (and every floor worker) in a cgroup quota of
  MemorySize/1769 vCPUs (`local.cpu_quota`), as Lambda gives CPU in proportion to memory;
- `shaping`: a model on S3 is read from moto through the shaped stand-in (`local.shaped_s3`):
  a first-byte latency and a bandwidth per connection from AWS's published figures by default,
  `LOOPBACK` for S3 at memory speed.

It also holds what those benchmarks share beyond `bench.py`: the S3 side (moto + stand-in, the
artifact uploaded) and the decode floor (the image decoded at the scale the model needs, alone).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdavision.core.errors import LambdaVisionError
from lambdavision.local.cpu_quota import CpuGroup, CpuLimiter, CpuShare
from lambdavision.local.shaped_s3 import DEFAULT_SHAPING, LOOPBACK, ShapedS3, Shaping

BENCH_BUCKET = "lambdavision-bench"


@dataclass(frozen=True)
class Emulation:
    """Which of Lambda's conditions a measurement reproduces."""

    cpu_share: bool = True
    shaping: Shaping = DEFAULT_SHAPING

    @property
    def lambda_like(self) -> bool:
        return self.cpu_share and self.shaping.shaped

    def describe(self, memory_mb: int, limiter: CpuLimiter | None = None) -> str:
        share = (limiter.share(memory_mb) if limiter else CpuShare(None, "--no-cpu-share")).describe()
        return f"{memory_mb} MB, CPU share {share}, S3 {self.shaping.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_share": self.cpu_share, "s3": self.shaping.to_dict(), "s3_text": self.shaping.describe()}


LAMBDA = Emulation()
LOCAL = Emulation(cpu_share=False, shaping=LOOPBACK)


@contextlib.contextmanager
def cpu_limiter(enabled: bool, warn: Callable[[str], None] | None = None) -> Iterator[CpuLimiter | None]:
    """A limiter for one benchmark run (None when the share is off); its groups are removed after."""
    if not enabled:
        yield None
        return
    limiter = CpuLimiter(warn=warn)
    try:
        yield limiter
    finally:
        limiter.close()


@dataclass
class WorkerGroup:
    """A cgroup for a floor worker: the same share as the function it is the floor of."""

    limiter: CpuLimiter | None
    memory_mb: int
    group: CpuGroup | None = field(default=None, init=False)

    def preexec(self) -> Callable[[], None] | None:
        if self.limiter is None:
            return None
        self.group = self.limiter.group(self.memory_mb)
        return None if self.group is None else self.group.join_self

    def close(self) -> None:
        if self.group is not None:
            self.group.remove(wait_s=0.5)


# --- S3: moto behind the shaped stand-in -------------------------------------------------------


@contextlib.contextmanager
def shaped_s3(shaping: Shaping, log_path: Path | None = None) -> Iterator[tuple[str, ShapedS3]]:
    """moto on loopback and the stand-in in front of it: (moto's URL, the stand-in)."""
    from lambdavision.local.simulated_aws import moto_server

    with moto_server(log_path) as moto, ShapedS3(moto, shaping) as stand_in:
        yield moto, stand_in


def s3_env(endpoint: str, scratch: Path) -> dict[str, str]:
    """What a function (and boto3 here) needs to read the bench bucket: fake credentials, the endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
    }


def upload(endpoint: str, files: Mapping[str, Path], bucket: str = BENCH_BUCKET) -> None:
    """Create `bucket` on moto and put each file at its key (boto3 straight to moto, unshaped)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    for key, path in files.items():
        client.upload_file(str(path), bucket, key)


def preload(stand_in: ShapedS3, keys: Iterable[str], scratch: Path, bucket: str = BENCH_BUCKET) -> None:
    """Fill the stand-in's copy of each object now: no measured cold start pays moto's whole read (a
    100 MB object took the first GET 150-370 ms here, which S3 would not)."""
    from lambdavision.core import s3get

    env = s3_env(stand_in.url, scratch)
    for key in keys:
        request = s3get.build_get(bucket, key, env)
        if request is not None:
            stand_in.current(request.target, dict(request.headers))


# --- the decode floor ----------------------------------------------------------------------------

_DECODE_WORKER = """
import sys, time
from lambdavision.core.artifact import read_serving_dir, read_artifact
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


class DecodeFloor:
    """The image decoded at the scale the model needs (JPEG draft mode), alone: the part of a warm
    request's decode no serving code can remove. A worker process, sampled between warm requests
    like `bench.Floor`, in the function's CPU share when `preexec` joins it to its group."""

    def __init__(self, model: str | os.PathLike[str], image: bytes, preexec: Callable[[], None] | None = None) -> None:
        fd, image_path = tempfile.mkstemp(suffix=".img")
        with os.fdopen(fd, "wb") as out:
            out.write(image)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _DECODE_WORKER, os.fspath(model), image_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )
        weakref.finalize(self, self._proc.kill)
        weakref.finalize(self, os.unlink, image_path)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise LambdaVisionError(f"the decode floor worker could not start on {model}")
        self.samples: list[float] = []

    def sample(self) -> float:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("\n")
        self._proc.stdin.flush()
        elapsed = float(self._proc.stdout.readline())
        self.samples.append(elapsed)
        return elapsed

    def close(self) -> None:
        self._proc.kill()
        self._proc.wait()


__all__ = [
    "BENCH_BUCKET",
    "LAMBDA",
    "LOCAL",
    "DecodeFloor",
    "Emulation",
    "WorkerGroup",
    "cpu_limiter",
    "preload",
    "s3_env",
    "shaped_s3",
    "upload",
]
