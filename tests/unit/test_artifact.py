"""model.tar.gz: round trip, streaming that stops before the TorchScript copy, and every refusal."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from lambdavision.core.artifact import CLASSES_NAME, FORMAT_VERSION, MANIFEST_NAME, ONNX_DATA_NAME, ONNX_NAME, Limits
from lambdavision.core.errors import ArtifactError, CacheWriteError
from lambdavision.core.preprocess import Preprocessing
from lambdavision.runtime.artifact_files import read_artifact, write_artifact

CLASSES = ["circle", "square", "triangle"]
PREPROCESSING = Preprocessing(input_size=64, resize_size=73, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def incompressible(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


ONNX_BYTES = incompressible(20_000, seed=1)
PTH_BYTES = incompressible(3_000_000, seed=2)  # big enough that not reading it is measurable


def write_full(path: Path, **overrides: Any) -> Path:
    kwargs: dict[str, Any] = {
        "classes": CLASSES,
        "preprocessing": PREPROCESSING,
        "onnx": ONNX_BYTES,
        "torchscript": PTH_BYTES,
    }
    kwargs.update(overrides)
    write_artifact(path, **kwargs)
    return path


def manifest_dict(members: dict[str, bytes], num_classes: int = len(CLASSES)) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "preprocessing": PREPROCESSING.to_dict(),
        "num_classes": num_classes,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
        "extra": {},
    }


def classes_bytes(classes: Iterable[str] = CLASSES) -> bytes:
    return "".join(f"{c}\n" for c in classes).encode()


def make_tar(path: Path, members: Iterable[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A hand-made tar.gz: (name, data) pairs for files, TarInfo for anything unusual."""
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def full_members(manifest: dict[str, Any] | bytes | None = None, **files: bytes) -> list[tuple[str, bytes]]:
    """The full layout's members, with the manifest computed from `files` unless given."""
    payload = files or {CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES}
    if manifest is None:
        manifest = manifest_dict(payload)
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    return [(MANIFEST_NAME, raw), *payload.items()]


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


