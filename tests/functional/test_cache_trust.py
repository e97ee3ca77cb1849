"""Issue 14.6: a cached model folder is re-checked before it is served, and its parent is private.

The model comes from moto's S3 through the real loader; the cached copy is then edited on disk
(the class list, the weights) as someone with access to /tmp could, and the next load must not
serve the edit. The cache parent must be this user's alone.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import boto3
import numpy as np
import onnx
import pytest

from lambdavision.runtime.artifact_files import write_artifact
from lambdavision.runtime.loader import load_classifier
from lambdavision.runtime.settings import Settings
from tests.fixtures.colour import COLOUR_PREP, COLOURS, colour_image, colour_onnx

BUCKET = "models"
KEY = "trust/model.tar.gz"


@pytest.fixture(scope="module")
def external_weights_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The colour model in format 2: its 3x3 weight matrix in model.onnx.data."""
    folder = tmp_path_factory.mktemp("format2")
    model = onnx.load_from_string(colour_onnx())
    onnx.save_model(
        model, folder / "model.onnx", save_as_external_data=True, location="model.onnx.data", size_threshold=0
    )
    path = folder / "model.tar.gz"
    write_artifact(
        path,
        classes=list(COLOURS),
        preprocessing=COLOUR_PREP,
        onnx=(folder / "model.onnx").read_bytes(),
        onnx_data=(folder / "model.onnx.data").read_bytes(),
        torchscript=None,
    )
    return path


@pytest.fixture
def env(aws_env: dict[str, str], tmp_path: Path, external_weights_artifact: Path) -> dict[str, str]:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("s3").upload_file(str(external_weights_artifact), BUCKET, KEY)
    return {**aws_env, "MODEL_URI": f"s3://{BUCKET}/{KEY}", "LAMBDAVISION_CACHE_DIR": str(tmp_path / "cache")}


def cached_folder(env: dict[str, str]) -> Path:
    [folder] = [p.parent for p in Path(env["LAMBDAVISION_CACHE_DIR"]).glob("*/lambdavision.json")]
    return folder


def labels(env: dict[str, str]) -> list[str]:
    classifier = load_classifier(environ=env)
    assert classifier.source.startswith("s3://")
    return [p.label for p in classifier.classify([colour_image(name) for name in COLOURS])]


def test_a_fresh_cache_parent_is_created_private(env: dict[str, str]) -> None:
    assert labels(env) == list(COLOURS)
    mode = stat.S_IMODE(os.stat(env["LAMBDAVISION_CACHE_DIR"]).st_mode)
    assert mode == 0o700


def test_the_default_cache_parent_is_this_users() -> None:
    assert Settings.from_env({}).cache_dir.name == f"lambdavision-cache-{os.getuid()}"


def test_an_edited_class_list_is_not_served(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    assert labels(env) == ["red", "green", "blue"]
    classes = cached_folder(env) / "classes.txt"
    before = os.stat(classes)
    classes.write_text("green\nred\nblue\n")  # same size; the times put back as they were
    os.utime(classes, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert labels(env) == ["red", "green", "blue"]
    assert "cannot be trusted (classes.txt changed (sha256))" in caplog.text
    assert (cached_folder(env) / "classes.txt").read_text() == "red\ngreen\nblue\n"  # downloaded again


def test_edited_weights_are_not_served(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    assert labels(env) == ["red", "green", "blue"]
    weights = cached_folder(env) / "model.onnx.data"
    matrix = np.frombuffer(weights.read_bytes(), dtype=np.float32).reshape(3, 3)
    weights.write_bytes(np.ascontiguousarray(matrix[:, ::-1]).tobytes())  # red <-> blue, same size
    assert labels(env) == ["red", "green", "blue"]
    assert "model.onnx.data changed" in caplog.text


def test_a_file_planted_in_the_copy_is_not_served(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    assert labels(env) == ["red", "green", "blue"]
    (cached_folder(env) / "evil.onnx.data").write_bytes(b"x")
    assert labels(env) == ["red", "green", "blue"]
    assert "files were added (evil.onnx.data)" in caplog.text
    assert not (cached_folder(env) / "evil.onnx.data").exists()


def _foreign(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `folder` someone else's: chown it when root may, else be another user ourselves."""
    if os.getuid() == 0:
        os.chown(folder, 65534, 65534)
    else:
        real = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real + 1)


@pytest.mark.parametrize("attack", ["someone else's", "writable by others"])
def test_an_unsafe_cache_parent_is_refused(
    env: dict[str, str], attack: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    parent = Path(env["LAMBDAVISION_CACHE_DIR"])
    parent.mkdir(mode=0o700)
    if attack == "writable by others":
        parent.chmod(0o777)
    else:
        _foreign(parent, monkeypatch)
    assert labels(env) == ["red", "green", "blue"]  # served, from memory
    assert "disk cache is unusable" in caplog.text
    assert list(parent.iterdir()) == []  # nothing written into it

    # A copy planted there is never trusted either.
    monkeypatch.undo()
    parent.chmod(0o700)
    if os.getuid() == 0:
        os.chown(parent, 0, 0)
    labels(env)  # a real copy, sealed
    if attack == "writable by others":
        parent.chmod(0o777)
    else:
        _foreign(parent, monkeypatch)
    caplog.clear()
    assert labels(env) == ["red", "green", "blue"]
    assert "not using the disk cache" in caplog.text


def test_a_copy_without_a_seal_is_downloaded_again(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    labels(env)
    (cached_folder(env) / ".lambdavision-seal.json").unlink()  # as an older lambdavision left it
    assert labels(env) == ["red", "green", "blue"]
    assert "it has no seal" in caplog.text
    assert (cached_folder(env) / ".lambdavision-seal.json").is_file()
