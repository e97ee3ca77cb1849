"""Where the model comes from: a bundled folder or file, a path, file://, s3://, or the guide's env vars.

The fast path is a *serving folder* (lambdavision.json, classes.txt, model.onnx): ONNX Runtime
loads model.onnx by path, with no gunzip and no copy of the weights in Python (a ResNet-50's peak
memory fell from 350 to 185 MB that way). `package --bundle-model` ships one in the zip; a model on
S3 is gunzipped *while it downloads* into one under the temp dir, keyed by bucket, key and ETag,
so a warm container (or a second environment on the same machine) never downloads it twice.
boto3 is imported only when the model is on S3: a bundled model's cold start does not pay for it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdavision.backends import backend_for
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


def open_s3_artifact(uri: str, environ: Mapping[str, str]) -> Artifact:
    """Read an artifact from S3 through the ETag-keyed disk cache (memory only if the disk fails)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3_uri(uri)
    client = _s3_client(environ)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        etag = str(head["ETag"]).strip('"')
        cached = cache_dir(environ) / hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:32]
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

    `parts_ms`, when given, receives how long reading the artifact (incl. any download) and
    creating the inference session took, for the cold-start breakdown in the logs.
    """
    env = os.environ if environ is None else environ
    uri = os.fspath(source) if source is not None else resolve_model_uri(env)
    started = time.perf_counter()
    artifact = open_artifact(uri, env)
    read = time.perf_counter()
    backend = backend_for(artifact, env)
    if parts_ms is not None:
        parts_ms["artifact_ms"] = round((read - started) * 1000, 1)
        parts_ms["session_ms"] = round((time.perf_counter() - read) * 1000, 1)
    return Classifier(artifact.classes, artifact.preprocessing, backend, source=artifact.source)
