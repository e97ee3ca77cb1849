"""export() (torch.export-based ONNX) and convert / `export --torchscript` (TorchScript-based ONNX):
what they write, that the copies agree with the model, and what they refuse."""

from __future__ import annotations

import importlib.util
import io
import random
import re
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from lambdavision.cli import cli
from lambdavision.core.artifact import (
    CLASSES_NAME,
    MANIFEST_NAME,
    ONNX_DATA_NAME,
    ONNX_NAME,
    Artifact,
    read_artifact,
)
from lambdavision.core.errors import ArtifactError
from lambdavision.core.preprocess import Preprocessing
from lambdavision.export import ExportError, convert, export, measure_agreement
from lambdavision.loader import load_classifier
from lambdavision.quantize import load_image_dir, quantize_int8
from lambdavision.zoo import resnet50, small_cnn
from tests.fixtures.models import REPO, TINY_CLASSES, TINY_INPUT_SIZE


def onnx_logits(artifact: Artifact, batch: np.ndarray) -> np.ndarray:
    """The artifact's ONNX model run by ONNX Runtime directly, its weights file given in memory."""
    assert artifact.onnx is not None
    options = ort.SessionOptions()
    if artifact.onnx_data is not None:
        weights = np.frombuffer(artifact.onnx_data, dtype=np.uint8)
        options.add_external_initializers_from_files_in_memory([ONNX_DATA_NAME], [weights], [len(weights)])
    session = ort.InferenceSession(artifact.onnx, options, providers=["CPUExecutionProvider"])
    result: np.ndarray = session.run(None, {session.get_inputs()[0].name: batch})[0]
    return result


def torchscript_logits(pth: bytes | None, batch: np.ndarray) -> np.ndarray:
    assert pth is not None
    module = torch.jit.load(io.BytesIO(pth), map_location="cpu")
    with torch.no_grad():
        result: np.ndarray = module(torch.from_numpy(batch)).numpy()
    return result


