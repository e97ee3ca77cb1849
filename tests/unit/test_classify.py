"""Classifier: softmax, top-k, batches, class-count check, plain Python results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lambdavision.core.classify import Classifier, softmax
from lambdavision.core.errors import ArtifactError, BadRequest, UnsupportedMediaType
from lambdavision.runtime.backends import OnnxBackend
from lambdavision.runtime.loader import load_classifier
from lambdavision.runtime.settings import Settings
from tests.fixtures.colour import COLOUR_PREP, colour_image, colour_onnx


def test_softmax_is_stable_and_normalised() -> None:
    probs = softmax(np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(probs[0], [0.5, 0.5, 0.0])


def test_batch_in_one_forward_with_plain_types(colour_artifact: Path) -> None:
    classifier = load_classifier(colour_artifact)
    preds = classifier.classify([colour_image("red"), colour_image("blue"), colour_image("green")], topk=2)
    assert [p.label for p in preds] == ["red", "blue", "green"]
    assert all(type(p.confidence) is float for p in preds)
    assert all(len(p.top) == 2 for p in preds)
    json.dumps([p.to_dict() for p in preds])  # serialisable as Lambda's runtime client needs


def test_classify_each_isolates_bad_images(colour_artifact: Path) -> None:
    classifier = load_classifier(colour_artifact)
    results = classifier.classify_each([colour_image("red"), b"not an image", colour_image("blue")])
    assert results[0].label == "red"  # type: ignore[union-attr]
    assert isinstance(results[1], UnsupportedMediaType)
    assert results[2].label == "blue"  # type: ignore[union-attr]


def test_class_count_must_match_model_width() -> None:
    backend = OnnxBackend(colour_onnx(num_outputs=4), "bad.tar.gz")
    with pytest.raises(ArtifactError, match=r"bad\.tar\.gz.*3 names.*outputs 4"):
        Classifier(["a", "b", "c"], COLOUR_PREP, backend, source="bad.tar.gz")


def test_corrupt_onnx_is_an_artifact_error() -> None:
    with pytest.raises(ArtifactError, match=r"model\.onnx cannot be loaded"):
        OnnxBackend(b"definitely not onnx", "x.tar.gz")


@pytest.mark.parametrize("topk", [0, -1, True, 1.5])
def test_bad_topk(colour_artifact: Path, topk: object) -> None:
    with pytest.raises(BadRequest):
        load_classifier(colour_artifact).check_topk(topk)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}, 1),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}, 1),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}, 2),
        ({"LAMBDAVISION_THREADS": "3", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}, 3),
    ],
)
def test_threads_follow_lambda_vcpus(
    env: dict[str, str], expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert Settings.from_env(env).threads == expected


def test_a_sigmoid_head_answers_every_label_over_its_threshold() -> None:
    from lambdavision.core.classify import Classifier
    from lambdavision.core.head import Head
    from lambdavision.core.preprocess import Preprocessing

    class Fixed:
        name = "fixed"
        output_width = 3

        def run(self, batch: np.ndarray) -> np.ndarray:
            return np.array([[2.0, -0.2, 0.1], [-3.0, -2.0, -4.0]])[: len(batch)]

    classifier = Classifier(["cat", "dog", "fish"], Preprocessing(), Fixed(), head=Head("sigmoid", 0.5))
    first, second = classifier.predict_arrays(np.zeros((2, 3, 4, 4), np.float32), topk=2)
    assert first.to_dict() == {
        "class": "cat",
        "confidence": pytest.approx(1 / (1 + np.exp(-2.0))),
        "predictions": [
            {"class": "cat", "confidence": pytest.approx(1 / (1 + np.exp(-2.0)))},
            {"class": "fish", "confidence": pytest.approx(1 / (1 + np.exp(-0.1)))},
        ],
        "labels": [
            {"class": "cat", "confidence": pytest.approx(1 / (1 + np.exp(-2.0)))},
            {"class": "fish", "confidence": pytest.approx(1 / (1 + np.exp(-0.1)))},
        ],
        "threshold": 0.5,
    }
    assert second.to_dict()["labels"] == []  # nothing over the threshold: no label, still a top class
    assert second.label == "dog"
    single = Classifier(["cat", "dog", "fish"], Preprocessing(), Fixed())
    assert "labels" not in single.predict_arrays(np.zeros((1, 3, 4, 4), np.float32))[0].to_dict()
