"""The model artifact `model.tar.gz`: its manifest, and safe streaming read / deterministic write.

Two layouts are read:

- classic (the guide's): one TorchScript `*.pth` and one class list `*.txt` at the top level;
- full: `lambdavision.json`, `classes.txt`, `model.onnx`, `model.onnx.data` (format 2), then
  (optionally) the `.pth`, in that order, so a reader that serves ONNX stops before the
  TorchScript copy and never gunzips it.

Format 2 keeps the weights out of the graph, in ONNX's standard external-data file
`model.onnx.data`: ONNX Runtime memory-maps it instead of parsing and copying a 100 MB protobuf
(a ResNet-50's session creation fell from ~100 ms to ~10 ms). Format 1 (weights inside
`model.onnx`) is still read, and still written when a model has no external data.

Reading never trusts the archive: links, devices, absolute or `..` paths, duplicate members and
anything over the size caps are refused, and every member read is checked against the sha256 the
manifest records. Every refusal is an `ArtifactError` naming the artifact, the member and the
problem.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import queue
import re
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from lambdavision.core.errors import ArtifactError
from lambdavision.core.manifest import (
    CLASSES_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    ONNX_DATA_NAME,
    ONNX_NAME,
    Head,
    Manifest,
    format_version_for,
)
from lambdavision.core.manifest import is_bare_name as _is_bare_name
from lambdavision.core.seal import UnsafeFolder, ensure_private_dir, write_seal
from lambdavision.core.tarstream import HEADER_SLACK_BYTES, ByteStream, CappedTarInfo, Gunzip

if TYPE_CHECKING:
    # Imported where used at run time: core.preprocess brings numpy and Pillow, and this module
    # must stay light enough for the model download to start before those imports (model_source).
    from lambdavision.core.preprocess import Preprocessing

_GIB = 1024**3
_MIB = 1024**2
_CHUNK = 1024 * 1024


class CacheWriteError(ArtifactError):
    """Writing an unpacked model to disk failed (disk full, read-only): the caller may fall back to memory."""


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile or broken tarball from exhausting memory or time."""

    max_member_bytes: int = 1 * _GIB
    max_total_bytes: int = 2 * _GIB
    max_members: int = 64
    # Read into memory, so capped at what a real model needs (21,843 ImageNet-21k names: ~0.4 MB).
    max_manifest_bytes: int = 1 * _MIB
    max_classes_bytes: int = 4 * _MIB
    # Members passed over before the needed ones are all read: each is still gunzipped to skip it
    # (1 GiB took ~1.1 s here), so they are capped well inside Lambda's 10 s INIT.
    max_skipped_bytes: int = 256 * _MIB


DEFAULT_LIMITS = Limits()


@dataclass
class Artifact:
    """What a server needs from a `model.tar.gz`, read and verified."""

    source: str
    classes: list[str]
    manifest: Manifest | None
    onnx: bytes | None
    torchscript: bytes | None
    torchscript_name: str | None
    # Set instead of `onnx` when the model was streamed to a file (read_artifact's `onnx_dir`, or
    # an unpacked serving folder): ONNX Runtime then loads it by path, with no copy in Python,
    # and memory-maps its weights file (model.onnx.data) from the same folder.
    onnx_path: Path | None = None
    # The weights of a format-2 model read into memory (no `onnx_dir`); None for format 1.
    onnx_data: bytes | None = None

    @property
    def preprocessing(self) -> Preprocessing:
        """The manifest's, or the guide's Resize(256) + CenterCrop(224) + ImageNet stats."""
        from lambdavision.core.preprocess import Preprocessing

        return self.manifest.preprocessing if self.manifest is not None else Preprocessing()

    @property
    def head(self) -> Head:
        """The manifest's, or softmax (a classic tarball is a single-label classifier)."""
        return self.manifest.head if self.manifest is not None else Head()


