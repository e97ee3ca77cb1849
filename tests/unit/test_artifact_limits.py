"""Issue 14.5: the artifact reader's refusals are ArtifactErrors, bounded in memory and time.

Chained PAX headers, a class list or manifest of hundreds of MB, and gigabytes of members the
model does not use, each refused before it costs anything; members after the ones serving needs
are never read (what SECURITY.md says).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from pathlib import Path

import pytest

from lambdavision.core.artifact import CLASSES_NAME, MANIFEST_NAME, ONNX_NAME, Limits
from lambdavision.core.errors import ArtifactError
from lambdavision.core.tarstream import MAX_HEADER_CHAIN
from lambdavision.runtime.artifact_files import read_artifact
from tests.unit.test_artifact import (
    CountingReader,
    classes_bytes,
    full_members,
    make_tar,
    special,
    tar_bytes,
)


def _header(name: str, size: int, kind: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def pax_chain(headers: int) -> bytes:
    """`headers` PAX extended headers in a row, then a class list: what tarfile follows by recursion."""
    record = b"17 comment=chain\n"
    assert len(record) == int(record.split()[0])
    pax = _header("././@PaxHeader", len(record), tarfile.XHDTYPE) + record.ljust(512, b"\0")
    data = classes_bytes()
    member = _header(CLASSES_NAME, len(data), tarfile.REGTYPE) + data.ljust(512, b"\0")
    pth = _header("model.pth", 3, tarfile.REGTYPE) + b"pth".ljust(512, b"\0")
    return gzip.compress(pax * headers + member + pth + b"\0" * 1024)


def test_3000_chained_pax_headers_are_an_artifact_error() -> None:
    with pytest.raises(ArtifactError, match=f"more than {MAX_HEADER_CHAIN} extended"):
        read_artifact(io.BytesIO(pax_chain(3000)))


def test_a_chain_up_to_the_cap_is_read() -> None:
    artifact = read_artifact(io.BytesIO(pax_chain(MAX_HEADER_CHAIN - 1)), want_torchscript=True)
    assert artifact.classes == ["circle", "square", "triangle"]
    with pytest.raises(ArtifactError, match="extended"):
        read_artifact(io.BytesIO(pax_chain(MAX_HEADER_CHAIN + 1)))


def _zero_member_tgz(name: str, size: int, then: list[tuple[str, bytes]] | None = None) -> bytes:
    """A tar.gz whose first member is `size` bytes (a repeated line), streamed: no copy in memory."""
    out = io.BytesIO()
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    out.write(gz.compress(_header(name, size, tarfile.REGTYPE)))
    block = b"cat\n" * (1 << 18)
    left = size
    while left:
        piece = block[: min(len(block), left)]
        out.write(gz.compress(piece))
        left -= len(piece)
    out.write(gz.compress(b"\0" * (-size % 512)))
    out.write(gz.compress(tar_bytes(then or [])))
    out.write(gz.flush())
    return out.getvalue()


def test_a_300_mb_class_list_is_refused_unread() -> None:
    data = _zero_member_tgz(CLASSES_NAME, 300_000_000)
    assert len(data) < 1_000_000  # ~ the 675 KB
    source = CountingReader(data)
    with pytest.raises(ArtifactError, match=r"member 'classes\.txt' is 300000000 bytes, over the 4194304-byte limit"):
        read_artifact(io.BufferedReader(source))
    assert source.bytes_read < 2 * 1024 * 1024  # refused from its header: the body was never gunzipped


def test_a_big_manifest_is_refused_unread() -> None:
    manifest = json.dumps({"pad": "x" * (2 * 1024 * 1024)}).encode()
    path = io.BytesIO(gzip.compress(tar_bytes([(MANIFEST_NAME, manifest), (CLASSES_NAME, classes_bytes())])))
    with pytest.raises(ArtifactError, match=r"'lambdavision\.json' is \d+ bytes, over the 1048576-byte limit"):
        read_artifact(path)


def test_members_the_model_does_not_use_are_capped_in_total(tmp_path: Path) -> None:
    limits = Limits(max_skipped_bytes=1024 * 1024)
    junk = _zero_member_tgz("docs/notes.bin", 2 * 1024 * 1024, then=full_members())
    with pytest.raises(ArtifactError, match=r"members the model does not use take more than 1048576 bytes"):
        read_artifact(io.BytesIO(junk), limits=limits)
    small = _zero_member_tgz("docs/notes.bin", 512 * 1024, then=full_members())
    assert read_artifact(io.BytesIO(small), limits=limits).onnx is not None


def test_the_default_skip_cap_is_a_quarter_gib() -> None:
    assert Limits().max_skipped_bytes == 256 * 1024 * 1024


def test_members_after_the_needed_ones_are_never_read(tmp_path: Path) -> None:
    # What SECURITY.md promises: refusals apply to the members read; once the manifest, classes
    # and model are in hand, a link, a duplicate or a 65th member behind them is never looked at.
    after = [
        special("evil-link", tarfile.SYMTYPE, "/etc/passwd"),
        (ONNX_NAME, b"a second model.onnx"),
        *[(f"extra{i}", b"") for i in range(70)],
    ]
    path = make_tar(tmp_path / "tail.tar.gz", [*full_members(), *after])
    artifact = read_artifact(path)
    assert artifact.classes == ["circle", "square", "triangle"]
    # The same members before the needed ones are refused.
    path = make_tar(tmp_path / "head.tar.gz", [after[0], *full_members()])
    with pytest.raises(ArtifactError, match="symbolic link"):
        read_artifact(path)