def eager_logits(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        result: np.ndarray = model(torch.from_numpy(batch)).numpy()
    return result


def random_batch(n: int, size: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def assert_agree(expected: np.ndarray, actual: np.ndarray) -> None:
    agreement = measure_agreement(expected, actual)
    assert agreement.ok, agreement


def member_names(path: Path) -> list[str]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getnames()


# --- export(): a live nn.Module, the torch.export-based exporter ------------------------------------


def test_export_writes_the_full_layout(tiny_artifact: Path, tiny_model: nn.Module) -> None:
    assert member_names(tiny_artifact) == [MANIFEST_NAME, CLASSES_NAME, ONNX_NAME, ONNX_DATA_NAME, "model.pth"]
    artifact = read_artifact(tiny_artifact, want_torchscript=True)
    assert artifact.classes == TINY_CLASSES
    assert artifact.manifest is not None
    assert artifact.manifest.num_classes == 3
    assert artifact.preprocessing == Preprocessing(input_size=32, resize_size=37)
    assert artifact.manifest.extra["onnx_exporter"] == "dynamo"
    assert artifact.manifest.extra["opset"] >= 17

    # Checked independently of export()'s own check, on other inputs and batch sizes.
    for n in (1, 5):
        batch = random_batch(n, TINY_INPUT_SIZE)
        expected = eager_logits(tiny_model, batch)
        assert_agree(expected, onnx_logits(artifact, batch))
        assert_agree(expected, torchscript_logits(artifact.torchscript, batch))


def test_export_keeps_the_weights_in_the_artifacts_own_data_file(tmp_path: Path, tiny_model: nn.Module) -> None:
    """Format 2: the graph refers to its weights as `model.onnx.data`, a member of the tarball, and
    nothing is left beside the artifact (torch 2.13's exporter writes a side file by default)."""
    out = tmp_path / "out" / "model.tar.gz"
    manifest = export(tiny_model, TINY_CLASSES, out, input_size=TINY_INPUT_SIZE, torchscript=False)
    assert manifest.format_version == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.tar.gz"]
    assert member_names(out) == [MANIFEST_NAME, CLASSES_NAME, ONNX_NAME, ONNX_DATA_NAME]
    artifact = read_artifact(out)
    assert artifact.onnx is not None and artifact.onnx_data is not None
    graph = onnx.load_from_string(artifact.onnx)
    external = [t for t in graph.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external, "no initializer was moved out of the graph"
    locations = {e.value for t in external for e in t.external_data if e.key == "location"}
    assert locations == {ONNX_DATA_NAME}
    assert len(artifact.onnx_data) > len(artifact.onnx)  # the weights, not the graph, are the bulk
    assert onnx_logits(artifact, random_batch(2, TINY_INPUT_SIZE)).shape == (2, 3)


def test_export_leaves_the_callers_model_alone(tmp_path: Path) -> None:
    model = small_cnn(3, width=4).train()
    export(model, ["a", "b", "c"], tmp_path / "m.tar.gz", input_size=16, resize_size=16, torchscript=False)
    assert model.training


@pytest.mark.parametrize(
    "learner",
    [
        pytest.param(lambda m: SimpleNamespace(model=m, dls=SimpleNamespace(vocab=["x", "y"])), id="fastai-v2"),
        pytest.param(lambda m: SimpleNamespace(model=m, data=SimpleNamespace(classes=["x", "y"])), id="fastai-v1"),
    ],
)
def test_export_a_fastai_style_learner_takes_its_vocab(tmp_path: Path, learner: Any) -> None:
    out = tmp_path / "model.tar.gz"
    fastai_was_imported = "fastai" in sys.modules  # by another test of this process
    manifest = export(
        learner(small_cnn(2, width=4)), out_path=out, input_size=16, mean=(0.5, 0.5, 0.5), torchscript=False
    )
    assert manifest.num_classes == 2
    assert manifest.preprocessing.mean == (0.5, 0.5, 0.5)
    assert read_artifact(out).classes == ["x", "y"]
    assert fastai_was_imported or "fastai" not in sys.modules  # a Learner-like object never imports fastai


def test_export_refuses_a_class_count_other_than_the_output_width(tmp_path: Path, tiny_model: nn.Module) -> None:
    out = tmp_path / "model.tar.gz"
    with pytest.raises(ExportError, match="the model outputs 3 logits but there are 2 class names"):
        export(tiny_model, ["a", "b"], out, input_size=TINY_INPUT_SIZE)
    assert not out.exists()


class NoisyModel(nn.Module):
    """Answers differently on every call: no exported copy can agree with it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) + torch.randn(x.shape[0], 3) * 10


def test_export_refuses_when_onnx_disagrees(tmp_path: Path) -> None:
    out = tmp_path / "model.tar.gz"
    with pytest.raises(ExportError, match=r"ONNX copy disagrees with the model, refusing to write the artifact"):
        export(NoisyModel(), ["a", "b", "c"], out, input_size=16, torchscript=False)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_what_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"expected a torch\.nn\.Module or a fastai-style learner"):
        export(object(), ["a"], tmp_path / "m.tar.gz")
    with pytest.raises(ExportError, match="no class names"):
        export(small_cnn(2, width=4), None, tmp_path / "m.tar.gz")
    with pytest.raises(ExportError, match=r"must return one \(batch, classes\) tensor"):
        export(nn.Identity(), ["a"], tmp_path / "m.tar.gz", input_size=16)


def test_tolerance_is_relative_to_the_logits() -> None:
    """A random-weight ResNet-50 reaches logits in the thousands; 3e-3 there is sound, 1e-2 is not."""
    big = np.array([[4000.0, -1200.0, 10.0], [-30.0, 2500.0, 7.0]])
    assert measure_agreement(big, big + 3e-3).ok
    assert not measure_agreement(big, big + 5.0).ok
    small = np.array([[1.0, 0.5], [0.2, 0.3]])
    assert measure_agreement(small, small + 5e-4).ok
    assert not measure_agreement(small, small + 5e-3).ok
    swapped = measure_agreement(small, small[:, ::-1])
    assert swapped.top1_mismatches == 2
    assert not swapped.ok


@pytest.mark.slow
def test_export_resnet50_random_weights(tmp_path: Path) -> None:
    """The guide's model size: 25.6 M parameters, logits in the thousands; one export, dynamic batch."""
    torch.manual_seed(0)
    model = resnet50(num_classes=10).eval()
    out = tmp_path / "model.tar.gz"
    manifest = export(model, [f"c{i}" for i in range(10)], out, check_batch=4, torchscript=True)
    assert manifest.preprocessing == Preprocessing()
    assert out.stat().st_size > 150_000_000  # two ~95 MB copies of the weights, incompressible
    artifact = read_artifact(out, want_torchscript=True)
    assert artifact.onnx is not None and artifact.onnx_data is not None
    assert len(artifact.onnx_data) > 90_000_000 > 1_000_000 > len(artifact.onnx)
    batch = random_batch(3, 224)
    expected = eager_logits(model, batch)
    assert_agree(expected, onnx_logits(artifact, batch))
    assert_agree(expected, torchscript_logits(artifact.torchscript, batch))


# --- convert / export --torchscript: the TorchScript-based exporter ---------------------------------


def test_convert_adds_onnx_and_keeps_the_pth(classic_artifact: Path, converted_classic_artifact: Path) -> None:
    classic = read_artifact(classic_artifact)
    converted = read_artifact(converted_classic_artifact, want_torchscript=True)
    assert member_names(converted_classic_artifact) == [
        MANIFEST_NAME,
        CLASSES_NAME,
        ONNX_NAME,
        ONNX_DATA_NAME,
        "resnet50_jit.pth",
    ]
    assert converted.torchscript == classic.torchscript
    assert converted.classes == classic.classes == TINY_CLASSES
    assert converted.manifest is not None
    assert converted.manifest.extra["onnx_exporter"] == "torchscript"
    assert converted.preprocessing == Preprocessing()  # the guide's Resize(256) + CenterCrop(224)
    for n in (1, 4):
        batch = random_batch(n, 224)
        assert_agree(torchscript_logits(classic.torchscript, batch), onnx_logits(converted, batch))


def test_convert_leaves_the_pth_out_by_default(tmp_path: Path, classic_artifact: Path) -> None:
    out = tmp_path / "serving.tar.gz"
    convert(classic_artifact, out)
    assert member_names(out) == [MANIFEST_NAME, CLASSES_NAME, ONNX_NAME, ONNX_DATA_NAME]


def test_convert_refuses_a_wrong_class_count(tmp_path: Path, wrong_class_count_classic_artifact: Path) -> None:
    out = tmp_path / "model.tar.gz"
    with pytest.raises(ExportError, match="the model outputs 3 logits but there are 4 class names"):
        convert(wrong_class_count_classic_artifact, out)
    assert not out.exists()


def test_convert_refuses_a_broken_pth(tmp_path: Path) -> None:
    old = tmp_path / "old.tar.gz"
    with tarfile.open(old, "w:gz") as tar:
        for name, data in (("resnet50_jit.pth", b"not a torchscript zip"), ("classes.txt", b"a\nb\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ExportError, match=r"old\.tar\.gz: resnet50_jit\.pth: not a TorchScript model torch can load"):
        convert(old, tmp_path / "new.tar.gz")


def test_convert_refuses_what_is_not_a_tarball(tmp_path: Path) -> None:
    old = tmp_path / "old.tar.gz"
    old.write_text("hello")
    with pytest.raises(ArtifactError, match="not a gzip-compressed tarball"):
        convert(old, tmp_path / "new.tar.gz")


# --- the CLI ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loose_torchscript(tmp_path_factory: pytest.TempPathFactory, classic_artifact: Path) -> tuple[Path, Path]:
    """The classic tarball's two files, unpacked: what a user has after `torch.jit.save`."""
    workdir = tmp_path_factory.mktemp("loose")
    artifact = read_artifact(classic_artifact)
    assert artifact.torchscript is not None
    (workdir / "resnet50_jit.pth").write_bytes(artifact.torchscript)
    (workdir / "classes.txt").write_text("cat\ndog\nfish\n")
    return workdir / "resnet50_jit.pth", workdir / "classes.txt"


def test_cli_export_from_torchscript_keeping_it(tmp_path: Path, loose_torchscript: tuple[Path, Path]) -> None:
    pth, classes = loose_torchscript
    out = tmp_path / "model.tar.gz"
    result = CliRunner().invoke(
        cli,
        ["export", "--torchscript", str(pth), "--classes", str(classes), "-o", str(out), "--input-size", "48",
         "--keep-torchscript"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    artifact = read_artifact(out, want_torchscript=True)
    assert artifact.classes == TINY_CLASSES
    assert artifact.preprocessing.input_size == 48
    assert artifact.preprocessing.resize_size == 55
    assert artifact.torchscript == pth.read_bytes()
    assert artifact.torchscript_name == "resnet50_jit.pth"


@pytest.mark.parametrize("flag", [[], ["--no-torchscript"]])
def test_cli_export_leaves_the_pth_out_by_default(
    tmp_path: Path, loose_torchscript: tuple[Path, Path], flag: list[str]
) -> None:
    pth, classes = loose_torchscript
    out = tmp_path / "model.tar.gz"
    result = CliRunner().invoke(
        cli, ["export", "--torchscript", str(pth), "--classes", str(classes), "-o", str(out), *flag]
    )
    assert result.exit_code == 0, result.output
    assert member_names(out) == [MANIFEST_NAME, CLASSES_NAME, ONNX_NAME, ONNX_DATA_NAME]


def test_cli_convert(tmp_path: Path, classic_artifact: Path) -> None:
    out, kept = tmp_path / "new.tar.gz", tmp_path / "kept.tar.gz"
    result = CliRunner().invoke(cli, ["convert", str(classic_artifact), str(out)])
    assert result.exit_code == 0, result.output
    assert read_artifact(out).manifest is not None
    assert member_names(out) == [MANIFEST_NAME, CLASSES_NAME, ONNX_NAME, ONNX_DATA_NAME]  # no .pth by default
    result = CliRunner().invoke(cli, ["convert", str(classic_artifact), str(kept), "--keep-torchscript"])
    assert result.exit_code == 0, result.output
    assert member_names(kept)[-1] == "resnet50_jit.pth"


def test_cli_convert_bad_input_is_one_line(tmp_path: Path) -> None:
    old = tmp_path / "old.tar.gz"
    old.write_bytes(b"\x1f\x8b\x08 truncated")
    result = CliRunner().invoke(cli, ["convert", str(old), str(tmp_path / "new.tar.gz")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: {old}: ")
    assert "Traceback" not in result.output


def test_cli_without_torch_says_what_to_install(
    tmp_path: Path, classic_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as if not installed
    result = CliRunner().invoke(cli, ["convert", str(classic_artifact), str(tmp_path / "new.tar.gz")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: exporting needs torch and onnx (torch is missing): pip install 'lambdavision[export]'"
    )


# --- --quantize int8 (judged on the trained demo model: random weights say nothing) -----------------


def _train_demo_module() -> Any:
    spec = importlib.util.spec_from_file_location("train_demo", REPO / "scripts" / "train_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shape_image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 fresh images from the demo's generator (a seed the training never used)."""
    train_demo = _train_demo_module()
    directory = tmp_path_factory.mktemp("calibration")
    rng = random.Random(4242)
    for n in range(12):
        for kind in train_demo.CLASSES:
            train_demo._random_image(kind, rng).save(directory / f"{kind}_{n}.png")
    return directory


def test_cli_quantize_int8(
    tmp_path: Path, demo_artifact: Path, demo_samples: list[tuple[Path, str]], shape_image_dir: Path
) -> None:
    out = tmp_path / "int8.tar.gz"
    args = ["export", "--from", str(demo_artifact), "--quantize", "int8", "--calibration-dir", str(shape_image_dir)]
    result = CliRunner().invoke(cli, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output

    size = re.search(r"size: ([\d.e+-]+) MB float -> ([\d.e+-]+) MB int8 \(([\d.]+)x smaller\)", result.output)
    speed = re.search(r"([\d.e+-]+) ms float -> ([\d.e+-]+) ms int8 \(([\d.]+)x\)", result.output)
    agreement = re.search(r"agreement with the float model: ([\d.]+)% of (\d+) held-out images", result.output)
    assert size and speed and agreement, result.output
    float_mb, int8_mb, smaller = map(float, size.groups())
    assert 0 < int8_mb < float_mb
    assert smaller == pytest.approx(float_mb / int8_mb, rel=0.03)
    float_ms, int8_ms, speedup = map(float, speed.groups())
    assert float_ms > 0 and int8_ms > 0
    assert speedup == pytest.approx(float_ms / int8_ms, rel=0.03)
    assert float(agreement.group(1)) >= 99.0
    assert int(agreement.group(2)) == 12  # every 5th of 60

    artifact = read_artifact(out)
    assert artifact.manifest is not None
    assert artifact.manifest.extra["quantized"] == "int8"
    assert artifact.manifest.extra["quantization"]["calibration_images"] == 48
    classifier = load_classifier(out, environ={})
    for path, expected in demo_samples:
        assert classifier.classify([path.read_bytes()])[0].label == expected, path.name


def test_quantize_refuses_when_agreement_drops(tmp_path: Path, demo_artifact: Path, shape_image_dir: Path) -> None:
    inputs = load_image_dir(shape_image_dir, read_artifact(demo_artifact).preprocessing)
    # Calibrated on inputs 50x too faint: real images then saturate every activation range.
    faint = [x * 0.02 for x in inputs[:10]]
    out = tmp_path / "int8.tar.gz"
    with pytest.raises(ExportError, match=r"int8 model agrees with the float model on only [\d.]+% of 50 held-out"):
        quantize_int8(demo_artifact, out, faint, inputs[10:])
    assert not out.exists()


def test_cli_quantize_needs_calibration_images(tmp_path: Path, demo_artifact: Path) -> None:
    runner = CliRunner()
    no_dir = runner.invoke(cli, ["export", "--from", str(demo_artifact), "--quantize", "int8"])
    assert no_dir.exit_code == 2
    assert "--quantize int8 needs --calibration-dir" in no_dir.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["export", "--from", str(demo_artifact), "--quantize", "int8", "--calibration-dir", str(empty)]
    too_few = runner.invoke(cli, [*args, "-o", str(tmp_path / "o.tar.gz")])
    assert too_few.exit_code == 1
    assert "found 0 images; int8 calibration needs at least 10" in too_few.stderr
