"""Properties of the artifact reader, as SECURITY.md states them, over mutated and hostile tarballs.

- Any mutated or truncated tarball is refused with an ArtifactError or read whole; nothing else.
- Among the members read before the reader stops, absolute paths, `..`, links, devices, FIFOs and
  duplicate members are refused, whatever else the archive holds; members after that are never
  read (checked against an oracle built from the archive's own member list, not from the reader).
- Unpacking writes nothing outside its serving folder, whatever the member names say (names
  pointing outside it are planted in a sandbox), and leaves no half-written folder behind.
- Reading holds no more memory than the caps allow, whatever sizes the headers declare and
  however well the payload compresses (traced with tracemalloc, Python's allocators and zlib's).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import posixpath
import tarfile
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdavision.core.artifact import Limits
from lambdavision.core.errors import ArtifactError
from lambdavision.runtime.artifact_files import read_artifact, unpack_for_serving
from tests.fuzz.budget import FUZZ_SETTINGS, Counter, run_budget

_KIB, _MIB = 1024, 1024 * 1024
SMALL_LIMITS = Limits(
    max_member_bytes=1 * _MIB,
    max_total_bytes=2 * _MIB,
    max_members=16,
    max_manifest_bytes=32 * _KIB,
    max_classes_bytes=128 * _KIB,
    max_skipped_bytes=1 * _MIB,
)
# What a read may hold: the members the caps let it keep (at most max_total_bytes), the member
# being joined from its chunks (a second copy of at most max_member_bytes), and 1 MiB read buffers
# (gunzip's output, tar's, zlib's, the chunk in hand; seen: up to 4.1 MiB together) or a tar header
# record of at most 1 MiB. Without the member or the total cap a read goes far over it.
MEMORY_BOUND = SMALL_LIMITS.max_total_bytes + SMALL_LIMITS.max_member_bytes + 5 * _MIB
NEEDED = ("lambdavision.json", "classes.txt", "model.onnx")  # what the colour artifact's reader reads


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


@pytest.fixture(scope="module")
def parts(good: bytes) -> dict[str, bytes]:
    """The colour artifact's members by name, in order."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(good), mode="r:gz") as tar:
        for member in tar:
            extracted = tar.extractfile(member)
            assert extracted is not None
            out[member.name] = extracted.read()
    assert tuple(out) == NEEDED
    return out


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


# --- hostile members, against an oracle ------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    kind: bytes  # a tarfile type
    data: bytes = b""
    linkname: str = ""
    extra: bool = True  # planted by the fuzzer (the colour artifact's own members are not)


# Placeholders the sandbox fills in: names that would land outside the serving folder if a reader
# ever extracted by the archive's names.
OUTSIDE_ABS = "{outside}/abs.txt"
NAMES = [
    "../escape.txt",
    "../../outside/up.txt",
    "a/../../outside/b.txt",
    "x/../classes.txt",
    "./classes.txt",
    "./model.onnx",
    "model.onnx/",
    "classes.txt/.",
    "notes/readme.md",
    "extra.bin",
    "labels.txt",
    "weights.pth",
    "._model.onnx",
    "dir",
    "dir/",
    "..",
    ".",
    "",
    OUTSIDE_ABS,
    "/etc/lambdavision-fuzz",
    "a" * 150,
]
KINDS = [tarfile.REGTYPE] * 4 + [tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]

names = st.one_of(
    st.sampled_from(NAMES),
    st.text(alphabet="abcxyz._/-", min_size=1, max_size=24),
)
extra_members = st.builds(
    Member,
    name=names,
    kind=st.sampled_from(KINDS),
    data=st.binary(max_size=64),
    linkname=st.sampled_from(["/etc/passwd", "../x", "classes.txt", "{outside}/link-target"]),
)


@st.composite
def hostile_layouts(draw: st.DrawFn, parts: dict[str, bytes]) -> list[Member]:
    members = [Member(name, tarfile.REGTYPE, data, extra=False) for name, data in parts.items()]
    for extra in draw(st.lists(extra_members, min_size=1, max_size=4)):
        members.insert(draw(st.integers(0, len(members))), extra)
    return members


def _normalized(name: str) -> str:
    return posixpath.normpath(name.rstrip("/")) if name.rstrip("/") else ""


def expected_refusal(members: list[Member]) -> str | None:
    """Why SECURITY.md says the reader must refuse these members, or None if it must accept them.

    The reader reads members until it holds the three the colour artifact needs, then stops: only
    those members are judged. Among them it refuses absolute paths, `..`, links, devices and FIFOs,
    and a member whose name (normalised) comes twice or differs from what the manifest lists.
    """
    seen: set[str] = set()
    needed_left = set(NEEDED)
    for member in members:
        is_dir = member.kind == tarfile.DIRTYPE
        name = member.name or ("/" if is_dir else "")  # tarfile writes a directory's name with a slash
        if name.startswith("/"):
            return "absolute path"
        if ".." in name.split("/"):
            return "'..'"
        if member.kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            return "link"
        if member.kind in (tarfile.CHRTYPE, tarfile.FIFOTYPE):
            return "device or FIFO"
        normal = _normalized(name)
        if is_dir:
            continue
        if normal in ("", "."):
            return "empty name"
        if normal in seen:
            return "duplicate"
        seen.add(normal)
        if member.extra and normal in NEEDED:
            return "a member the manifest lists, with other bytes"
        needed_left.discard(normal)
        if not needed_left:
            return None  # the reader stops here: what follows is never read
    return "incomplete"  # cannot happen: the three needed members are always there


