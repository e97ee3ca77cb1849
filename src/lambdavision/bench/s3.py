"""S3 for the benchmarks: moto on loopback behind the shaped stand-in (`local.shaped_s3`), the bench
bucket, and what a function needs to read it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from lambdavision.local.shaped_s3 import ShapedS3
from lambdavision.local.shaping import Shaping

BENCH_BUCKET = "lambdavision-bench"


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
    from lambdavision.runtime import s3get
    from lambdavision.runtime.settings import Settings

    s3 = Settings.from_env(s3_env(stand_in.url, scratch)).s3
    for key in keys:
        request = s3get.build_get(bucket, key, s3)
        if request is not None:
            stand_in.current(request.target, dict(request.headers))


__all__ = ["BENCH_BUCKET", "preload", "s3_env", "shaped_s3", "upload"]
