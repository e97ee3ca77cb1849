"""Reading an artifact from a tar stream, member by member, and stopping as soon as it can.

Pure over a byte stream (`read(n)`): the members the model needs are read and checked against the
manifest's sha256; those to stream elsewhere (the ONNX graph and its weights, into a serving
folder) go to a `MemberSink` the caller provides (`runtime.artifact_files` writes files with it).
Everything else about the archive's safety: `core.tarstream` (gzip and header caps) and
`_safe_name` here (links, devices, absolute or `..` paths are refused).
"""

from __future__ import annotations

import posixpath
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol, cast

from lambdavision.core.artifact import Artifact, Limits
from lambdavision.core.artifact_assemble import (
    Scan,
    assemble_classic,
    assemble_full,
    needed,
    verify,
    verify_digest,
    verify_read_so_far,
)
from lambdavision.core.errors import ArtifactError
from lambdavision.core.manifest import MANIFEST_NAME, ONNX_DATA_NAME, ONNX_NAME, Manifest
from lambdavision.core.tarstream import HEADER_SLACK_BYTES, ByteStream, CappedTarInfo, Gunzip

_CHUNK = 1024 * 1024


class MemberWriter(Protocol):
    """Where one streamed member's chunks go; `close` finishes it, `hexdigest` is their sha256."""

    def put(self, chunk: bytes) -> None: ...

    def close(self) -> None: ...

    def hexdigest(self) -> str: ...


class MemberSink(Protocol):
    """Takes the members that are streamed instead of read into memory (model.onnx and its data)."""

    def path(self, name: str) -> Path: ...

    def open(self, name: str, source: str) -> MemberWriter: ...


def scan_artifact(
    fileobj: ByteStream, source: str, want_torchscript: bool, limits: Limits, sink: MemberSink | None
) -> Artifact:
    """Read and verify the artifact in `fileobj`; ONNX members go to `sink` when there is one."""
    scan = Scan()
    cap = limits.max_total_bytes + HEADER_SLACK_BYTES
    try:
        # 1 MiB reads: tarfile's default 10 KiB record turns a 100 MB model into 10,000 calls.
        with tarfile.open(
            None, "r|", fileobj=cast(IO[bytes], Gunzip(fileobj, cap, source)), bufsize=_CHUNK, tarinfo=CappedTarInfo
        ) as tar:
            _scan_members(tar, scan, source, want_torchscript, limits, sink)
    except ArtifactError as exc:
        if exc.message.startswith(f"{source}:"):
            raise
        raise ArtifactError(f"{source}: {exc.message}") from exc
    except tarfile.TarError as exc:
        raise ArtifactError(f"{source}: not a valid tar archive ({exc})") from exc
    except OSError as exc:
        raise ArtifactError(f"{source}: cannot read the artifact ({exc})") from exc
    if not scan.seen:
        raise ArtifactError(f"{source}: the tarball holds no files")
    if scan.manifest is not None:
        return assemble_full(scan, scan.manifest, source, want_torchscript)
    return assemble_classic(scan, source)


def _scan_members(
    tar: tarfile.TarFile, scan: Scan, source: str, want_torchscript: bool, limits: Limits, sink: MemberSink | None
) -> None:
    count = 0
    total = 0
    for member in tar:
        count += 1
        if count > limits.max_members:
            raise ArtifactError(f"{source}: more than {limits.max_members} members (limit)")
        name = _safe_name(member, source)
        if member.isdir():
            continue
        if name in scan.seen:
            raise ArtifactError(f"{source}: member {name!r} appears twice")
        scan.seen.add(name)
        if member.size > limits.max_member_bytes:
            raise ArtifactError(
                f"{source}: member {name!r} is {member.size} bytes, over the "
                f"{limits.max_member_bytes}-byte limit per member"
            )
        total += member.size
        if total > limits.max_total_bytes:
            raise ArtifactError(
                f"{source}: member {name!r} takes the total over the {limits.max_total_bytes}-byte limit"
            )
        if not _wanted(name, scan, count, want_torchscript):
            scan.skipped.add(name)
            scan.skipped_bytes += member.size
            if scan.skipped_bytes > limits.max_skipped_bytes:
                raise ArtifactError(
                    f"{source}: members the model does not use take more than {limits.max_skipped_bytes} bytes "
                    f"(at {name!r}; limit)"
                )
            continue
        if name in (ONNX_NAME, ONNX_DATA_NAME) and sink is not None:
            if name == ONNX_NAME:
                scan.onnx_path = sink.path(ONNX_NAME)
            scan.streamed[name] = _stream_member(tar, member, name, source, sink)
            if scan.manifest is not None:
                verify_digest(name, scan.streamed[name], scan.manifest, source)
            if scan.manifest is not None and _have_all_needed(scan, scan.manifest, want_torchscript):
                return
            continue
        _check_in_memory_size(name, member.size, limits, source)
        data = _read_member(tar, member, name, source)
        if name == MANIFEST_NAME:
            scan.manifest = Manifest.from_json(data, where=f"{source}: {MANIFEST_NAME}")
            scan.manifest_first = count == 1 or scan.files == {}
            verify_read_so_far(scan, scan.manifest, source)
        else:
            if scan.manifest is not None:
                verify(name, data, scan.manifest, source)
            scan.files[name] = data
        if scan.manifest is not None and _have_all_needed(scan, scan.manifest, want_torchscript):
            return  # the rest (the TorchScript copy) is never decompressed