class CountingReader(io.RawIOBase):
    """A file object that counts the compressed bytes actually pulled from it."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._inner.readinto(buffer)
        self.bytes_read += n
        return n


# --- round trip -----------------------------------------------------------------------------------


def test_round_trip_full_layout(tmp_path: Path) -> None:
    manifest = write_artifact(
        tmp_path / "model.tar.gz",
        classes=CLASSES,
        preprocessing=PREPROCESSING,
        onnx=ONNX_BYTES,
        torchscript=PTH_BYTES,
        extra={"opset": 18},
    )
    artifact = read_artifact(tmp_path / "model.tar.gz", want_torchscript=True)

    assert artifact.classes == CLASSES
    assert artifact.manifest == manifest
    assert artifact.preprocessing == PREPROCESSING
    assert artifact.onnx == ONNX_BYTES
    assert artifact.torchscript == PTH_BYTES
    assert artifact.torchscript_name == "model.pth"
    assert artifact.source == str(tmp_path / "model.tar.gz")
    assert manifest.num_classes == 3
    assert manifest.extra["opset"] == 18
    assert manifest.extra["exported_by"].startswith("lambdavision ")
    assert manifest.sha256 == {
        CLASSES_NAME: hashlib.sha256(classes_bytes()).hexdigest(),
        ONNX_NAME: hashlib.sha256(ONNX_BYTES).hexdigest(),
        "model.pth": hashlib.sha256(PTH_BYTES).hexdigest(),
    }


def test_members_are_in_serving_order_with_fixed_metadata(tmp_path: Path) -> None:
    path = write_full(tmp_path / "model.tar.gz", torchscript_name="resnet50_jit.pth")
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [MANIFEST_NAME, CLASSES_NAME, ONNX_NAME, "resnet50_jit.pth"]
    assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(0, 0, 0, 0o644)}
    assert path.stat().st_mode & 0o777 == 0o644


def test_write_is_deterministic(tmp_path: Path) -> None:
    first = write_full(tmp_path / "a.tar.gz").read_bytes()
    second = write_full(tmp_path / "b.tar.gz").read_bytes()
    assert first == second


def test_onnx_only_artifact_without_torchscript(tmp_path: Path) -> None:
    path = write_full(tmp_path / "model.tar.gz", torchscript=None)
    artifact = read_artifact(path, want_torchscript=True)
    assert artifact.onnx == ONNX_BYTES
    assert artifact.torchscript is None
    assert artifact.torchscript_name is None


def test_torchscript_only_full_artifact_reads_the_pth(tmp_path: Path) -> None:
    path = write_full(tmp_path / "model.tar.gz", onnx=None)
    artifact = read_artifact(path)
    assert artifact.onnx is None
    assert artifact.torchscript == PTH_BYTES


def test_reads_from_a_file_object_named_in_errors() -> None:
    buffer = io.BytesIO(b"definitely not gzip")
    buffer.name = "s3://bucket/model.tar.gz"
    with pytest.raises(ArtifactError, match=r"^s3://bucket/model\.tar\.gz: not a gzip"):
        read_artifact(buffer)


def test_classic_guide_tarball(tmp_path: Path) -> None:
    """The guide's layout: resnet50_jit.pth + classes.txt, no manifest; names come back as text."""
    path = make_tar(
        tmp_path / "model.tar.gz",
        [("resnet50_jit.pth", PTH_BYTES), ("classes.txt", b"english_cocker_spaniel\r\n\nbeagle\n  pug  \n")],
    )
    artifact = read_artifact(path)
    assert artifact.manifest is None
    assert artifact.classes == ["english_cocker_spaniel", "beagle", "pug"]
    assert artifact.torchscript == PTH_BYTES
    assert artifact.torchscript_name == "resnet50_jit.pth"
    assert artifact.onnx is None
    assert artifact.preprocessing == Preprocessing()


def test_classic_tarball_with_directories_and_dot_slash_names(tmp_path: Path) -> None:
    directory = tarfile.TarInfo(".")
    directory.type = tarfile.DIRTYPE
    path = make_tar(
        tmp_path / "model.tar.gz",
        [directory, ("./labels.txt", classes_bytes()), ("./export.pth", b"pth")],
    )
    artifact = read_artifact(path)
    assert artifact.classes == CLASSES
    assert artifact.torchscript_name == "export.pth"


# --- streaming ------------------------------------------------------------------------------------


def test_serving_read_stops_before_the_torchscript_copy(tmp_path: Path) -> None:
    data = write_full(tmp_path / "model.tar.gz").read_bytes()
    counter = CountingReader(data)

    artifact = read_artifact(io.BufferedReader(counter, buffer_size=8192))

    assert artifact.onnx == ONNX_BYTES
    assert artifact.torchscript is None
    assert artifact.torchscript_name == "model.pth"
    # The 3 MB incompressible .pth makes up almost all of the file; we pulled a small part of it
    # (the reader's 1 MiB read-ahead at most, not the 3 MB behind it).
    assert len(data) > 3_000_000
    assert counter.bytes_read < 1_200_000


def test_corrupt_torchscript_tail_is_never_read_unless_asked(tmp_path: Path) -> None:
    path = write_full(tmp_path / "model.tar.gz")
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 200_000, len(data) - 100_000):  # well inside the .pth's compressed data
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))

    assert read_artifact(path).onnx == ONNX_BYTES
    with pytest.raises(ArtifactError, match=r"model\.tar\.gz: (truncated or corrupt|member 'model\.pth')"):
        read_artifact(path, want_torchscript=True)


