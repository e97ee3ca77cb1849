"""Serving folders: an artifact unpacked once (S3 cache, bundled model) and loaded by path."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lambdavision.core.errors import ArtifactError, CacheWriteError
from lambdavision.runtime.artifact_files import read_artifact, read_serving_dir, unpack_for_serving
from lambdavision.runtime.loader import load_classifier
from lambdavision.runtime.model_source import resolve_model_uri
from lambdavision.runtime.settings import Settings
from tests.fixtures.colour import colour_image


def test_unpack_writes_only_what_serving_needs(colour_artifact: Path, tmp_path: Path) -> None:
    artifact = unpack_for_serving(colour_artifact, tmp_path / "served")
    assert sorted(p.name for p in (tmp_path / "served").iterdir()) == ["classes.txt", "lambdavision.json", "model.onnx"]
    assert artifact.onnx is None and artifact.onnx_path == tmp_path / "served" / "model.onnx"
    assert artifact.onnx_path.read_bytes() == read_artifact(colour_artifact).onnx
    assert [p.name for p in tmp_path.iterdir()] == ["served"]  # no staging folder left behind
    again = read_serving_dir(tmp_path / "served")
    assert again.classes == ["red", "green", "blue"]
    assert again.preprocessing == artifact.preprocessing


def test_unpack_streams_from_a_file_object(colour_artifact: Path, tmp_path: Path) -> None:
    artifact = unpack_for_serving(io.BytesIO(colour_artifact.read_bytes()), tmp_path / "m")
    assert artifact.onnx_path is not None and artifact.onnx_path.is_file()


def test_a_corrupt_artifact_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        unpack_for_serving(io.BytesIO(b"not a tarball"), tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_place_is_a_cache_write_error(colour_artifact: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CacheWriteError):
        unpack_for_serving(colour_artifact, blocker / "m")


def test_serving_dir_refusals(colour_artifact: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    unpack_for_serving(colour_artifact, folder)
    (folder / "classes.txt").write_text("red\ngreen\n")
    with pytest.raises(ArtifactError, match="2 classes"):
        read_serving_dir(folder)
    (folder / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"model\.onnx is missing"):
        read_serving_dir(folder)


def test_a_bundled_folder_wins_and_classifies(colour_artifact: Path, tmp_path: Path) -> None:
    unpack_for_serving(colour_artifact, tmp_path / "model")
    env = {"LAMBDA_TASK_ROOT": str(tmp_path), "MODEL_BUCKET": "b", "MODEL_KEY": "k"}
    assert resolve_model_uri(Settings.from_env(env)) == str(tmp_path / "model")
    classifier = load_classifier(environ=env)
    assert classifier.classify([colour_image("blue")])[0].label == "blue"
