"""Property: the artifact reader refuses any mutated, truncated or hostile tarball with an ArtifactError.

It never raises anything else, never writes outside memory, and never reads past its caps.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdavision.core.artifact import Limits
from lambdavision.core.errors import ArtifactError
from lambdavision.runtime.artifact_files import read_artifact
from tests.fuzz.budget import FUZZ_SETTINGS, Counter, run_budget

SMALL_LIMITS = Limits(max_member_bytes=2_000_000, max_total_bytes=4_000_000, max_members=16)


def read(data: bytes) -> None:
    try:
        artifact = read_artifact(io.BytesIO(data), limits=SMALL_LIMITS)
    except ArtifactError as exc:
        assert exc.message
        return
    # Accepted: then it is a usable artifact.
    assert artifact.classes
    assert artifact.onnx is not None or artifact.torchscript is not None


@pytest.fixture(scope="module")
def good(colour_artifact: Path) -> bytes:
    return colour_artifact.read_bytes()


def test_mutated_and_truncated_tarballs(good: bytes) -> None:
    counter = Counter()
    raw = gzip.decompress(good)

    @FUZZ_SETTINGS
    @given(st.data())
    def target(data: st.DataObject) -> None:
        counter.tick()
        compressed = data.draw(st.booleans())
        blob = bytearray(good if compressed else raw)
        for _ in range(data.draw(st.integers(0, 6))):
            index = data.draw(st.integers(0, len(blob) - 1))
            blob[index] = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()):
            blob = blob[: data.draw(st.integers(0, len(blob)))]
        payload = bytes(blob) if compressed else gzip.compress(bytes(blob), mtime=0)
        read(payload)

    run_budget("artifact-mutation", target, counter)


names = st.one_of(
    st.sampled_from(
        [
            "../escape.txt",
            "/etc/passwd",
            "a/../../b",
            "classes.txt",
            "model.onnx",
            "lambdavision.json",
            "x.pth",
            "./classes.txt",
            "dir/",
            "",
            "\x00",
            "a" * 300,
        ]
    ),
    st.text(min_size=1, max_size=40),
)


@st.composite
def hostile_tar(draw: st.DrawFn) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for _ in range(draw(st.integers(1, 5))):
            info = tarfile.TarInfo(draw(names))
            kind = draw(
                st.sampled_from(
                    [
                        tarfile.REGTYPE,
                        tarfile.SYMTYPE,
                        tarfile.LNKTYPE,
                        tarfile.CHRTYPE,
                        tarfile.DIRTYPE,
                        tarfile.FIFOTYPE,
                    ]
                )
            )
            info.type = kind
            payload = draw(st.binary(max_size=64))
            if kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.linkname = draw(st.sampled_from(["/etc/passwd", "../x", "classes.txt"]))
                tar.addfile(info)
    return buf.getvalue()


def test_hostile_member_names_and_types() -> None:
    counter = Counter()

    @FUZZ_SETTINGS
    @given(hostile_tar())
    def target(data: bytes) -> None:
        counter.tick()
        read(data)

    run_budget("artifact-hostile", target, counter)


def test_huge_declared_size_and_gzip_bomb() -> None:
    # A header that declares 10 GB for a member, and a bomb of zeros past the total cap.
    info = tarfile.TarInfo("classes.txt")
    info.size = 10 * 1024**3
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    with pytest.raises(ArtifactError):
        read_artifact(io.BytesIO(gzip.compress(header + b"a\n" * 100, mtime=0)), limits=SMALL_LIMITS)
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb", mtime=0) as gz:
        big = tarfile.TarInfo("model.onnx")
        big.size = 8_000_000
        gz.write(big.tobuf(format=tarfile.GNU_FORMAT))
        for _ in range(8):
            gz.write(b"\x00" * 1_000_000)
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(ArtifactError):
        read_artifact(io.BytesIO(bomb.getvalue()), limits=SMALL_LIMITS)


def test_a_huge_long_name_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A GNU long-name record tarfile would read whole: 20 MB of name in a ~20 KB artifact."""
    path = tmp_path / "m.tar.gz"
    with gzip.open(path, "wb") as gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("x" * 20_000_000)
        tar.addfile(info)
    assert path.stat().st_size < 200_000
    with pytest.raises(ArtifactError, match=r"m\.tar\.gz: a tar header record of \d+ bytes"):
        read_artifact(path)