def test_torchscript_copy_is_verified_against_the_manifest(tmp_path: Path) -> None:
    members = full_members(**{CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES, "model.pth": b"good"})
    members[-1] = ("model.pth", b"evil")
    path = make_tar(tmp_path / "model.tar.gz", members)
    assert read_artifact(path).onnx == ONNX_BYTES
    with pytest.raises(ArtifactError, match=r"member 'model\.pth' is corrupt: sha256"):
        read_artifact(path, want_torchscript=True)


def test_manifest_after_the_files_still_verifies(tmp_path: Path) -> None:
    members = full_members()
    path = make_tar(tmp_path / "model.tar.gz", [*members[1:], members[0]])
    assert read_artifact(path).classes == CLASSES

    tampered = [(CLASSES_NAME, b"a\nb\nc\n"), members[2], members[0]]
    with pytest.raises(ArtifactError, match=r"member 'classes\.txt' is corrupt"):
        read_artifact(make_tar(tmp_path / "tampered.tar.gz", tampered))


# --- refusals: unsafe archives --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (("../x", b"x"), r"member '\.\./x' has a '\.\.' path that escapes the archive"),
        (("a/../../x.txt", b"x"), r"member 'a/\.\./\.\./x\.txt' has a '\.\.' path"),
        (("/etc/passwd", b"x"), r"member '/etc/passwd' has an absolute path"),
        (special("/", tarfile.DIRTYPE), r"member '' has an absolute path"),  # the root itself (fuzz find)
        (special("classes.txt", tarfile.SYMTYPE, "/etc/passwd"), r"member 'classes\.txt' is a symbolic link"),
        (special("model.pth", tarfile.LNKTYPE, "/etc/shadow"), r"member 'model\.pth' is a hard link"),
        (special("dev", tarfile.CHRTYPE), r"member 'dev' is a device or FIFO"),
        (special("disk", tarfile.BLKTYPE), r"member 'disk' is a device or FIFO"),
        (special("pipe", tarfile.FIFOTYPE), r"member 'pipe' is a device or FIFO"),
    ],
)
@pytest.mark.parametrize("layout", ["full", "classic"])
def test_unsafe_members_are_refused(
    tmp_path: Path, member: tarfile.TarInfo | tuple[str, bytes], message: str, layout: str
) -> None:
    # A full artifact is read only up to what serving needs; anything unsafe before that is refused.
    # A classic one is read to the end, so an unsafe member anywhere is refused.
    if layout == "full":
        members = [member, *full_members()]
    else:
        members = [("resnet50_jit.pth", b"pth"), ("classes.txt", classes_bytes()), member]
    path = make_tar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(ArtifactError, match=rf"^{tmp_path}/evil\.tar\.gz: {message}"):
        read_artifact(path)


def test_unsafe_member_is_refused_even_before_the_model(tmp_path: Path) -> None:
    link = special("classes.txt", tarfile.SYMTYPE, "../../etc/passwd")
    path = make_tar(tmp_path / "evil.tar.gz", [link, ("model.pth", b"pth")])
    with pytest.raises(ArtifactError, match="symbolic link"):
        read_artifact(path)


def test_oversized_member_is_refused_by_its_header_without_reading_it(tmp_path: Path) -> None:
    """A header claiming 10 GB, followed by no data at all: refused on the header alone."""
    header = tarfile.TarInfo("model.pth")
    header.size = 10 * 1024**3
    path = tmp_path / "huge.tar.gz"
    path.write_bytes(gzip.compress(header.tobuf(format=tarfile.PAX_FORMAT)))
    with pytest.raises(ArtifactError, match=r"member 'model\.pth' is 10737418240 bytes, over the"):
        read_artifact(path)


def test_total_size_cap_stops_a_gzip_bomb(tmp_path: Path) -> None:
    zeros = bytes(1024 * 1024)  # compresses ~1000:1
    members = [(f"part{i}.bin", zeros) for i in range(5)]
    path = make_tar(tmp_path / "bomb.tar.gz", members)
    assert path.stat().st_size < 50_000
    limits = Limits(max_member_bytes=2 * 1024 * 1024, max_total_bytes=3 * 1024 * 1024, max_members=64)
    with pytest.raises(ArtifactError, match=r"member 'part3\.bin' takes the total over the 3145728-byte limit"):
        read_artifact(path, limits=limits)


