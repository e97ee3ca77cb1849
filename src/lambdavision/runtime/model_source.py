"""Where the function's model comes from, and fetching it from S3 — light enough to import first.

`resolve_model_uri` follows the settings: MODEL_URI, a model bundled in the code folder, or the
guide's MODEL_BUCKET + MODEL_KEY. A model on S3 is gunzipped *while it downloads* into a serving
folder under the temp dir, keyed by bucket, key and ETag, so a warm container (or a second
environment on the same machine) never downloads it twice.

With credentials in the environment (as Lambda sets them), the object is read with one signed GET
on the standard library (`runtime.s3get`): no boto3 import, no client, no HEAD — the ETag of the GET's
answer names the cache folder, and on a cache hit the body is never read. Without them (or with a
proxy, FIPS or dual-stack endpoint asked for), boto3 reads it (profiles, config files, roles).

This module imports only the standard library and the light parts of core (no numpy, Pillow or
ONNX Runtime), so the handler can `start_prefetch` before its heavy imports: inside a Lambda
runtime the download and unpack (socket reads, zlib, hashlib and file writes, which release the
GIL) then overlap importing numpy, Pillow and ONNX Runtime, and `load_classifier` takes the result.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from lambdavision.core.artifact import MANIFEST_NAME, Artifact
from lambdavision.core.errors import ArtifactError, CacheWriteError, LambdaVisionError, ObjectChanged
from lambdavision.runtime import s3_ranges, s3get
from lambdavision.runtime.artifact_files import read_artifact, unpack_for_serving
from lambdavision.runtime.background import in_thread
from lambdavision.runtime.model_cache import cached_copy, cached_folder
from lambdavision.runtime.s3_boto3 import open_with_boto3
from lambdavision.runtime.settings import Settings

log = logging.getLogger("lambdavision")

BUNDLED_DIR = "model"  # a serving folder at the zip's root, written by `package --bundle-model`
BUNDLED_NAME = "model.tar.gz"  # or the artifact itself


def resolve_model_uri(settings: Settings) -> str:
    """The model's location: MODEL_URI, then a model bundled in the code folder, then MODEL_BUCKET + MODEL_KEY."""
    if settings.model_uri:
        return settings.model_uri
    task_root = settings.task_root
    if task_root and (Path(task_root) / BUNDLED_DIR / MANIFEST_NAME).is_file():
        return str(Path(task_root) / BUNDLED_DIR)
    if task_root and (Path(task_root) / BUNDLED_NAME).is_file():
        return str(Path(task_root) / BUNDLED_NAME)
    if settings.model_bucket and settings.model_key:
        return f"s3://{settings.model_bucket}/{settings.model_key}"
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


def open_s3_artifact(uri: str, settings: Settings) -> Artifact:
    """Read an artifact from S3 through the ETag-keyed disk cache (memory only if the disk fails).

    A large object comes by parallel ranged GETs (`s3_ranges`); one replaced while its ranges were
    read is read again, once, at its new version (nothing of the old one is kept).
    """
    try:
        return _open_s3_artifact(uri, settings)
    except ObjectChanged as exc:
        log.warning("model %s: %s; reading it again", uri, exc.message)
        return _open_s3_artifact(uri, settings)


def _open_s3_artifact(uri: str, settings: Settings) -> Artifact:
    bucket, key = split_s3_uri(uri)
    request = s3get.build_get(bucket, key, settings.s3)
    if request is None:  # no credentials in the environment: boto3 finds them
        return open_with_boto3(uri, bucket, key, settings)
    with s3_ranges.open_object(request, settings.s3.connections) as s3_object:
        # Real S3 always sends an ETag; some S3-compatible servers may not.
        version = s3_object.etag or f"{s3_object.last_modified}/{s3_object.content_length}"
        cached = cached_folder(settings, bucket, key, version)
        hit = cached_copy(cached, uri)
        if hit is not None:
            return hit  # leaving `with` drops the unread body
        try:
            artifact = unpack_for_serving(s3_object.stream, cached, seal=True)  # gunzips while the bytes arrive
        except CacheWriteError as exc:
            log.warning("model %s: the disk cache is unusable (%s); loading from memory", uri, exc.message)
            artifact = None
    if artifact is None:
        # The first body may be partly read: a second GET (signed afresh), into memory this time.
        with s3get.open_get(s3get.build_get(bucket, key, settings.s3) or request) as s3_object:
            artifact = read_artifact(s3_object.stream)
    artifact.source = uri
    return artifact


class S3Download:
    """`open_s3_artifact` running in a thread; `result()` waits and returns or raises what it did."""

    def __init__(self, uri: str, settings: Settings) -> None:
        self.uri = uri
        self.settings = settings
        self._future = in_thread(open_s3_artifact, uri, settings)

    def result(self) -> Artifact:
        return self._future.result()


_prefetched: S3Download | None = None


def start_prefetch(environ: Mapping[str, str]) -> None:
    """Start downloading the environment's model if it is on S3 and the lean GET applies.

    Anything wrong (a bad setting, no model configured, a malformed URI, no credentials in the
    environment) is left for `load_classifier` to report in its usual words: this only saves time.
    """
    global _prefetched
    try:
        settings = Settings.from_env(environ)
        uri = resolve_model_uri(settings)
        if not uri.startswith("s3://") or s3get.build_get(*split_s3_uri(uri), settings.s3) is None:
            return
    except LambdaVisionError:
        return
    _prefetched = S3Download(uri, settings)


def take_prefetch(uri: str, settings: Settings) -> S3Download | None:
    """The download `start_prefetch` began for this model and these settings, once; else None."""
    global _prefetched
    pending, _prefetched = _prefetched, None
    if pending is not None and pending.uri == uri and pending.settings == settings:
        return pending
    return None
