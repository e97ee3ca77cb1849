"""Where the model comes from: a bundled folder or file, a path, file://, s3://, or the guide's env vars.

The fast path is a *serving folder* (lambdavision.json, classes.txt, model.onnx): ONNX Runtime
loads model.onnx by path, with no gunzip and no copy of the weights in Python (a ResNet-50's peak
memory fell from 350 to 185 MB that way). `package --bundle-model` ships one in the zip; a model on
S3 is gunzipped *while it downloads* into one under the temp dir, keyed by bucket, key and ETag,
so a warm container (or a second environment on the same machine) never downloads it twice.

With credentials in the environment (as Lambda sets them), the object is read with one signed GET
on the standard library (`core.s3get`): no boto3 import, no client, no HEAD — the ETag of the GET's
answer names the cache folder, and on a cache hit the body is never read. Without them (or with a
proxy, FIPS or dual-stack endpoint asked for), boto3 reads it (profiles, config files, roles).
The download runs in a thread while this one imports ONNX Runtime, so the two overlap; boto3 is
never imported for a bundled model.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import os
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdavision.backends import backend_for
from lambdavision.core import s3get
from lambdavision.core.artifact import (
    MANIFEST_NAME,
    Artifact,
    CacheWriteError,
    read_artifact,
    read_serving_dir,
    unpack_for_serving,
)
from lambdavision.core.classify import Classifier
from lambdavision.core.errors import ArtifactError

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
    return Path(environ.get("LAMBDAVISION_CACHE_DIR") or Path(tempfile.gettempdir()) / "lambdavision-cache")


def _s3_client(environ: Mapping[str, str]) -> Any:
    import boto3  # lazily: only S3-hosted models need it
    from botocore.config import Config

    # Short timeouts: botocore's default of 60 s per read would outlast Lambda's 10 s INIT, and an
    # unreachable S3 must fail the cold start clearly so the next invocation can retry.
    timeout = float(environ.get("LAMBDAVISION_S3_TIMEOUT", "5"))
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2, "mode": "standard"})
    # boto3 honours AWS_ENDPOINT_URL itself (how tests reach moto).
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    return boto3.client("s3", region_name=region, config=config)


def _cached_folder(environ: Mapping[str, str], bucket: str, key: str, etag: str) -> Path:
    return cache_dir(environ) / hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:32]


def open_s3_artifact(uri: str, environ: Mapping[str, str]) -> Artifact:
    """Read an artifact from S3 through the ETag-keyed disk cache (memory only if the disk fails)."""
    bucket, key = split_s3_uri(uri)
    request = s3get.build_get(bucket, key, environ)
    if request is None:  # no credentials in the environment: boto3 finds them
        return _open_with_boto3(uri, bucket, key, environ)
    with s3get.open_get(request) as s3_object:
        # Real S3 always sends an ETag; some S3-compatible servers may not.
        version = s3_object.etag or f"{s3_object.last_modified}/{s3_object.content_length}"
        cached = _cached_folder(environ, bucket, key, version)
        if (cached / MANIFEST_NAME).is_file():
            log.info("model %s: using the unpacked copy in %s", uri, cached)
            return read_serving_dir(cached, source=uri)  # leaving `with` drops the unread body
        try:
            artifact = unpack_for_serving(s3_object.stream, cached)  # gunzips while the bytes arrive
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
        if (cached / MANIFEST_NAME).is_file():
            log.info("model %s: using the unpacked copy in %s", uri, cached)
            return read_serving_dir(cached, source=uri)
        body = client.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
        try:
            artifact = unpack_for_serving(body, cached)  # gunzips while the bytes arrive
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


def _open_s3_while_importing_runtime(uri: str, environ: Mapping[str, str]) -> Artifact:
    """`open_s3_artifact` in a thread while this one imports ONNX Runtime and numpy.

    The download and unpack spend their time in socket reads, zlib, hashlib and file writes, which
    all release the GIL, so the imports (~0.1-0.2 s) mostly vanish into the download. The
    thread's exception, if any, is raised here as it was raised there.
    """
    artifacts: list[Artifact] = []
    failures: list[BaseException] = []

    def download() -> None:
        try:
            artifacts.append(open_s3_artifact(uri, environ))
        except BaseException as exc:  # handed to the caller's thread below
            failures.append(exc)

    thread = threading.Thread(target=download, name="lambdavision-model-download", daemon=True)
    thread.start()
    try:
        _import_inference_runtime()
    finally:
        thread.join()
    if failures:
        raise failures[0]
    return artifacts[0]


def _import_inference_runtime() -> None:
    for name in ("numpy", "onnxruntime"):
        try:
            importlib.import_module(name)
        except Exception:  # the backend imports it again and reports what is wrong
            return


def _read_bytes(data: bytes, source: str) -> Artifact:
    artifact = read_artifact(io.BytesIO(data))
    artifact.source = source
    return artifact


def open_artifact(uri: str, environ: Mapping[str, str]) -> Artifact:
    if uri.startswith("s3://"):
        return open_s3_artifact(uri, environ)
    if uri.startswith("file://"):
        uri = urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    path = Path(uri)
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        return read_serving_dir(path)
    if not path.is_file():
        raise ArtifactError(f"{uri}: no such model file")
    return read_artifact(path)


def load_classifier(
    source: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    parts_ms: dict[str, float] | None = None,
) -> Classifier:
    """A ready Classifier from `source`, or from the environment as the Lambda function does.

    `parts_ms`, when given, receives how long reading the artifact took (incl. any download, and
    for a model on S3 the runtime import that overlaps it) and creating the inference session
    after it, for the cold-start breakdown in the logs.
    """
    env = os.environ if environ is None else environ
    uri = os.fspath(source) if source is not None else resolve_model_uri(env)
    started = time.perf_counter()
    s3 = uri.startswith("s3://")
    artifact = _open_s3_while_importing_runtime(uri, env) if s3 else open_artifact(uri, env)
    read = time.perf_counter()
    backend = backend_for(artifact, env)
    if parts_ms is not None:
        parts_ms["artifact_ms"] = round((read - started) * 1000, 1)
        parts_ms["session_ms"] = round((time.perf_counter() - read) * 1000, 1)
    return Classifier(artifact.classes, artifact.preprocessing, backend, source=artifact.source)