def test_decompressed_stream_cap_stops_a_header_bomb(tmp_path: Path) -> None:
    """Oversized PAX headers are not member data, yet tarfile buffers them: the stream cap holds."""
    info = tarfile.TarInfo("classes.txt")
    data = classes_bytes()
    info.size = len(data)
    info.pax_headers = {"comment": "x" * (24 * 1024 * 1024)}
    path = tmp_path / "header-bomb.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    limits = Limits(max_member_bytes=1024, max_total_bytes=1024 * 1024, max_members=8)
    with pytest.raises(ArtifactError, match=r"header-bomb\.tar\.gz: (decompresses to more than|a tar header record)"):
        read_artifact(path, limits=limits)


def test_member_count_cap(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "many.tar.gz", [(f"f{i}", b"") for i in range(10)])
    with pytest.raises(ArtifactError, match=r"more than 5 members"):
        read_artifact(path, limits=Limits(max_member_bytes=1024, max_total_bytes=4096, max_members=5))


def test_duplicate_member_is_refused(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "dup.tar.gz", [("model.pth", b"a"), ("classes.txt", b"x\n"), ("./classes.txt", b"y\n")])
    with pytest.raises(ArtifactError, match=r"member 'classes\.txt' appears twice"):
        read_artifact(path)


# --- refusals: missing or corrupt content ---------------------------------------------------------


def test_missing_classes_member(tmp_path: Path) -> None:
    members = full_members()
    path = make_tar(tmp_path / "model.tar.gz", [members[0], members[2]])
    with pytest.raises(ArtifactError, match=r"member 'classes\.txt' listed in lambdavision\.json is missing"):
        read_artifact(path)


def test_missing_onnx_member(tmp_path: Path) -> None:
    members = full_members()
    path = make_tar(tmp_path / "model.tar.gz", members[:2])
    with pytest.raises(ArtifactError, match=r"member 'model\.onnx' listed in lambdavision\.json is missing"):
        read_artifact(path)


def test_classic_tarball_without_class_list(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "model.tar.gz", [("resnet50_jit.pth", b"pth")])
    with pytest.raises(ArtifactError, match=r"no lambdavision\.json and no class list \(\*\.txt"):
        read_artifact(path)


def test_classic_tarball_without_model(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "model.tar.gz", [("classes.txt", classes_bytes())])
    with pytest.raises(ArtifactError, match=r"no lambdavision\.json and no TorchScript model \(\*\.pth\) at the top"):
        read_artifact(path)


def test_classic_tarball_with_two_models_is_ambiguous(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "model.tar.gz", [("a.pth", b"1"), ("b.pth", b"2"), ("classes.txt", classes_bytes())])
    with pytest.raises(ArtifactError, match=r"ambiguous, several \.pth members: a\.pth, b\.pth"):
        read_artifact(path)


