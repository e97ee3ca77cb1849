"""The guide's classic tarball keeps working, and JPEG draft decoding keeps the demo's answers."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lambdavision.core.errors import ArtifactError
from lambdavision.runtime.artifact_files import read_artifact
from lambdavision.runtime.loader import load_classifier
from lambdavision.runtime.torchscript import TorchScriptBackend
from tests.unit.test_preprocess import photo_like, torch_reference


def _guide_app_probabilities(pth: bytes, rgb: np.ndarray) -> np.ndarray:
    """The reference: what the guide's app computes, in torch, from the source pixels (no lambdavision)."""
    import torch

    model = torch.jit.load(io.BytesIO(pth))
    with torch.no_grad():
        logits = model(torch.from_numpy(torch_reference(rgb))[None])
    return torch.softmax(logits, dim=1)[0].numpy().astype(np.float64)


def test_classic_tarball_and_its_conversion_answer_as_the_guides_app(
    classic_artifact: Path, converted_classic_artifact: Path
) -> None:
    with tarfile.open(classic_artifact) as tar:  # read with tarfile, not lambdavision's reader
        member = tar.extractfile("resnet50_jit.pth")
        assert member is not None
        pth = member.read()
        member = tar.extractfile("classes.txt")
        assert member is not None
        classes = member.read().decode().split()
    classic = load_classifier(classic_artifact, environ={})
    converted = load_classifier(converted_classic_artifact, environ={})
    assert classic.backend.name == "torchscript" and converted.backend.name == "onnxruntime"
    assert classic.classes == converted.classes == classes  # decoded text, never "b'cat'"
    for seed in range(4):
        rgb = photo_like(320, 240, seed=seed)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "PNG")  # lossless: both sides see the same pixels
        expected = _guide_app_probabilities(pth, rgb)
        for served in (classic, converted):
            (answer,) = served.classify([buffer.getvalue()], topk=len(classes))
            got = np.array([dict(answer.top)[name] for name in classes])
            # Preprocessing agrees with torch's to 1e-2 a pixel (test_preprocess): probabilities closely.
            assert np.abs(got - expected).max() <= 0.01, (served.backend.name, got, expected)
            ranked = np.sort(expected)
            if ranked[-1] - ranked[-2] > 0.02:  # a clear winner must be the same class
                assert answer.label == classes[int(np.argmax(expected))]


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
    demo_artifact: Path, demo_samples: list[tuple[Path, str]], tmp_path: Path
) -> None:
    """Large JPEGs decode at a reduced scale; the answer stays that of a full decode run by ONNX Runtime
    directly (the graph and weights taken out with tarfile, torch's preprocessing): no lambdavision code."""
    import onnxruntime

    with tarfile.open(demo_artifact) as tar:
        for name in ("model.onnx", "model.onnx.data"):
            member = tar.extractfile(name)
            assert member is not None
            (tmp_path / name).write_bytes(member.read())
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    classifier = load_classifier(demo_artifact, environ={})
    prep = classifier.preprocessing
    large = [(p, c) for p, c in demo_samples if p.suffix == ".jpg" and Image.open(p).width >= 2000]
    assert large
    for path, expected in large:
        drafted = classifier.classify([path.read_bytes()], topk=len(classifier.classes))[0]
        full = np.asarray(Image.open(path).convert("RGB"))
        (logits,) = session.run(None, {session.get_inputs()[0].name: torch_reference(full, prep)[None]})
        reference = np.exp(logits[0] - logits[0].max())
        reference /= reference.sum()
        assert drafted.label == classifier.classes[int(np.argmax(reference))] == expected
        got = np.array([dict(drafted.top)[name] for name in classifier.classes])
        assert np.abs(got - reference).max() <= 0.02  # the photo check's tolerance (README)
