"""`export --from X --input-size N` and `convert --input-size N` export and check at N, as subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnxruntime as ort

from lambdavision.core.artifact import read_artifact

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))


def lv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAMBDAVISION, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def onnx_input_shape(artifact: Path, folder: Path) -> list[object]:
    loaded = read_artifact(artifact)
    assert loaded.onnx is not None
    (folder / "model.onnx").write_bytes(loaded.onnx)
    if loaded.onnx_data is not None:
        (folder / "model.onnx.data").write_bytes(loaded.onnx_data)
    shape: list[object] = ort.InferenceSession(str(folder / "model.onnx")).get_inputs()[0].shape
    return shape


def test_export_from_and_convert_honour_the_input_size(tmp_path: Path, classic_artifact: Path) -> None:
    exported = lv("export", "--from", str(classic_artifact), "--input-size", "64", "-o", "at64.tar.gz", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "input 64x64" in exported.stdout
    manifest = read_artifact(tmp_path / "at64.tar.gz").manifest
    assert manifest is not None
    assert (manifest.preprocessing.input_size, manifest.preprocessing.resize_size) == (64, 73)  # 64 x 256/224
    (tmp_path / "a").mkdir()
    assert onnx_input_shape(tmp_path / "at64.tar.gz", tmp_path / "a")[1:] == [3, 64, 64]  # made and checked at 64

    converted = lv(
        "convert", str(classic_artifact), "at48.tar.gz", "--input-size", "48", "--resize-size", "60",
        "--keep-torchscript", cwd=tmp_path,
    )  # fmt: skip
    assert converted.returncode == 0, converted.stderr
    manifest = read_artifact(tmp_path / "at48.tar.gz").manifest
    assert manifest is not None and (manifest.preprocessing.input_size, manifest.preprocessing.resize_size) == (48, 60)
    (tmp_path / "b").mkdir()
    assert onnx_input_shape(tmp_path / "at48.tar.gz", tmp_path / "b")[1:] == [3, 48, 48]

    # Without --input-size: the classic tarball gets the guide's 224, a full artifact keeps its own.
    assert "input 224x224" in lv("convert", str(classic_artifact), "at224.tar.gz", cwd=tmp_path).stdout
    kept = lv("export", "--from", str(tmp_path / "at48.tar.gz"), "-o", "again.tar.gz", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "input 48x48" in kept.stdout

    # An artifact without TorchScript cannot be exported at another size: one line, nothing written.
    lv("export", "--from", str(tmp_path / "at48.tar.gz"), "--no-torchscript", "-o", "onnx-only.tar.gz", cwd=tmp_path)
    refused = lv("export", "--from", "onnx-only.tar.gz", "--input-size", "32", "-o", "x.tar.gz", cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert (
        refused.stderr.strip()
        == "Error: onnx-only.tar.gz holds no TorchScript (.pth) to export again at another input size"
    )
    assert not (tmp_path / "x.tar.gz").exists()
