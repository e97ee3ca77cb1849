"""The artifact reader at its edges: what mutation testing (`make mutate`) found unpinned.

Each cap is checked at its value (accepted) and one over (refused); each refusal names the artifact
and the member; the member order decides what is read (manifest first: the TorchScript copy is
never read; a foreign order: every candidate is). All through `read_artifact` on crafted tarballs.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from lambdavision.core.artifact import CLASSES_NAME, MANIFEST_NAME, ONNX_NAME, Limits
from lambdavision.core.errors import ArtifactError
from lambdavision.core.tarstream import MAX_HEADER_CHAIN, MAX_HEADER_RECORD_BYTES
from lambdavision.runtime.artifact_files import read_artifact
from tests.unit.test_artifact import (
    ONNX_BYTES,
    PTH_BYTES,
    classes_bytes,
    full_members,
    incompressible,
    make_tar,
    manifest_dict,
    special,
    write_full,
)

PTH = b"torchscript" * 4  # larger than the class list


def refusal(path: Path | io.BytesIO, **kwargs: Any) -> str:
    with pytest.raises(ArtifactError) as caught:
        read_artifact(path, **kwargs)
    return caught.value.message


def classic(tmp_path: Path, *extra: tuple[str, bytes] | tarfile.TarInfo, name: str = "m.tar.gz") -> Path:
    return make_tar(tmp_path / name, [("model.pth", PTH), (CLASSES_NAME, classes_bytes()), *extra])


# --- caps: at the cap is accepted, one over is refused -------------------------------------------


def test_the_member_count_cap_counts_every_member_once(tmp_path: Path) -> None:
    """Rule: max_members members are read; the next one is refused."""
    path = classic(tmp_path, *[(f"notes/{i}.md", b"") for i in range(3)])  # 5 members
    assert read_artifact(path, limits=Limits(max_members=5)).classes == ["circle", "square", "triangle"]
    assert refusal(path, limits=Limits(max_members=4)) == f"{path}: more than 4 members (limit)"


def test_a_member_of_exactly_the_per_member_cap_is_read(tmp_path: Path) -> None:
    """Rule: max_member_bytes is the largest member allowed."""
    path = classic(tmp_path)
    assert read_artifact(path, limits=Limits(max_member_bytes=len(PTH))).torchscript == PTH
    assert refusal(path, limits=Limits(max_member_bytes=len(PTH) - 1)) == (
        f"{path}: member 'model.pth' is {len(PTH)} bytes, over the {len(PTH) - 1}-byte limit per member"
    )


def test_skipped_members_add_up_to_their_cap(tmp_path: Path) -> None:
    """Rule: the members the model does not use are summed; their total may reach the cap, not pass it."""
    path = classic(tmp_path, ("docs/a.md", b"a" * 300), ("docs/b.md", b"b" * 200))
    assert read_artifact(path, limits=Limits(max_skipped_bytes=500)).torchscript == PTH
    assert refusal(path, limits=Limits(max_skipped_bytes=499)) == (
        f"{path}: members the model does not use take more than 499 bytes (at 'docs/b.md'; limit)"
    )
    # each alone is under 301 bytes: only their sum is over
    assert "take more than 300 bytes" in refusal(path, limits=Limits(max_skipped_bytes=300))


def test_manifest_and_class_list_of_exactly_their_caps_are_read(tmp_path: Path) -> None:
    """Rule: max_manifest_bytes and max_classes_bytes are the largest sizes read into memory."""
    members = full_members()
    manifest, classes = len(members[0][1]), len(classes_bytes())
    path = make_tar(tmp_path / "m.tar.gz", members)
    read_artifact(path, limits=Limits(max_manifest_bytes=manifest, max_classes_bytes=classes))
    assert refusal(path, limits=Limits(max_manifest_bytes=manifest - 1)) == (
        f"{path}: member 'lambdavision.json' is {manifest} bytes, over the {manifest - 1}-byte limit for a manifest"
    )
    assert refusal(path, limits=Limits(max_classes_bytes=classes - 1)) == (
        f"{path}: member 'classes.txt' is {classes} bytes, over the {classes - 1}-byte limit for a class list"
    )


def test_a_one_byte_class_list_is_read() -> None:
    """Rule: a member is read to its last byte, however short."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, payload in [("model.pth", PTH), (CLASSES_NAME, b"a")]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    data.seek(0)
    assert read_artifact(data).classes == ["a"]


