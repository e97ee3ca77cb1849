"""Format-2 artifacts: the weights in model.onnx.data, memory-mapped from a serving folder or given
to ONNX Runtime from memory, with the same answers either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from lambdavision.core.artifact import ONNX_DATA_NAME, ONNX_NAME, Artifact
from lambdavision.core.errors import ArtifactError
from lambdavision.runtime.artifact_files import read_artifact, read_serving_dir, unpack_for_serving, write_artifact
from lambdavision.runtime.loader import load_classifier
from tests.fixtures.models import TINY_INPUT_SIZE


def write_repointed(source: Artifact, out: Path, location: str, *, weights: bytes | None) -> Path:
    """`source` written again with every external tensor of its graph pointing at `location`."""
    assert source.onnx is not None
    graph = onnx.load_from_string(source.onnx)
    for tensor in graph.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    write_artifact(
        out,
        classes=source.classes,
        preprocessing=source.preprocessing,
        onnx=graph.SerializeToString(),
        onnx_data=weights,
        torchscript=None,
    )
    return out


def random_inputs(n: int) -> np.ndarray:
    return np.random.default_rng(7).normal(size=(n, 3, TINY_INPUT_SIZE, TINY_INPUT_SIZE)).astype(np.float32)


def test_a_serving_folder_holds_the_weights_file_and_answers_like_memory(tiny_artifact: Path, tmp_path: Path) -> None:
    served = unpack_for_serving(tiny_artifact, tmp_path / "served")
    assert sorted(p.name for p in (tmp_path / "served").iterdir()) == [
        "classes.txt",
        "lambdavision.json",
        ONNX_NAME,
        ONNX_DATA_NAME,
    ]
    in_memory = read_artifact(tiny_artifact)
    assert in_memory.onnx_data is not None
    assert (tmp_path / "served" / ONNX_DATA_NAME).read_bytes() == in_memory.onnx_data
    assert served.onnx_path is not None

    by_path = load_classifier(tmp_path / "served", environ={})
    from_memory = load_classifier(tiny_artifact, environ={})
    batch = random_inputs(4)
    expected = [p.to_dict() for p in from_memory.predict_arrays(batch, topk=3)]
    assert [p.to_dict() for p in by_path.predict_arrays(batch, topk=3)] == expected
    assert len({p["class"] for p in expected}) >= 1


def test_a_serving_folder_without_its_weights_is_refused(tiny_artifact: Path, tmp_path: Path) -> None:
    unpack_for_serving(tiny_artifact, tmp_path / "served")
    (tmp_path / "served" / ONNX_DATA_NAME).unlink()
    with pytest.raises(ArtifactError, match=r"model\.onnx\.data is missing from the serving folder"):
        read_serving_dir(tmp_path / "served")


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/hostname"])
def test_a_graph_pointing_outside_its_folder_is_refused(tiny_artifact: Path, tmp_path: Path, location: str) -> None:
    """The graph names its weights file; ONNX Runtime refuses one outside the model's folder."""
    source = read_artifact(tiny_artifact)
    (tmp_path / "outside.bin").write_bytes(source.onnx_data or b"")
    out = write_repointed(source, tmp_path / "evil.tar.gz", location, weights=source.onnx_data)
    unpack_for_serving(out, tmp_path / "served")
    with pytest.raises(ArtifactError, match=r"model\.onnx cannot be loaded by ONNX Runtime"):
        load_classifier(tmp_path / "served", environ={})


@pytest.mark.parametrize("location", ["secret.bin", ONNX_DATA_NAME])
def test_a_model_read_into_memory_never_takes_weights_from_the_working_directory(
    tiny_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    """From bytes ONNX Runtime resolves a graph's external data against the working directory: a
    (format 1) artifact naming a file there, which it does not carry, must not load it."""
    source = read_artifact(tiny_artifact)
    assert source.onnx_data is not None
    # No model.onnx.data member: a format 1 manifest whose graph still names an external file.
    hostile = write_repointed(source, tmp_path / "hostile.tar.gz", location, weights=None)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    (workdir / location).write_bytes(source.onnx_data)  # the real weights, where the graph points
    monkeypatch.chdir(workdir)
    with pytest.raises(ArtifactError, match=r"model\.onnx cannot be loaded by ONNX Runtime"):
        load_classifier(hostile, environ={})


def test_unpacking_over_a_folder_that_holds_another_model_is_refused(
    tiny_artifact: Path, demo_artifact: Path, tmp_path: Path
) -> None:
    unpack_for_serving(tiny_artifact, tmp_path / "model")
    again = unpack_for_serving(tiny_artifact, tmp_path / "model")  # the same model: that copy serves
    assert again.classes == read_artifact(tiny_artifact).classes
    with pytest.raises(ArtifactError, match=r"already holds another model"):
        unpack_for_serving(demo_artifact, tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left behind
