"""The guide's classic tarball keeps working, and JPEG draft decoding keeps the demo's answers."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lambdavision.core.errors import ArtifactError
from lambdavision.runtime.artifact_files import read_artifact
from lambdavision.runtime.loader import load_classifier
from lambdavision.runtime.torchscript import TorchScriptBackend
from tests.unit.test_preprocess import photo_like, torch_reference


def test_classic_tarball_answers_like_its_converted_artifact(
    classic_artifact: Path, converted_classic_artifact: Path
) -> None:
    classic = load_classifier(classic_artifact, environ={})
    converted = load_classifier(converted_classic_artifact, environ={})
    assert classic.backend.name == "torchscript" and converted.backend.name == "onnxruntime"
    assert classic.classes == converted.classes  # decoded text, never "b'cat'"
    for seed in range(4):
        buffer = io.BytesIO()
        Image.fromarray(photo_like(320, 240, seed=seed)).save(buffer, "JPEG")
        (a,) = classic.classify([buffer.getvalue()])
        (b,) = converted.classify([buffer.getvalue()])
        assert a.label == b.label
        assert abs(a.confidence - b.confidence) <= 1e-4


def test_torchscript_without_torch_says_what_to_do(classic_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    artifact = read_artifact(classic_artifact)
    assert artifact.torchscript is not None
    monkeypatch.setitem(sys.modules, "torch", None)  # as on Lambda: no torch
    with pytest.raises(ArtifactError, match=r"needs torch: run `lambdavision convert.*lambdavision\[export\]"):
        TorchScriptBackend(artifact.torchscript, str(classic_artifact), 224)
    # Inside a Lambda function (deployed, or the built package run locally) only converting helps.
    with pytest.raises(ArtifactError) as inside:
        TorchScriptBackend(artifact.torchscript, "s3://b/k", 224, in_lambda=True)
    assert "a Lambda package carries no torch" in inside.value.message and "pip install" not in inside.value.message


def test_draft_decoding_keeps_the_demo_models_top_class(
    demo_artifact: Path, demo_samples: list[tuple[Path, str]]
) -> None:
    """Large JPEGs decode at a reduced scale; the answer equals a full decode + torch's arithmetic."""
    classifier = load_classifier(demo_artifact, environ={})
    prep = classifier.preprocessing
    large = [(p, c) for p, c in demo_samples if p.suffix == ".jpg" and Image.open(p).width >= 2000]
    assert large
    for path, expected in large:
        data = path.read_bytes()
        drafted = classifier.classify([data])[0]
        full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        reference = classifier.predict_arrays(torch_reference(full, prep)[None].astype(np.float32))[0]
        assert drafted.label == reference.label == expected
