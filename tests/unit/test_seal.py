"""runtime.seal: the private cache parent and the record a cached serving folder is checked against."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from lambdavision.runtime import seal
from lambdavision.runtime.seal import SEAL_NAME, UnsafeFolder, check_seal, ensure_private_dir, write_seal


def folder_with(tmp_path: Path, **files: bytes) -> Path:
    folder = tmp_path / "copy"
    folder.mkdir()
    for name, data in files.items():
        (folder / name.replace("_", ".")).write_bytes(data)
    write_seal(folder)
    return folder


def test_an_untouched_folder_passes(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, classes_txt=b"a\nb\n", model_onnx=b"graph", model_onnx_data=b"w" * 100)
    assert check_seal(folder) is None
    sealed = json.loads((folder / SEAL_NAME).read_text())["files"]
    assert set(sealed) == {"classes.txt", "model.onnx", "model.onnx.data"}


def test_big_files_are_checked_by_size_and_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seal, "HASHED_UP_TO", 10)
    folder = folder_with(tmp_path, model_onnx_data=b"w" * 100)
    weights = folder / "model.onnx.data"
    before = os.stat(weights)
    weights.write_bytes(b"v" * 100)
    assert check_seal(folder) == "model.onnx.data changed size or modification time"
    # The documented limit: same size and the time put back is not seen without hashing.
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert check_seal(folder) is None
    weights.write_bytes(b"w" * 99)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert check_seal(folder) == "model.onnx.data changed size or modification time"


def test_small_files_are_hashed(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, classes_txt=b"cat\ndog\n")
    classes = folder / "classes.txt"
    before = os.stat(classes)
    classes.write_bytes(b"dog\ncat\n")
    os.utime(classes, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert check_seal(folder) == "classes.txt changed (sha256)"


def test_an_altered_seal_or_a_swapped_file_is_seen(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, classes_txt=b"a\n", model_onnx=b"g")
    record = json.loads((folder / SEAL_NAME).read_text())
    record["files"]["classes.txt"]["size"] = 99
    (folder / SEAL_NAME).write_text(json.dumps(record))
    assert check_seal(folder) == "its seal was altered"
    write_seal(folder)
    (folder / "model.onnx").unlink()
    (folder / "model.onnx").symlink_to(folder / "classes.txt")
    assert check_seal(folder) == "model.onnx is no longer a regular file"
    (folder / SEAL_NAME).write_text("{not json")
    assert check_seal(folder) == "its seal is unreadable"


def test_ensure_private_dir_creates_0700(tmp_path: Path) -> None:
    ensure_private_dir(tmp_path / "cache")
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) == 0o700
    ensure_private_dir(tmp_path / "cache")  # an existing private one is fine


def test_ensure_private_dir_refuses_links_files_and_open_folders(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafeFolder, match="not a directory"):
        ensure_private_dir(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafeFolder):
        ensure_private_dir(tmp_path / "file")
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    with pytest.raises(UnsafeFolder, match="may be written by others"):
        ensure_private_dir(tmp_path / "open")
