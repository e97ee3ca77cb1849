"""Where the function's model comes from, and fetching it from S3 — light enough to import first.

`resolve_model_uri` reads the environment: MODEL_URI, a model bundled in the code folder, or the
guide's MODEL_BUCKET + MODEL_KEY. A model on S3 is gunzipped *while it downloads* into a serving
folder under the temp dir, keyed by bucket, key and ETag, so a warm container (or a second
environment on the same machine) never downloads it twice.

With credentials in the environment (as Lambda sets them), the object is read with one signed GET
on the standard library (`core.s3get`): no boto3 import, no client, no HEAD — the ETag of the GET's
answer names the cache folder, and on a cache hit the body is never read. Without them (or with a
proxy, FIPS or dual-stack endpoint asked for), boto3 reads it (profiles, config files, roles).

This module imports only the standard library and the light parts of core (no numpy, Pillow or
ONNX Runtime), so the handler can `start_prefetch` before its heavy imports: inside a Lambda
runtime the download and unpack (socket reads, zlib, hashlib and file writes, which release the
GIL) then overlap importing numpy, Pillow and ONNX Runtime, and `load_classifier` takes the result.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdavision import s3_ranges
from lambdavision.core import s3get
from lambdavision.core.artifact import (
    MANIFEST_NAME,
    Artifact,
    CacheWriteError,
    read_artifact,
    read_serving_dir,
    unpack_for_serving,
)
from lambdavision.core.errors import ArtifactError, LambdaVisionError
from lambdavision.core.seal import UnsafeFolder, check_seal, ensure_private_dir

log = logging.getLogger("lambdavision")

BUNDLED_DIR = "model"  # a serving folder at the zip's root, written by `package --bundle-model`
BUNDLED_NAME = "model.tar.gz"  # or the artifact itself


def resolve_model_uri(environ: Mapping[str, str]) -> str:
    """The model's location: MODEL_URI, then a model bundled in the code folder, then MODEL_BUCKET + MODEL_KEY."""
    if environ.get("MODEL_URI"):
        return environ["MODEL_URI"]
    task_root = environ.get("LAMBDA_TASK_ROOT")
    if task_root and (Path(task_root) / BUNDLED_DIR / MANIFEST_NAME).is_file():
        return str(Path(task_root) / BUNDLED_DIR)
    if task_root and (Path(task_root) / BUNDLED_NAME).is_file():
        return str(Path(task_root) / BUNDLED_NAME)
    bucket, key = environ.get("MODEL_BUCKET"), environ.get("MODEL_KEY")
    if bucket and key:
        return f"s3://{bucket}/{key}"
    raise ArtifactError(
        "no model configured: set MODEL_BUCKET and MODEL_KEY (or MODEL_URI), or bundle model.tar.gz "
        "with `lambdavision package --bundle-model`"
    )


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urllib.parse.urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not bucket or not key:
        raise ArtifactError(f"not an s3://bucket/key URI: {uri}")
    return bucket, key


def cache_dir(environ: Mapping[str, str]) -> Path:
    """LAMBDAVISION_CACHE_DIR, else a folder of this user's in the temp dir (created 0700 when used)."""
    if environ.get("LAMBDAVISION_CACHE_DIR"):
        return Path(environ["LAMBDAVISION_CACHE_DIR"])
    user = f"-{os.getuid()}" if hasattr(os, "getuid") else ""
    return Path(tempfile.gettempdir()) / f"lambdavision-cache{user}"


def _s3_client(environ: Mapping[str, str]) -> Any:
    import boto3  # lazily: only S3-hosted models need it
    from botocore.config import Config

    # Short timeouts: botocore's default of 60 s per read would outlast Lambda's 10 s INIT, and an
    # unreachable S3 must fail the cold start clearly so the next invocation can retry.
    timeout = s3get.timeout_from_env(environ)
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2, "mode": "standard"})
    # boto3 honours AWS_ENDPOINT_URL itself (how tests reach moto).
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    return boto3.client("s3", region_name=region, config=config)


def _cached_copy(cached: Path, uri: str) -> Artifact | None:
    """The unpacked copy of this object version, if the cache holds a whole one, unchanged.

    The cache folder must be this user's alone (0700, core.seal), and the copy must match the
    record written with it: sizes and times of every file, sha256 of the manifest, the class list
    and a format-2 graph. A copy that changed or lost a file (an edit, a /tmp cleaner) is removed,
    so this load downloads the model again instead of serving it, or of every later load failing.
    """
    if not (cached / MANIFEST_NAME).is_file():
        return None
    try:
        ensure_private_dir(cached.parent)
    except UnsafeFolder as exc:
        log.warning("model %s: not using the disk cache: %s", uri, exc)
        return None
    problem = check_seal(cached)
    if problem is not None:
        log.warning("model %s: the unpacked copy in %s cannot be trusted (%s); downloading again", uri, cached, problem)
        shutil.rmtree(cached, ignore_errors=True)
        return None
    try:
        artifact = read_serving_dir(cached, source=uri)
    except ArtifactError as exc:
        log.warning("model %s: the unpacked copy in %s is damaged (%s); downloading again", uri, cached, exc.message)
        shutil.rmtree(cached, ignore_errors=True)
        return None
    log.info("model %s: using the unpacked copy in %s", uri, cached)
    return artifact


