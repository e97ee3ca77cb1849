"""The model on S3 starts downloading at the handler's import inside a Lambda runtime, before the
heavy imports, and load_classifier takes that download instead of starting another."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from lambdavision.core import sigv4
from lambdavision.core.errors import ArtifactError
from lambdavision.runtime import model_source, s3get
from lambdavision.runtime.loader import load_classifier
from lambdavision.runtime.settings import Settings
from tests.fixtures.colour import colour_image

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "prefetched-models"
URI = f"s3://{BUCKET}/colour/model.tar.gz"


@pytest.fixture
def function_env(aws_env: dict[str, str], tmp_path: Path, colour_artifact: Path) -> dict[str, str]:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.upload_file(str(colour_artifact), BUCKET, "colour/model.tar.gz")
    return {**aws_env, "MODEL_URI": URI, "LAMBDAVISION_CACHE_DIR": str(tmp_path / "cache")}


@pytest.fixture
def gets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URL of every signed GET sent."""
    urls: list[str] = []
    real = s3get.open_get

    def recording(request: sigv4.GetRequest) -> s3get.S3Object:
        urls.append(request.url)
        return real(request)

    monkeypatch.setattr(s3get, "open_get", recording)
    monkeypatch.setattr(model_source, "_prefetched", None)
    return urls


def test_the_load_takes_the_prefetched_download(function_env: dict[str, str], gets: list[str]) -> None:
    model_source.start_prefetch(function_env)
    classifier = load_classifier(environ=function_env)
    assert classifier.classify([colour_image("green")])[0].label == "green"
    assert classifier.source == URI
    assert len(gets) == 1  # the prefetch's GET, not a second one
    assert model_source.take_prefetch(URI, Settings.from_env(function_env)) is None  # taken once


def test_a_failed_prefetch_fails_the_load_in_its_own_words(function_env: dict[str, str], gets: list[str]) -> None:
    env = {**function_env, "MODEL_URI": f"s3://{BUCKET}/missing.tar.gz"}
    model_source.start_prefetch(env)
    with pytest.raises(ArtifactError, match=r"s3://prefetched-models/missing\.tar\.gz.*NoSuchKey"):
        load_classifier(environ=env)
    assert len(gets) == 1


def test_another_environment_does_not_take_it(function_env: dict[str, str], gets: list[str]) -> None:
    model_source.start_prefetch(function_env)
    other = {**function_env, "LAMBDAVISION_S3_TIMEOUT": "4.5"}  # other settings: not the prefetch's
    assert load_classifier(environ=other).classify([colour_image("red")])[0].label == "red"
    assert len(gets) == 2  # the prefetch's GET, then the load's own
    assert model_source.take_prefetch(URI, Settings.from_env(function_env)) is None  # dropped, not left behind


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"MODEL_URI": ""}, id="no model configured"),
        pytest.param({"MODEL_URI": "s3://bucket-only"}, id="malformed URI"),
        pytest.param({"AWS_ACCESS_KEY_ID": ""}, id="no credentials: boto3's job"),
        pytest.param({"MODEL_URI": "/var/task/model"}, id="not on S3"),
    ],
)
def test_nothing_is_prefetched_when_it_cannot_help(
    function_env: dict[str, str], gets: list[str], change: dict[str, str]
) -> None:
    env = {k: v for k, v in {**function_env, **change}.items() if v}
    model_source.start_prefetch(env)
    assert model_source._prefetched is None
    assert gets == []


def test_the_handler_starts_it_before_numpy_pillow_and_onnxruntime(function_env: dict[str, str]) -> None:
    """Imported as a Lambda runtime imports it, the handler starts the download first, then loads."""
    script = (
        "import json, sys\n"
        "from lambdavision.runtime import model_source\n"
        "seen = []\n"
        "real = model_source.start_prefetch\n"
        "def spy(environ):\n"
        "    seen.append(sorted(m for m in ('numpy', 'PIL', 'onnxruntime') if m in sys.modules))\n"
        "    real(environ)\n"
        "    seen.append(model_source._prefetched is not None)\n"
        "model_source.start_prefetch = spy\n"
        "import lambdavision.handler as handler\n"
        "app = handler._app\n"
        "print(json.dumps({'seen': seen, 'loaded': app is not None and app.classifier.source,\n"
        "    'left': model_source._prefetched is None, 'boto3': 'boto3' in sys.modules}))\n"
    )
    env = {**function_env, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}  # never called: nothing is invoked
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer == {"seen": [[], True], "loaded": URI, "left": True, "boto3": False}