def test_bad_sha256_is_refused(tmp_path: Path) -> None:
    members = full_members()
    members[2] = (ONNX_NAME, ONNX_BYTES[:-1] + b"!")
    path = make_tar(tmp_path / "model.tar.gz", members)
    with pytest.raises(ArtifactError, match=r"model\.tar\.gz: member 'model\.onnx' is corrupt: sha256 \w+"):
        read_artifact(path)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"{not json", r"not valid JSON"),
        (b"\xff\xfe", r"not valid JSON"),
        (b"[1, 2]", r"expected a JSON object, got list"),
        ({"format_version": 99}, r"format_version 99 is newer than this lambdavision reads \(3\)"),
        ({"format_version": "1"}, r"field 'format_version' must be int, got str"),
        ({"num_classes": True}, r"field 'num_classes' must be int, got bool"),
        ({"num_classes": 0}, r"num_classes must be >= 1"),
        ({"sha256": []}, r"field 'sha256' must be dict, got list"),
        ({"sha256": {"classes.txt": "abc"}}, r"sha256 of 'classes\.txt' is not 64 lowercase hex digits"),
        ({"sha256": {"../classes.txt": "0" * 64}}, r"not a bare file name"),
        ({"preprocessing": {"input_size": 224}}, r"preprocessing: missing field 'resize_size'"),
        ({"preprocessing": {**PREPROCESSING.to_dict(), "resize_size": 10}}, r"need 1 <= input_size"),
        ({"preprocessing": {**PREPROCESSING.to_dict(), "mean": [0.5]}}, r"'mean' must be 3 numbers"),
        ({"preprocessing": {**PREPROCESSING.to_dict(), "std": [1, 0, 1]}}, r"std values must be > 0"),
        ({"extra": "x"}, r"'extra' must be an object"),
    ],
)
def test_bad_manifest_is_refused(tmp_path: Path, manifest: bytes | dict[str, Any], message: str) -> None:
    if isinstance(manifest, dict):
        manifest = json.dumps(
            {**manifest_dict({CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES}), **manifest}
        ).encode()
    path = make_tar(tmp_path / "model.tar.gz", full_members(manifest))
    with pytest.raises(ArtifactError, match=rf"^{tmp_path}/model\.tar\.gz: lambdavision\.json.*{message}"):
        read_artifact(path)


def test_class_count_different_from_manifest(tmp_path: Path) -> None:
    files = {CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES}
    path = make_tar(tmp_path / "model.tar.gz", full_members(manifest_dict(files, num_classes=5), **files))
    with pytest.raises(ArtifactError, match=r"classes\.txt has 3 classes but lambdavision\.json says num_classes=5"):
        read_artifact(path)


def test_non_utf8_classes(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "model.tar.gz", [("model.pth", b"pth"), ("classes.txt", b"caf\xe9\n")])
    with pytest.raises(ArtifactError, match=r"member 'classes\.txt' is not UTF-8 text"):
        read_artifact(path)


def test_empty_class_list(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "model.tar.gz", [("model.pth", b"pth"), ("classes.txt", b"\n  \n")])
    with pytest.raises(ArtifactError, match=r"member 'classes\.txt' lists no classes"):
        read_artifact(path)


# --- refusals: not a tarball at all ---------------------------------------------------------------


def test_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(ArtifactError, match=rf"^{path}: not a gzip-compressed tarball"):
        read_artifact(path)


def test_gzip_but_not_tar(tmp_path: Path) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(gzip.compress(b"hello, I am a text file, not a tar archive\n" * 40))
    with pytest.raises(ArtifactError, match=rf"^{path}: not a valid tar archive"):
        read_artifact(path)


def test_truncated_tarball(tmp_path: Path) -> None:
    path = write_full(tmp_path / "model.tar.gz", torchscript=None)
    path.write_bytes(path.read_bytes()[:10_000])  # cut inside model.onnx
    with pytest.raises(ArtifactError, match=rf"^{path}: (truncated or corrupt gzip data|member 'model\.onnx')"):
        read_artifact(path)


def test_empty_tarball(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "model.tar.gz", [])
    with pytest.raises(ArtifactError, match=r"the tarball holds no files"):
        read_artifact(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"")
    with pytest.raises(ArtifactError, match=rf"^{path}: "):
        read_artifact(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"nope\.tar\.gz: cannot open the artifact"):
        read_artifact(tmp_path / "nope.tar.gz")