def planted(members: list[Member], outside: Path) -> list[Member]:
    """The members with the sandbox's `outside` folder put into their names and link targets."""
    return [
        dataclasses.replace(
            m, name=m.name.replace("{outside}", str(outside)), linkname=m.linkname.replace("{outside}", str(outside))
        )
        for m in members
    ]


def build(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            if member.kind == tarfile.REGTYPE:
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
            else:
                info.linkname = member.linkname
                tar.addfile(info)
    return buf.getvalue()


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


SANDBOX = {"cwd", "cwd/here", "outside", "cache"}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tmp_path/{cwd/here,outside,cache}; the process works in cwd/here, so escapes relative to it
    or to the serving folder cache/model land in the sandbox."""
    for name in sorted(SANDBOX):
        (tmp_path / name).mkdir(mode=0o700)
    monkeypatch.chdir(tmp_path / "cwd" / "here")
    yield tmp_path


def test_hostile_member_names_and_types(parts: dict[str, bytes], sandbox: Path) -> None:
    counter = Counter()
    outside, cache = sandbox / "outside", sandbox / "cache"
    outcomes: dict[str, int] = {}

    @FUZZ_SETTINGS
    @given(hostile_layouts(parts))
    def target(layout: list[Member]) -> None:
        counter.tick()
        members = planted(layout, outside)
        data = build(members)
        expected = expected_refusal(members)
        try:
            artifact = read_artifact(io.BytesIO(data), limits=SMALL_LIMITS)
        except ArtifactError as exc:
            assert expected is not None, f"refused what must be accepted: {exc.message}"
        else:
            assert expected is None, f"accepted an artifact with a {expected} member: {members}"
            assert artifact.classes == parts["classes.txt"].decode().split()
            assert artifact.onnx == parts["model.onnx"]
        outcomes[expected or "accepted"] = outcomes.get(expected or "accepted", 0) + 1

        # The same archive unpacked to disk: nothing outside the serving folder, whatever the names.
        dest = cache / "model"
        try:
            unpack_for_serving(io.BytesIO(data), dest, SMALL_LIMITS)
        except ArtifactError:
            assert expected is not None
            assert tree(cache) == set(), "a refused artifact left files behind"
        else:
            assert expected is None
            assert tree(cache) == {"model", *(f"model/{name}" for name in NEEDED)}
            assert (dest / "model.onnx").read_bytes() == parts["model.onnx"]
            for child in dest.iterdir():
                child.unlink()
            dest.rmdir()
        assert tree(sandbox) == SANDBOX

    run_budget("artifact-hostile", target, counter)
    print(f"outcomes: {outcomes}")


# --- memory under the caps ------------------------------------------------------------------------

SIZES = st.sampled_from([0, 100, 32 * _KIB + 1, 128 * _KIB + 1, 700 * _KIB, _MIB, _MIB + 1, 3 * _MIB])
FILLS = st.sampled_from([b"\0", b"a\n", b"xyz"])  # compress to almost nothing: bombs


@st.composite
def oversized_layouts(draw: st.DrawFn, parts: dict[str, bytes]) -> list[tuple[str, int, bytes]]:
    """(name, size, fill) members: the needed ones and others of hostile sizes, in any order."""
    members = [(name, len(data), data) for name, data in parts.items()]
    big_names = st.sampled_from(["lambdavision.json", "classes.txt", "labels.txt", "extra.bin", "m.pth", "x.onnx"])
    for _ in range(draw(st.integers(1, 8))):
        name, size, fill = draw(big_names), draw(SIZES), draw(FILLS)
        members.insert(draw(st.integers(0, len(members))), (name, size, fill))
    return members


def build_sized(members: list[tuple[str, int, bytes]]) -> bytes:
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for index, (name, size, fill) in enumerate(members):
            earlier = {m[0] for m in members[:index]}
            info = tarfile.TarInfo(f"{index}{name}" if name in earlier else name)  # no duplicates here
            info.size = size
            payload = fill if len(fill) == size else (fill * (size // len(fill) + 1))[:size]
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_memory_and_disk_stay_under_the_caps(parts: dict[str, bytes], sandbox: Path) -> None:
    counter = Counter()
    bound = MEMORY_BOUND
    cache = sandbox / "cache"
    peaks = []

    @FUZZ_SETTINGS
    @given(oversized_layouts(parts), st.booleans())
    def target(members: list[tuple[str, int, bytes]], to_disk: bool) -> None:
        counter.tick()
        data = build_sized(members)
        tracemalloc.start()
        try:
            if to_disk:
                unpack_for_serving(io.BytesIO(data), cache / "model", SMALL_LIMITS)
            else:
                read_artifact(io.BytesIO(data), limits=SMALL_LIMITS)
        except ArtifactError:
            pass
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        peaks.append(peak)
        assert peak <= bound, f"read held {peak} bytes, over {bound}: {[(n, s) for n, s, _ in members]}"
        written = sum(path.stat().st_size for path in cache.rglob("*") if path.is_file())
        assert written <= SMALL_LIMITS.max_total_bytes
        for path in sorted(cache.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()

    run_budget("artifact-memory", target, counter)
    print(f"peak memory of a read: max {max(peaks) / _MIB:.1f} MiB (bound {bound / _MIB:.0f} MiB)")


# --- fixed hostile cases ---------------------------------------------------------------------------


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


def test_the_sandbox_is_where_escapes_would_land(sandbox: Path) -> None:
    # What the hostile fuzzer checks for would really be written there by a naive extractor.
    assert Path(os.getcwd()) == sandbox / "cwd" / "here"
    assert Path("../../outside/up.txt").resolve().parent == sandbox / "outside"
    assert (sandbox / "cache" / "model" / "../../outside/up.txt").resolve().parent == sandbox / "outside"