def _check_in_memory_size(name: str, size: int, limits: Limits, source: str) -> None:
    """The manifest and a class list are read into memory: refuse them over their caps, unread."""
    if name == MANIFEST_NAME:
        cap, what = limits.max_manifest_bytes, "manifest"
    elif name.endswith(".txt"):
        cap, what = limits.max_classes_bytes, "class list"
    else:
        return
    if size > cap:
        raise ArtifactError(f"{source}: member {name!r} is {size} bytes, over the {cap}-byte limit for a {what}")


def _safe_name(member: tarfile.TarInfo, source: str) -> str:
    """The member's normalised name, or an error if it is not a plain file or directory inside."""
    raw = member.name
    # tarfile strips a directory's trailing slashes: a directory named "" was "/" in the archive.
    if raw.startswith("/") or re.match(r"[A-Za-z]:[\\/]", raw) or (raw == "" and member.isdir()):
        raise ArtifactError(f"{source}: member {raw!r} has an absolute path; refusing the artifact")
    if ".." in re.split(r"[\\/]", raw):
        raise ArtifactError(f"{source}: member {raw!r} has a '..' path that escapes the archive")
    if member.issym() or member.islnk():
        raise ArtifactError(
            f"{source}: member {raw!r} is a {'symbolic' if member.issym() else 'hard'} link "
            f"(to {member.linkname!r}); links are refused"
        )
    if member.ischr() or member.isblk() or member.isfifo():
        raise ArtifactError(f"{source}: member {raw!r} is a device or FIFO; refusing the artifact")
    if not (member.isfile() or member.isdir()):
        raise ArtifactError(f"{source}: member {raw!r} is not a regular file (type {member.type!r})")
    name = posixpath.normpath(raw)
    if name in ("", ".") and not member.isdir():
        raise ArtifactError(f"{source}: member {raw!r} has an empty name")
    return name


def _wanted(name: str, scan: Scan, count: int, want_torchscript: bool) -> bool:
    """Read this member now? Only top-level files are ever part of a model."""
    if "/" in name or name.startswith("._"):  # nested or macOS resource-fork files: never ours
        return False
    manifest = scan.manifest
    if manifest is None:
        # Without a manifest up front (classic layout, or a foreign order) read every candidate.
        return name == MANIFEST_NAME or name.endswith((".txt", ".onnx", ".onnx.data", ".pth"))
    if name not in manifest.sha256:
        return False
    if name.endswith(".pth") and not scan.manifest_first:
        return True  # members were in a foreign order: keep it simple, read them
    return name in needed(manifest, want_torchscript)


def _have_all_needed(scan: Scan, manifest: Manifest, want_torchscript: bool) -> bool:
    return needed(manifest, want_torchscript) <= scan.files.keys() | scan.streamed.keys()


def _stream_member(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, source: str, sink: MemberSink) -> str:
    """Hand a member to `sink` in 1 MiB chunks; its sha256 hex digest."""
    writer = sink.open(name, source)
    try:
        for chunk in _member_chunks(tar, member, name, source):
            writer.put(chunk)
    finally:
        writer.close()
    return writer.hexdigest()


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, source: str) -> bytes:
    return b"".join(_member_chunks(tar, member, name, source))


def _member_chunks(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, source: str) -> Iterator[bytes]:
    """A member's data in chunks of up to 1 MiB; ArtifactError if the archive ends inside it."""
    extracted = tar.extractfile(member)
    if extracted is None:  # pragma: no cover - only regular files reach here
        raise ArtifactError(f"{source}: member {name!r} has no data")
    left = member.size
    while left > 0:
        chunk = extracted.read(min(_CHUNK, left))
        if not chunk:
            raise ArtifactError(f"{source}: member {name!r} is truncated")
        yield chunk
        left -= len(chunk)


__all__ = ["MemberSink", "MemberWriter", "scan_artifact"]