def _cached_folder(environ: Mapping[str, str], bucket: str, key: str, etag: str) -> Path:
    return cache_dir(environ) / hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:32]


def open_s3_artifact(uri: str, environ: Mapping[str, str]) -> Artifact:
    """Read an artifact from S3 through the ETag-keyed disk cache (memory only if the disk fails).

    A large object comes by parallel ranged GETs (`s3_ranges`); one replaced while its ranges were
    read is read again, once, at its new version (nothing of the old one is kept).
    """
    try:
        return _open_s3_artifact(uri, environ)
    except s3_ranges.ObjectChanged as exc:
        log.warning("model %s: %s; reading it again", uri, exc.message)
        return _open_s3_artifact(uri, environ)


def _open_s3_artifact(uri: str, environ: Mapping[str, str]) -> Artifact:
    bucket, key = split_s3_uri(uri)
    request = s3get.build_get(bucket, key, environ)
    if request is None:  # no credentials in the environment: boto3 finds them
        return _open_with_boto3(uri, bucket, key, environ)
    with s3_ranges.open_object(request, environ) as s3_object:
        # Real S3 always sends an ETag; some S3-compatible servers may not.
        version = s3_object.etag or f"{s3_object.last_modified}/{s3_object.content_length}"
        cached = _cached_folder(environ, bucket, key, version)
        hit = _cached_copy(cached, uri)
        if hit is not None:
            return hit  # leaving `with` drops the unread body
        try:
            artifact = unpack_for_serving(s3_object.stream, cached, seal=True)  # gunzips while the bytes arrive
        except CacheWriteError as exc:
            log.warning("model %s: the disk cache is unusable (%s); loading from memory", uri, exc.message)
            artifact = None
    if artifact is None:
        # The first body may be partly read: a second GET (signed afresh), into memory this time.
        with s3get.open_get(s3get.build_get(bucket, key, environ) or request) as s3_object:
            artifact = read_artifact(s3_object.stream)
    artifact.source = uri
    return artifact


def _open_with_boto3(uri: str, bucket: str, key: str, environ: Mapping[str, str]) -> Artifact:
    from botocore.exceptions import BotoCoreError, ClientError

    client = _s3_client(environ)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        etag = str(head["ETag"]).strip('"')
        cached = _cached_folder(environ, bucket, key, etag)
        hit = _cached_copy(cached, uri)
        if hit is not None:
            return hit
        body = client.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
        try:
            artifact = unpack_for_serving(body, cached, seal=True)  # gunzips while the bytes arrive
        except CacheWriteError as exc:
            log.warning("model %s: the disk cache is unusable (%s); loading from memory", uri, exc.message)
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return _read_bytes(data, uri)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise ArtifactError(f"{uri}: S3 said {err.get('Code')}: {err.get('Message') or exc}") from None
    except BotoCoreError as exc:
        raise ArtifactError(f"{uri}: cannot read from S3: {exc}") from None
    artifact.source = uri
    return artifact


def _read_bytes(data: bytes, source: str) -> Artifact:
    artifact = read_artifact(io.BytesIO(data))
    artifact.source = source
    return artifact


class S3Download:
    """`open_s3_artifact` running in a thread; `result()` waits and returns or raises what it did."""

    def __init__(self, uri: str, environ: Mapping[str, str]) -> None:
        self.uri = uri
        self.environ = environ
        self._artifact: Artifact | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lambdavision-model-download", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._artifact = open_s3_artifact(self.uri, self.environ)
        except BaseException as exc:  # handed to the caller's thread by result()
            self._failure = exc

    def result(self) -> Artifact:
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        assert self._artifact is not None
        return self._artifact


_prefetched: S3Download | None = None


def start_prefetch(environ: Mapping[str, str]) -> None:
    """Start downloading the environment's model if it is on S3 and the lean GET applies.

    Anything wrong (no model configured, a malformed URI, no credentials in the environment) is
    left for `load_classifier` to report in its usual words: this only ever saves time.
    """
    global _prefetched
    try:
        uri = resolve_model_uri(environ)
        if not uri.startswith("s3://") or s3get.build_get(*split_s3_uri(uri), environ) is None:
            return
    except LambdaVisionError:
        return
    _prefetched = S3Download(uri, environ)


def take_prefetch(uri: str, environ: Mapping[str, str]) -> S3Download | None:
    """The download `start_prefetch` began for this model and environment, once; else None."""
    global _prefetched
    pending, _prefetched = _prefetched, None
    if pending is not None and pending.uri == uri and pending.environ is environ:
        return pending
    return None