# --- write refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"onnx": None, "torchscript": None}, "neither an ONNX nor a TorchScript model"),
        ({"classes": []}, "non-empty list of class names"),
        ({"classes": ["a", "b\nc"]}, "class name 'b\\\\nc'"),
        ({"classes": ["a", " "]}, "class name ' '"),
        ({"torchscript_name": "../model.pth"}, "must be a bare name ending in .pth"),
        ({"torchscript_name": "model.onnx"}, "must be a bare name ending in .pth"),
    ],
)
def test_write_refusals_leave_nothing_behind(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ArtifactError, match=message.replace(".", r"\.")):
        write_full(tmp_path / "model.tar.gz", **overrides)
    assert list(tmp_path.iterdir()) == []


# --- format 2: the weights in model.onnx.data ---------------------------------------------------

WEIGHTS_BYTES = incompressible(200_000, seed=3)


def test_format_2_round_trip_in_memory_and_streamed(tmp_path: Path) -> None:
    path = write_full(tmp_path / "m.tar.gz", onnx_data=WEIGHTS_BYTES)
    with tarfile.open(path, "r:gz") as tar:
        assert tar.getnames() == [MANIFEST_NAME, CLASSES_NAME, ONNX_NAME, ONNX_DATA_NAME, "model.pth"]
    artifact = read_artifact(path)
    assert artifact.manifest is not None and artifact.manifest.format_version == 2
    assert (artifact.onnx, artifact.onnx_data, artifact.torchscript) == (ONNX_BYTES, WEIGHTS_BYTES, None)
    streamed = read_artifact(path, onnx_dir=tmp_path)
    assert streamed.onnx is None and streamed.onnx_data is None
    assert streamed.onnx_path == tmp_path / ONNX_NAME
    assert (tmp_path / ONNX_NAME).read_bytes() == ONNX_BYTES
    assert (tmp_path / ONNX_DATA_NAME).read_bytes() == WEIGHTS_BYTES


def test_without_weights_the_artifact_stays_format_1(tmp_path: Path) -> None:
    """Older lambdavision versions refuse format 2, so an artifact that does not need it is written as 1."""
    artifact = read_artifact(write_full(tmp_path / "m.tar.gz"))
    assert artifact.manifest is not None and artifact.manifest.format_version == 1
    assert artifact.onnx_data is None


def test_corrupt_weights_are_refused(tmp_path: Path) -> None:
    manifest = manifest_dict({CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES, ONNX_DATA_NAME: WEIGHTS_BYTES})
    members = [
        (MANIFEST_NAME, json.dumps(manifest).encode()),
        (CLASSES_NAME, classes_bytes()),
        (ONNX_NAME, ONNX_BYTES),
        (ONNX_DATA_NAME, WEIGHTS_BYTES[:-1] + b"\x00"),
    ]
    path = make_tar(tmp_path / "m.tar.gz", members)
    for onnx_dir in (None, tmp_path / "out"):
        (tmp_path / "out").mkdir(exist_ok=True)
        with pytest.raises(ArtifactError, match=r"member 'model\.onnx\.data' is corrupt"):
            read_artifact(path, onnx_dir=onnx_dir)


def test_listed_weights_that_are_missing_are_refused(tmp_path: Path) -> None:
    manifest = manifest_dict({CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES, ONNX_DATA_NAME: WEIGHTS_BYTES})
    members = [(MANIFEST_NAME, json.dumps(manifest).encode()), (CLASSES_NAME, classes_bytes()), (ONNX_NAME, ONNX_BYTES)]
    with pytest.raises(ArtifactError, match=r"member 'model\.onnx\.data' listed in lambdavision\.json is missing"):
        read_artifact(make_tar(tmp_path / "m.tar.gz", members))


def test_weights_without_a_graph_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"model\.onnx\.data without the model\.onnx"):
        write_full(tmp_path / "w.tar.gz", onnx=None, onnx_data=WEIGHTS_BYTES)
    manifest = manifest_dict({CLASSES_NAME: classes_bytes(), ONNX_DATA_NAME: WEIGHTS_BYTES, "model.pth": PTH_BYTES})
    members = [
        (MANIFEST_NAME, json.dumps(manifest).encode()),
        (CLASSES_NAME, classes_bytes()),
        (ONNX_DATA_NAME, WEIGHTS_BYTES),
        ("model.pth", PTH_BYTES),
    ]
    with pytest.raises(ArtifactError, match=r"lists model\.onnx\.data but no model\.onnx"):
        read_artifact(make_tar(tmp_path / "r.tar.gz", members))