def test_a_streamed_model_is_copied_in_bounded_chunks(tmp_path: Path) -> None:
    """Rule: model.onnx streamed to a folder is never held whole in memory (1 MiB chunks)."""
    onnx = incompressible(24 * 1024 * 1024, seed=7)
    path = write_full(tmp_path / "big.tar.gz", onnx=onnx, torchscript=None)
    del onnx
    (tmp_path / "out").mkdir()
    tracemalloc.start()
    try:
        artifact = read_artifact(path, onnx_dir=tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert artifact.onnx_path is not None and artifact.onnx_path.stat().st_size == 24 * 1024 * 1024
    assert peak < 12 * 1024 * 1024


# --- the header caps of tarstream -----------------------------------------------------------------


def _pax(record_body: str) -> bytes:
    """One PAX extended header holding `record_body` as a comment, padded to whole blocks."""
    body = f" comment={record_body}\n"
    size = len(body) + len(str(len(body)))
    size = len(body) + len(str(size))
    record = f"{size}{body}".encode()
    assert len(record) == size
    info = tarfile.TarInfo("././@PaxHeader")
    info.size = len(record)
    info.type = tarfile.XHDTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT) + record + b"\0" * (-len(record) % 512)


def _file(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % 512)


def _gz(tar: bytes) -> io.BytesIO:
    import gzip

    return io.BytesIO(gzip.compress(tar + b"\0" * 1024))


def test_a_header_record_of_exactly_1_mib_is_read() -> None:
    """Rule: a PAX record of MAX_HEADER_RECORD_BYTES is allowed; one byte more is refused."""
    fill = "x" * (MAX_HEADER_RECORD_BYTES - len(" comment=\n") - 7)
    record = _pax(fill)
    assert int(record[512:520].split(b" ")[0]) == MAX_HEADER_RECORD_BYTES
    tar = record + _file(CLASSES_NAME, classes_bytes()) + _file("model.pth", PTH)
    assert read_artifact(_gz(tar)).classes == ["circle", "square", "triangle"]
    over = _pax(fill + "x") + _file(CLASSES_NAME, classes_bytes()) + _file("model.pth", PTH)
    assert refusal(_gz(over)) == (
        f"<stream>: a tar header record of {MAX_HEADER_RECORD_BYTES + 1} bytes "
        f"(over {MAX_HEADER_RECORD_BYTES}); refusing the artifact"
    )


def test_the_header_chain_cap_is_per_member() -> None:
    """Rule: up to MAX_HEADER_CHAIN extended headers before one member, however many members had one."""
    singles = b"".join(_pax("one") + _file(f"docs/{i}.md", b"d") for i in range(3))
    tail = _file(CLASSES_NAME, classes_bytes()) + _file("model.pth", PTH)
    at_cap = singles + _pax("c") * MAX_HEADER_CHAIN + tail
    assert read_artifact(_gz(at_cap)).torchscript == PTH
    over = singles + _pax("c") * (MAX_HEADER_CHAIN + 1) + tail
    assert refusal(_gz(over)) == (
        f"<stream>: more than {MAX_HEADER_CHAIN} extended (PAX or GNU) headers in a row; refusing the artifact"
    )


def test_gnu_long_names_are_read(tmp_path: Path) -> None:
    """Rule: a GNU long-name header (a real archive's) goes through the capped header reader."""
    long_name = "docs/" + "n" * 150 + ".md"
    path = tmp_path / "gnu.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in [(long_name, b"doc"), ("model.pth", PTH), (CLASSES_NAME, classes_bytes())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert read_artifact(path).torchscript == PTH


