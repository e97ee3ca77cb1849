"""Loading the function's classifier: the artifact from wherever `model_source` says, then the session.

The fast path is a *serving folder* (lambdavision.json, classes.txt, model.onnx + model.onnx.data):
ONNX Runtime loads model.onnx by path and memory-maps its weights, with no gunzip and no copy in
Python. `package --bundle-model` ships one in the zip; a model on S3 is unpacked into one while it
downloads (see model_source). boto3 is never imported for a bundled model.
"""

from __future__ import annotations

import importlib
import os
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from lambdavision.core.artifact import MANIFEST_NAME, Artifact
from lambdavision.core.classify import Classifier
from lambdavision.core.errors import ArtifactError
from lambdavision.runtime.artifact_files import read_artifact, read_serving_dir
from lambdavision.runtime.backends import backend_for
from lambdavision.runtime.model_source import S3Download, open_s3_artifact, resolve_model_uri, take_prefetch
from lambdavision.runtime.settings import Settings

__all__ = ["load_classifier", "open_artifact"]


def _import_inference_runtime() -> None:
    for name in ("numpy", "onnxruntime"):
        try:
            importlib.import_module(name)
        except Exception:  # the backend imports it again and reports what is wrong
            return


def open_artifact(uri: str, settings: Settings) -> Artifact:
    if uri.startswith("s3://"):
        return open_s3_artifact(uri, settings)
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
    settings = Settings.from_env(os.environ if environ is None else environ)
    uri = os.fspath(source) if source is not None else resolve_model_uri(settings)
    started = time.perf_counter()
    if uri.startswith("s3://"):
        # The download runs in a thread (started at the handler's import inside a Lambda runtime,
        # else now) while this one imports ONNX Runtime and numpy; its exception is raised here.
        download = take_prefetch(uri, settings) or S3Download(uri, settings)
        _import_inference_runtime()
        artifact = download.result()
    else:
        artifact = open_artifact(uri, settings)
    read = time.perf_counter()
    backend = backend_for(artifact, settings)
    if parts_ms is not None:
        parts_ms["artifact_ms"] = round((read - started) * 1000, 1)
        parts_ms["session_ms"] = round((time.perf_counter() - read) * 1000, 1)
    return Classifier(artifact.classes, artifact.preprocessing, backend, source=artifact.source, head=artifact.head)