def test_a_write_failing_midway_is_a_cache_write_error(tmp_path: Path) -> None:
    """The writer thread's ENOSPC reaches the reader as a CacheWriteError, and nothing hangs."""
    path = write_full(tmp_path / "m.tar.gz", onnx_data=incompressible(6 * 1024 * 1024, seed=4))
    out = tmp_path / "out"
    out.mkdir()
    (out / ONNX_DATA_NAME).symlink_to("/dev/full")  # every write: "No space left on device"
    threads_before = threading.active_count()
    with pytest.raises(CacheWriteError, match=r"cannot write .*model\.onnx\.data .*No space left"):
        read_artifact(path, onnx_dir=out)
    assert threading.active_count() == threads_before  # the writer thread was joined


# --- the gzip layer: what gzip itself accepts, from any stream ----------------------------------


class Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes per read, as a slow socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        chunk, self._data = bytes(self._data[:n]), self._data[n:]
        return chunk


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def full_members_bytes() -> bytes:
    manifest = manifest_dict({CLASSES_NAME: classes_bytes(), ONNX_NAME: ONNX_BYTES})
    return tar_bytes(
        [(MANIFEST_NAME, json.dumps(manifest).encode()), (CLASSES_NAME, classes_bytes()), (ONNX_NAME, ONNX_BYTES)]
    )


@pytest.mark.parametrize("step", [1, 7, 65536])
def test_short_reads_of_any_size_are_fine(step: int) -> None:
    artifact = read_artifact(Trickle(gzip.compress(full_members_bytes()), step))  # type: ignore[arg-type]
    assert artifact.onnx == ONNX_BYTES and artifact.classes == CLASSES


def test_concatenated_members_and_zero_padding_read_as_one_stream() -> None:
    """What `gzip -c a >> b` and padded tapes produce, and Python's gzip reads."""
    raw = full_members_bytes()
    half = len(raw) // 2
    data = gzip.compress(raw[:half]) + b"\0" * 100 + gzip.compress(raw[half:]) + b"\0" * 10
    assert gzip.decompress(data) == raw
    artifact = read_artifact(Trickle(data, 4096))  # type: ignore[arg-type]
    assert artifact.onnx == ONNX_BYTES


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda d: d[:-4] + b"\0\0\0\0", r"corrupt gzip data", id="wrong length in the trailer"),
        pytest.param(lambda d: d[:-8] + b"\0\0\0\0" + d[-4:], r"corrupt gzip data", id="wrong CRC"),
        pytest.param(
            lambda d: gzip.compress(gzip.decompress(d)[:30_000]) + b"garbage!",
            r"not a gzip-compressed tarball \(it starts with b'ga'\)",
            id="garbage where the next member should start",
        ),
        pytest.param(lambda d: d[: len(d) // 2], r"truncated or corrupt gzip data", id="truncated"),
        pytest.param(lambda d: b"\x1f", r"not a gzip-compressed tarball", id="one byte"),
    ],
)
def test_damaged_gzip_is_refused(damage: Any, message: str) -> None:
    """Read to the end (a classic artifact), so the trailer and what follows it are checked too."""
    data = damage(gzip.compress(tar_bytes([("model.pth", PTH_BYTES[:50_000]), ("classes.txt", classes_bytes())])))
    with pytest.raises(ArtifactError, match=message):
        read_artifact(io.BytesIO(data))


def test_an_empty_file_is_not_an_artifact() -> None:
    with pytest.raises(ArtifactError, match=r"not a valid tar archive|holds no files"):
        read_artifact(io.BytesIO(b""))
