"""The committed demo model classifies the committed sample images correctly, through the same
loader and Classifier the Lambda function uses."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from lambdavision.core.classify import Classifier
from lambdavision.runtime.artifact_files import read_artifact
from lambdavision.runtime.loader import load_classifier


@pytest.fixture(scope="module")
def demo_classifier(demo_artifact: Path) -> Classifier:
    return load_classifier(demo_artifact, environ={})


def test_demo_artifact_is_small_and_complete(demo_artifact: Path) -> None:
    assert demo_artifact.stat().st_size < 5 * 1024 * 1024
    artifact = read_artifact(demo_artifact, want_torchscript=True)
    assert artifact.manifest is not None
    assert artifact.onnx is not None
    assert artifact.torchscript is not None
    assert artifact.classes == ["circle", "cross", "square", "star", "triangle"]


def test_samples_cover_every_class_in_both_formats(demo_artifact: Path, demo_samples: list[tuple[Path, str]]) -> None:
    classes = read_artifact(demo_artifact).classes
    assert {label for _, label in demo_samples} == set(classes)
    formats = {(label, Image.open(path).format) for path, label in demo_samples}
    assert {(label, fmt) for label in classes for fmt in ("JPEG", "PNG")} <= formats
    # One photo-sized JPEG, so JPEG draft mode is exercised.
    assert max(Image.open(path).width for path, _ in demo_samples) >= 2000


def test_each_sample_is_classified_correctly(demo_classifier: Classifier, demo_samples: list[tuple[Path, str]]) -> None:
    for path, expected in demo_samples:
        (prediction,) = demo_classifier.classify([path.read_bytes()], topk=3)
        assert prediction.label == expected, f"{path.name}: {prediction.top}"
        assert prediction.confidence > 0.5, f"{path.name}: {prediction.top}"
        assert len(prediction.top) == 3
        assert prediction.top[0] == (prediction.label, prediction.confidence)


def test_all_samples_in_one_batch(demo_classifier: Classifier, demo_samples: list[tuple[Path, str]]) -> None:
    predictions = demo_classifier.classify([path.read_bytes() for path, _ in demo_samples], topk=1)
    assert [p.label for p in predictions] == [label for _, label in demo_samples]


def test_a_re_encoded_sample_still_classifies(
    demo_classifier: Classifier, demo_samples: list[tuple[Path, str]]
) -> None:
    """WebP, another format the API accepts, reaches the same answer."""
    path, expected = next((p, c) for p, c in demo_samples if p.suffix == ".png")
    buffer = io.BytesIO()
    Image.open(path).save(buffer, "WEBP", quality=90)
    (prediction,) = demo_classifier.classify([buffer.getvalue()])
    assert prediction.label == expected