# --- refusals name the artifact and the member ----------------------------------------------------


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (special("volume", b"V"), "member 'volume' is not a regular file (type b'V')"),
        (("./", b"x"), "member './' has an empty name"),
        (("C:/x.txt", b"x"), "member 'C:/x.txt' has an absolute path; refusing the artifact"),
        (("c:\\x.txt", b"x"), "member 'c:\\\\x.txt' has an absolute path; refusing the artifact"),
    ],
)
def test_odd_members_are_refused_by_name(
    tmp_path: Path, member: tuple[str, bytes] | tarfile.TarInfo, message: str
) -> None:
    """Rule: a member that is neither a plain file nor a directory, or has no name, is refused."""
    path = classic(tmp_path, member)
    assert refusal(path) == f"{path}: {message}"


def test_a_class_list_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    """Rule: the refusal names the artifact and the member."""
    files = {CLASSES_NAME: b"\xff\xfe\n", ONNX_NAME: ONNX_BYTES}
    path = make_tar(tmp_path / "m.tar.gz", full_members(**files))
    assert refusal(path).startswith(f"{path}: member 'classes.txt' is not UTF-8 text (")


def test_two_torchscript_members_are_refused(tmp_path: Path) -> None:
    """Rule: a manifest may list one .pth at most."""
    files = {CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES, "a.pth": b"a", "b.pth": b"b"}
    path = make_tar(tmp_path / "m.tar.gz", full_members(**files))
    assert refusal(path, want_torchscript=True) == f"{path}: more than one TorchScript member: a.pth, b.pth"


def test_a_manifest_listing_no_model_is_refused(tmp_path: Path) -> None:
    """Rule: a manifest must list model.onnx or a .pth."""
    path = make_tar(tmp_path / "m.tar.gz", full_members(**{CLASSES_NAME: classes_bytes()}))
    assert refusal(path) == f"{path}: lambdavision.json lists neither model.onnx nor a .pth model"


def test_a_listed_torchscript_copy_missing_is_refused_when_wanted(tmp_path: Path) -> None:
    """Rule: with want_torchscript, every member the manifest lists must be there."""
    files = {CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES}
    manifest = manifest_dict({**files, "model.pth": PTH})
    path = make_tar(tmp_path / "m.tar.gz", full_members(manifest, **files))
    assert read_artifact(path).onnx == ONNX_BYTES  # serving does not need it
    assert refusal(path, want_torchscript=True) == f"{path}: member 'model.pth' listed in lambdavision.json is missing"


def _corrupt_message(path: Path, name: str, data: bytes, expected: bytes) -> str:
    actual, wanted = hashlib.sha256(data).hexdigest(), hashlib.sha256(expected).hexdigest()
    return f"{path}: member {name!r} is corrupt: sha256 {actual[:12]}… does not match the manifest's {wanted[:12]}…"


def test_a_corrupt_member_streamed_after_the_manifest_is_named(tmp_path: Path) -> None:
    """Rule: model.onnx streamed to a folder is verified, and the refusal names artifact and member."""
    members = full_members()
    members[2] = (ONNX_NAME, b"tampered")
    path = make_tar(tmp_path / "m.tar.gz", members)
    (tmp_path / "out").mkdir()
    assert refusal(path, onnx_dir=tmp_path / "out") == _corrupt_message(path, ONNX_NAME, b"tampered", ONNX_BYTES)


def test_members_read_before_the_manifest_are_verified_when_it_comes(tmp_path: Path) -> None:
    """Rule: a foreign order is verified too: the files read before the manifest, in memory or streamed."""
    manifest, classes, onnx = full_members()
    (tmp_path / "out").mkdir()
    good = make_tar(tmp_path / "good.tar.gz", [onnx, classes, manifest])
    streamed = read_artifact(good, onnx_dir=tmp_path / "out")
    assert streamed.onnx_path == tmp_path / "out" / ONNX_NAME and streamed.classes == ["circle", "square", "triangle"]
    bad_classes = make_tar(tmp_path / "c.tar.gz", [(CLASSES_NAME, b"x\n"), manifest, onnx])
    assert refusal(bad_classes) == _corrupt_message(bad_classes, CLASSES_NAME, b"x\n", classes_bytes())
    bad_onnx = make_tar(tmp_path / "o.tar.gz", [(ONNX_NAME, b"tampered"), classes, manifest])
    assert refusal(bad_onnx, onnx_dir=tmp_path / "out") == _corrupt_message(
        bad_onnx, ONNX_NAME, b"tampered", ONNX_BYTES
    )


