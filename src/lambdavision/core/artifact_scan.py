"""Reading an artifact from a tar stream, member by member, and stopping as soon as it can.

Pure over a byte stream (`read(n)`): the members the model needs are read and checked against the
manifest's sha256; those to stream elsewhere (the ONNX graph and its weights, into a serving
folder) go to a `MemberSink` the caller provides (`runtime.artifact_files` writes files with it).
Everything else about the archive's safety: `core.tarstream` (gzip and header caps) and
`_safe_name` here (links, devices, absolute or `..` paths are refused).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, cast

from lambdavision.core.artifact import Artifact, Limits, decode_classes
from lambdavision.core.errors import ArtifactError
from lambdavision.core.manifest import CLASSES_NAME, MANIFEST_NAME, ONNX_DATA_NAME, ONNX_NAME, Manifest
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


@dataclass
class _Scan:
    """What has been read so far."""

    manifest: Manifest | None = None
    manifest_first: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    streamed: dict[str, str] = field(default_factory=dict)  # member -> sha256, written to onnx_dir
    onnx_path: Path | None = None
    seen: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)
    skipped_bytes: int = 0


def scan_artifact(
    fileobj: ByteStream, source: str, want_torchscript: bool, limits: Limits, sink: MemberSink | None
) -> Artifact:
    """Read and verify the artifact in `fileobj`; ONNX members go to `sink` when there is one."""
    scan = _Scan()
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
        return _assemble_full(scan, scan.manifest, source, want_torchscript)
    return _assemble_classic(scan, source)


def _scan_members(
    tar: tarfile.TarFile, scan: _Scan, source: str, want_torchscript: bool, limits: Limits, sink: MemberSink | None
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
                _verify_digest(name, scan.streamed[name], scan.manifest, source)
            if scan.manifest is not None and _have_all_needed(scan, scan.manifest, want_torchscript):
                return
            continue
        _check_in_memory_size(name, member.size, limits, source)
        data = _read_member(tar, member, name, source)
        if name == MANIFEST_NAME:
            scan.manifest = Manifest.from_json(data, where=f"{source}: {MANIFEST_NAME}")
            scan.manifest_first = count == 1 or scan.files == {}
            _verify_read_so_far(scan, scan.manifest, source)
        else:
            if scan.manifest is not None:
                _verify(name, data, scan.manifest, source)
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
    if raw.startswith("/") or re.match(r"[A-Za-z]:[\\/]", raw):
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


def _wanted(name: str, scan: _Scan, count: int, want_torchscript: bool) -> bool:
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
    return name in _needed(manifest, want_torchscript)


def _needed(manifest: Manifest, want_torchscript: bool) -> set[str]:
    names = set(manifest.sha256)
    if want_torchscript or ONNX_NAME not in names:
        return names
    return {n for n in names if not n.endswith(".pth")}


def _have_all_needed(scan: _Scan, manifest: Manifest, want_torchscript: bool) -> bool:
    return _needed(manifest, want_torchscript) <= scan.files.keys() | scan.streamed.keys()


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


def _verify(name: str, data: bytes, manifest: Manifest, source: str) -> None:
    _verify_digest(name, hashlib.sha256(data).hexdigest(), manifest, source)


def _verify_digest(name: str, actual: str, manifest: Manifest, source: str) -> None:
    expected = manifest.sha256.get(name)
    if expected is None:
        raise ArtifactError(f"{source}: member {name!r} is not listed in {MANIFEST_NAME}")
    if actual != expected:
        raise ArtifactError(
            f"{source}: member {name!r} is corrupt: sha256 {actual[:12]}… does not match the "
            f"manifest's {expected[:12]}…"
        )


def _verify_read_so_far(scan: _Scan, manifest: Manifest, source: str) -> None:
    for name in list(scan.files):
        if name in manifest.sha256:
            _verify(name, scan.files[name], manifest, source)
        else:
            del scan.files[name]  # a stray candidate the manifest does not claim
    for name, digest in scan.streamed.items():
        _verify_digest(name, digest, manifest, source)


def _assemble_full(scan: _Scan, manifest: Manifest, source: str, want_torchscript: bool) -> Artifact:
    for name in sorted(_needed(manifest, want_torchscript)):
        if name not in scan.files and name not in scan.streamed:
            raise ArtifactError(f"{source}: member {name!r} listed in {MANIFEST_NAME} is missing")
    classes = decode_classes(scan.files[CLASSES_NAME], CLASSES_NAME, source)
    if len(classes) != manifest.num_classes:
        raise ArtifactError(
            f"{source}: {CLASSES_NAME} has {len(classes)} classes but {MANIFEST_NAME} says "
            f"num_classes={manifest.num_classes}"
        )
    torchscript_names = sorted(n for n in manifest.sha256 if n.endswith(".pth"))
    if len(torchscript_names) > 1:
        raise ArtifactError(f"{source}: more than one TorchScript member: {', '.join(torchscript_names)}")
    onnx = scan.files.get(ONNX_NAME)
    if ONNX_DATA_NAME in manifest.sha256 and ONNX_NAME not in manifest.sha256:
        raise ArtifactError(f"{source}: {MANIFEST_NAME} lists {ONNX_DATA_NAME} but no {ONNX_NAME}")
    torchscript_name = torchscript_names[0] if torchscript_names else None
    if onnx is None and scan.onnx_path is None and torchscript_name is None:
        raise ArtifactError(f"{source}: {MANIFEST_NAME} lists neither {ONNX_NAME} nor a .pth model")
    return Artifact(
        source=source,
        classes=classes,
        manifest=manifest,
        onnx=onnx,
        torchscript=scan.files.get(torchscript_name) if torchscript_name else None,
        torchscript_name=torchscript_name,
        onnx_path=scan.onnx_path,
        onnx_data=scan.files.get(ONNX_DATA_NAME),
    )


def _assemble_classic(scan: _Scan, source: str) -> Artifact:
    pth = _pick(scan, ".pth", "TorchScript model (*.pth)", None, source)
    txt = _pick(scan, ".txt", f"class list (*.txt, e.g. {CLASSES_NAME})", CLASSES_NAME, source)
    return Artifact(
        source=source,
        classes=decode_classes(scan.files[txt], txt, source),
        manifest=None,
        onnx=None,
        torchscript=scan.files[pth],
        torchscript_name=pth,
    )


def _pick(scan: _Scan, suffix: str, what: str, preferred: str | None, source: str) -> str:
    names = sorted(n for n in scan.files if n.endswith(suffix))
    if not names:
        raise ArtifactError(
            f"{source}: no {MANIFEST_NAME} and no {what} at the top level; "
            f"members: {', '.join(sorted(scan.seen)) or 'none'}"
        )
    if len(names) == 1:
        return names[0]
    if preferred in names:
        return preferred
    raise ArtifactError(f"{source}: ambiguous, several {suffix} members: {', '.join(names)}")


__all__ = ["MemberSink", "MemberWriter", "scan_artifact"]