def read_artifact(
    source: str | os.PathLike[str] | ByteStream,
    *,
    want_torchscript: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    onnx_dir: Path | None = None,
) -> Artifact:
    """Read and verify an artifact from a path or a binary file object (left open).

    Streams the archive member by member and stops as soon as it holds the manifest, the classes
    and the ONNX model; the TorchScript copy behind them is read only with `want_torchscript` or
    when there is no ONNX model. With `onnx_dir`, `model.onnx` and its weights `model.onnx.data`
    are streamed (and hashed) into that folder instead of memory, and the Artifact carries its
    `onnx_path`.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            with open(name, "rb") as fileobj:
                return _read(fileobj, name, want_torchscript, limits, onnx_dir)
        except OSError as exc:
            raise ArtifactError(f"{name}: cannot open the artifact ({exc.strerror or exc})") from exc
    return _read(source, str(getattr(source, "name", "<stream>")), want_torchscript, limits, onnx_dir)


def unpack_for_serving(
    source: str | os.PathLike[str] | ByteStream, dest: Path, limits: Limits = DEFAULT_LIMITS, *, seal: bool = False
) -> Artifact:
    """Verify an artifact and write what a server needs into the folder `dest`, atomically.

    `dest` gets lambdavision.json, classes.txt, model.onnx and model.onnx.data when the model has
    one (never the TorchScript copy); a crash leaves no half-written folder. Used for the S3 disk
    cache and for a model bundled in a Lambda package, which then load with `read_serving_dir` by
    path, without gunzipping. If `dest` already holds this same model (another process unpacked it
    first), that copy is used; if it holds another model, that is an error, never a silent swap.
    A classic artifact (no ONNX) is returned as read, and nothing is written. `dest`'s parent is
    created 0700 and must be this user's (core.seal); with `seal`, the folder also gets a record
    of its files (`check_seal` finds any later change), written before it appears under `dest`.
    """
    try:
        ensure_private_dir(dest.parent)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    except UnsafeFolder as exc:
        raise CacheWriteError(str(exc)) from exc
    except OSError as exc:
        raise CacheWriteError(f"cannot create a folder under {dest.parent} ({exc})") from exc
    try:
        artifact = read_artifact(source, limits=limits, onnx_dir=staging)
        if artifact.manifest is None or artifact.onnx_path is None:
            return artifact
        try:
            (staging / MANIFEST_NAME).write_bytes(artifact.manifest.to_json())
            (staging / CLASSES_NAME).write_text("\n".join(artifact.classes) + "\n", encoding="utf-8")
            if seal:
                write_seal(staging)
            os.rename(staging, dest)
        except OSError as exc:
            if not (dest / MANIFEST_NAME).is_file():  # not another process that got there first
                raise CacheWriteError(f"cannot write the unpacked model to {dest} ({exc})") from exc
        served = read_serving_dir(dest, source=artifact.source)
        if served.manifest is None or served.manifest.sha256 != artifact.manifest.sha256:
            raise ArtifactError(f"{dest} already holds another model; remove it or unpack elsewhere")
        return served
    finally:
        if staging.exists():
            for child in staging.iterdir():
                child.unlink()
            staging.rmdir()


def read_serving_dir(folder: Path, source: str | None = None) -> Artifact:
    """Load a folder written by `unpack_for_serving` (it verified the members when it wrote them)."""
    where = source or str(folder)
    try:
        manifest = Manifest.from_json((folder / MANIFEST_NAME).read_bytes(), where=f"{where}: {MANIFEST_NAME}")
        classes = _decode_classes((folder / CLASSES_NAME).read_bytes(), CLASSES_NAME, where)
    except OSError as exc:
        raise ArtifactError(f"{where}: cannot read the serving folder ({exc})") from exc
    onnx_path = folder / ONNX_NAME
    for name in (ONNX_NAME, *([ONNX_DATA_NAME] if ONNX_DATA_NAME in manifest.sha256 else [])):
        if not (folder / name).is_file():
            raise ArtifactError(f"{where}: {name} is missing from the serving folder {folder}")
    if len(classes) != manifest.num_classes:
        raise ArtifactError(
            f"{where}: {CLASSES_NAME} has {len(classes)} classes but {MANIFEST_NAME} says "
            f"num_classes={manifest.num_classes}"
        )
    return Artifact(where, classes, manifest, None, None, None, onnx_path=onnx_path)


def write_artifact(
    out_path: str | os.PathLike[str],
    *,
    classes: Sequence[str],
    preprocessing: Preprocessing,
    onnx: bytes | None,
    torchscript: bytes | None,
    torchscript_name: str = "model.pth",
    extra: Mapping[str, Any] | None = None,
    onnx_data: bytes | None = None,
    head: Head | None = None,
) -> Manifest:
    """Write a full-layout artifact atomically (nothing is left behind on failure).

    `onnx_data` is the weights file `onnx` refers to as model.onnx.data (format 2); a recorded
    preprocessing pipeline or a sigmoid `head` makes it format 3 (see core.manifest).
    Byte-for-byte deterministic: fixed member order, mtimes, owners and gzip header.
    """
    out = Path(out_path)
    if onnx is None and torchscript is None:
        raise ArtifactError(f"{out}: nothing to write: neither an ONNX nor a TorchScript model")
    if onnx_data is not None and onnx is None:
        raise ArtifactError(f"{out}: {ONNX_DATA_NAME} without the {ONNX_NAME} that refers to it")
    _check_class_names(classes, str(out))
    if not (_is_bare_name(torchscript_name) and torchscript_name.endswith(".pth")):
        raise ArtifactError(f"{out}: torchscript_name {torchscript_name!r} must be a bare name ending in .pth")
    if torchscript_name in (MANIFEST_NAME, CLASSES_NAME, ONNX_NAME, ONNX_DATA_NAME):
        raise ArtifactError(f"{out}: torchscript_name {torchscript_name!r} clashes with another member")

    payloads: list[tuple[str, bytes]] = [(CLASSES_NAME, "".join(f"{c}\n" for c in classes).encode("utf-8"))]
    if onnx is not None:
        payloads.append((ONNX_NAME, onnx))
    if onnx_data is not None:
        payloads.append((ONNX_DATA_NAME, onnx_data))
    if torchscript is not None:
        payloads.append((torchscript_name, torchscript))
    manifest_extra = {"exported_by": f"lambdavision {_own_version()}", **(extra or {})}
    head = head or Head()
    manifest = Manifest(
        format_version=format_version_for(preprocessing, head, onnx_data is not None),
        preprocessing=preprocessing,
        num_classes=len(classes),
        sha256={name: hashlib.sha256(data).hexdigest() for name, data in payloads},
        extra=manifest_extra,
        head=head,
    )
    members = [(MANIFEST_NAME, manifest.to_json()), *payloads]

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            # Stored (level 0) deflate blocks: float weights barely compress (a ResNet-50 is 102 MB
            # raw, 94 MB at level 1, 93 MB at 6), but inflating real deflate data costs the cold
            # start of a model read from S3 0.36 s (level 1) against 0.05 s stored. Still gzip.
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=0, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp_name, 0o644)  # mkstemp's 0600 would hide the artifact from other users
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return manifest


# --- reading ------------------------------------------------------------------------------------


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


def _read(fileobj: ByteStream, source: str, want_torchscript: bool, limits: Limits, onnx_dir: Path | None) -> Artifact:
    scan = _Scan()
    cap = limits.max_total_bytes + HEADER_SLACK_BYTES
    try:
        # 1 MiB reads: tarfile's default 10 KiB record turns a 100 MB model into 10,000 calls.
        with tarfile.open(
            None, "r|", fileobj=cast(IO[bytes], Gunzip(fileobj, cap, source)), bufsize=_CHUNK, tarinfo=CappedTarInfo
        ) as tar:
            _scan_members(tar, scan, source, want_torchscript, limits, onnx_dir)
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
    tar: tarfile.TarFile, scan: _Scan, source: str, want_torchscript: bool, limits: Limits, onnx_dir: Path | None
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
        if name in (ONNX_NAME, ONNX_DATA_NAME) and onnx_dir is not None:
            if name == ONNX_NAME:
                scan.onnx_path = onnx_dir / ONNX_NAME
            scan.streamed[name] = _stream_member(tar, member, name, source, onnx_dir / name)
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


def _stream_member(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, source: str, target: Path) -> str:
    """Copy a member to `target` in 1 MiB chunks, hashing as it goes; its sha256 hex digest.

    Hashing and writing run in a second thread while this one reads (the download, gunzip and tar
    parsing): sha256, file writes, zlib and socket reads all release the GIL, so on two cores a
    100 MB model unpacks in about the time of the slower half instead of the sum (129 -> ~80 ms).
    """
    try:
        out = open(target, "wb")  # noqa: SIM115 - closed by the writer; write errors must be told apart
    except OSError as exc:
        raise CacheWriteError(f"{source}: cannot write {target} ({exc})") from exc
    writer = _HashingWriter(out, f"{source}: cannot write {target}")
    try:
        for chunk in _member_chunks(tar, member, name, source):
            writer.put(chunk)
    finally:
        writer.close()
    return writer.hexdigest()


class _HashingWriter:
    """A thread that hashes and writes the chunks it is given, a few MiB behind the reader."""

    _DEPTH = 4  # chunks in flight: bounds the extra memory to a few MiB

    def __init__(self, out: IO[bytes], what: str) -> None:
        self._out = out
        self._what = what
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self._DEPTH)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="lambdavision-unpack", daemon=True)
        self._thread.start()

    def put(self, chunk: bytes) -> None:
        self._raise_if_failed()
        self._queue.put(chunk)

    def close(self) -> None:
        """Wait for the writer to finish and close the file; raises CacheWriteError if a write failed."""
        self._queue.put(None)
        self._thread.join()
        try:
            self._out.close()
        except OSError as exc:
            self._error = self._error or exc
        self._raise_if_failed()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so the reader never blocks on a full queue
            self._digest.update(chunk)
            try:
                self._out.write(chunk)
            except OSError as exc:
                self._error = exc

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise CacheWriteError(f"{self._what} ({self._error})")


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
    classes = _decode_classes(scan.files[CLASSES_NAME], CLASSES_NAME, source)
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
        classes=_decode_classes(scan.files[txt], txt, source),
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


def _decode_classes(data: bytes, name: str, source: str) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{source}: member {name!r} is not UTF-8 text ({exc.reason})") from exc
    classes = [line.strip() for line in text.splitlines() if line.strip()]
    if not classes:
        raise ArtifactError(f"{source}: member {name!r} lists no classes")
    return classes


# --- small helpers ------------------------------------------------------------------------------


def _check_class_names(classes: Sequence[str], where: str) -> None:
    if isinstance(classes, str) or not classes:
        raise ArtifactError(f"{where}: need a non-empty list of class names")
    for name in classes:
        if not isinstance(name, str) or not name.strip() or name != name.strip() or "\n" in name or "\r" in name:
            raise ArtifactError(
                f"{where}: class name {name!r} must be non-empty text without surrounding whitespace or line breaks"
            )


def _own_version() -> str:
    from importlib import metadata  # only writers need it: not imported on the serving path

    try:
        return metadata.version("lambdavision")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


__all__ = [
    "CLASSES_NAME",
    "DEFAULT_LIMITS",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "ONNX_DATA_NAME",
    "ONNX_NAME",
    "Artifact",
    "Limits",
    "Manifest",
    "read_artifact",
    "write_artifact",
]