def test_a_streamed_member_the_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    """Rule: every streamed file must be listed in the manifest that comes after it."""
    files = {CLASSES_NAME: classes_bytes(), "model.pth": PTH}
    manifest = (MANIFEST_NAME, json.dumps(manifest_dict(files)).encode())
    path = make_tar(tmp_path / "m.tar.gz", [(ONNX_NAME, ONNX_BYTES), manifest, *files.items()])
    (tmp_path / "out").mkdir()
    assert refusal(path, onnx_dir=tmp_path / "out") == f"{path}: member 'model.onnx' is not listed in lambdavision.json"


# --- what is read: the member order ---------------------------------------------------------------


def test_streamed_serving_still_reads_the_torchscript_copy_when_wanted(tmp_path: Path) -> None:
    """Rule: want_torchscript reads on past the streamed model to the .pth behind it."""
    path = write_full(tmp_path / "m.tar.gz")
    (tmp_path / "out").mkdir()
    artifact = read_artifact(path, want_torchscript=True, onnx_dir=tmp_path / "out")
    assert artifact.torchscript == PTH_BYTES and artifact.onnx_path is not None


@pytest.mark.parametrize(
    ("before", "torchscript_read"),
    [
        ([], False),  # manifest first: the .pth is not needed, never read
        ([special("docs", tarfile.DIRTYPE)], False),  # a directory first: still nothing read before it
        ([("README.md", b"hi")], False),  # a stray file first: skipped, nothing read
        ([(CLASSES_NAME, classes_bytes())], True),  # a foreign order: every candidate is read
    ],
)
def test_the_torchscript_copy_is_read_only_after_a_foreign_order(
    tmp_path: Path, before: list[Any], torchscript_read: bool
) -> None:
    """Rule: members after a leading manifest are read only if needed; a foreign order reads them all."""
    files = {CLASSES_NAME: classes_bytes(), "model.pth": PTH, ONNX_NAME: ONNX_BYTES}
    manifest = (MANIFEST_NAME, json.dumps(manifest_dict(files)).encode())
    rest = [(n, d) for n, d in files.items() if not any(isinstance(b, tuple) and b[0] == n for b in before)]
    path = make_tar(tmp_path / "m.tar.gz", [*before, manifest, *rest])
    artifact = read_artifact(path)
    assert artifact.onnx == ONNX_BYTES
    assert artifact.torchscript == (PTH if torchscript_read else None)


def test_files_the_manifest_does_not_list_are_skipped(tmp_path: Path) -> None:
    """Rule: after the manifest, a member it does not list is passed over, never refused as corrupt."""
    manifest, classes, onnx = full_members()
    path = make_tar(tmp_path / "m.tar.gz", [manifest, ("notes.txt", b"hello\n"), classes, onnx])
    assert read_artifact(path).classes == ["circle", "square", "triangle"]


@pytest.mark.parametrize("stray", ["._model.pth", "sub/model.pth"])
def test_nested_and_resource_fork_files_are_never_model_members(tmp_path: Path, stray: str) -> None:
    """Rule: only top-level files count; macOS's ._ files are not a second model."""
    path = classic(tmp_path, (stray, b"other"))
    artifact = read_artifact(path)
    assert (artifact.torchscript_name, artifact.torchscript) == ("model.pth", PTH)


def test_weights_before_the_manifest_are_read_too(tmp_path: Path) -> None:
    """Rule: in a foreign order, model.onnx.data is a candidate like model.onnx (read before the manifest)."""
    written = write_full(tmp_path / "w.tar.gz", torchscript=None, onnx_data=b"weights" * 100)
    with tarfile.open(written) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    order = ["classes.txt", "model.onnx", "model.onnx.data", MANIFEST_NAME]
    path = make_tar(tmp_path / "m.tar.gz", [(name, members[name]) for name in order])
    artifact = read_artifact(path)
    assert artifact.onnx_data == b"weights" * 100 and artifact.onnx == ONNX_BYTES
