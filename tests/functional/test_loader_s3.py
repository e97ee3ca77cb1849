"""Loading the model from S3 (moto server): the guide's env vars, the ETag cache, clear failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdavision.core.errors import ArtifactError
from lambdavision.runtime import s3_boto3
from lambdavision.runtime.artifact_files import write_artifact
from lambdavision.runtime.loader import load_classifier
from lambdavision.runtime.model_source import resolve_model_uri
from lambdavision.runtime.settings import Settings
from tests.fixtures.colour import COLOUR_PREP, COLOURS, colour_image, colour_onnx


@pytest.fixture
def s3(aws_env: dict[str, str]) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="models")
    return client


@pytest.fixture
def get_object_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every GetObject the loader sends, counted by a botocore event hook."""
    calls: list[str] = []
    real = s3_boto3._s3_client

    def counting_client(environ: Any) -> Any:
        client = real(environ)
        client.meta.events.register("before-call.s3.GetObject", lambda **kw: calls.append(kw["model"].name))
        return client

    monkeypatch.setattr(s3_boto3, "_s3_client", counting_client)
    return calls


def test_guide_env_vars_load_and_cache_by_etag(
    s3: Any, colour_artifact: Path, tmp_path: Path, get_object_calls: list[str]
) -> None:
    s3.upload_file(str(colour_artifact), "models", "fastai-models/lesson1/model.tar.gz")
    env = {
        "MODEL_BUCKET": "models",
        "MODEL_KEY": "fastai-models/lesson1/model.tar.gz",
        "LAMBDAVISION_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    first = load_classifier(environ=env)
    assert first.classify([colour_image("red")])[0].label == "red"
    assert get_object_calls == ["GetObject"]
    # A second cold start (a new environment on the same machine) with the same ETag: no download.
    second = load_classifier(environ=env)
    assert second.classify([colour_image("blue")])[0].label == "blue"
    assert len(get_object_calls) == 1
    # The object replaced (new ETag): downloaded again.
    v2 = tmp_path / "v2.tar.gz"
    write_artifact(
        v2, classes=list(COLOURS), preprocessing=COLOUR_PREP, onnx=colour_onnx(), torchscript=None, extra={"v": 2}
    )
    s3.upload_file(str(v2), "models", "fastai-models/lesson1/model.tar.gz")
    load_classifier(environ=env)
    assert len(get_object_calls) == 2


def test_unwritable_cache_loads_from_memory(
    s3: Any, colour_artifact: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3.upload_file(str(colour_artifact), "models", "m.tar.gz")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    env = {"MODEL_URI": "s3://models/m.tar.gz", "LAMBDAVISION_CACHE_DIR": str(blocker / "cache")}
    classifier = load_classifier(environ=env)
    assert classifier.classify([colour_image("green")])[0].label == "green"
    assert "disk cache is unusable" in caplog.text


def test_missing_object_names_the_uri(s3: Any, tmp_path: Path) -> None:
    env = {"MODEL_BUCKET": "models", "MODEL_KEY": "nope.tar.gz", "LAMBDAVISION_CACHE_DIR": str(tmp_path)}
    with pytest.raises(ArtifactError, match=r"s3://models/nope\.tar\.gz"):
        load_classifier(environ=env)


def test_corrupt_artifact_on_s3_is_refused(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket="models", Key="bad.tar.gz", Body=b"this is not a tarball")
    with pytest.raises(ArtifactError):
        load_classifier(environ={"MODEL_URI": "s3://models/bad.tar.gz", "LAMBDAVISION_CACHE_DIR": str(tmp_path)})


def test_resolution_order(tmp_path: Path) -> None:
    (tmp_path / "model.tar.gz").write_bytes(b"x")
    assert (
        resolve_model_uri(Settings.from_env({"MODEL_URI": "s3://a/b", "LAMBDA_TASK_ROOT": str(tmp_path)})) == "s3://a/b"
    )
    bundled = {"LAMBDA_TASK_ROOT": str(tmp_path), "MODEL_BUCKET": "a", "MODEL_KEY": "b"}
    assert resolve_model_uri(Settings.from_env(bundled)) == str(tmp_path / "model.tar.gz")
    assert resolve_model_uri(Settings.from_env({"MODEL_BUCKET": "a", "MODEL_KEY": "k/m.tar.gz"})) == "s3://a/k/m.tar.gz"
    with pytest.raises(ArtifactError, match="MODEL_BUCKET"):
        resolve_model_uri(Settings.from_env({}))


def test_file_uri_and_missing_file(colour_artifact: Path, tmp_path: Path) -> None:
    assert load_classifier(colour_artifact.as_uri()).classes == ["red", "green", "blue"]
    with pytest.raises(ArtifactError, match="no such model file"):
        load_classifier(tmp_path / "missing.tar.gz")
