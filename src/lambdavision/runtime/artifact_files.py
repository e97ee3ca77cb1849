"""The artifact on disk: open and read one, unpack it into a serving folder, write one.

The parsing and checks are `core.artifact` / `core.artifact_scan` (pure, over a stream); this module
adds the files: a path opened, the ONNX members streamed into a folder (hashed as they are written),
the serving folder written atomically and sealed (`runtime.seal`), an artifact written atomically.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdavision.core.artifact import DEFAULT_LIMITS, Artifact, Limits, decode_classes
from lambdavision.core.artifact_pack import pack_artifact
from lambdavision.core.artifact_scan import scan_artifact
from lambdavision.core.errors import ArtifactError, CacheWriteError
from lambdavision.core.head import Head
from lambdavision.core.manifest import CLASSES_NAME, MANIFEST_NAME, ONNX_DATA_NAME, ONNX_NAME, Manifest
from lambdavision.core.tarstream import ByteStream
from lambdavision.runtime.seal import UnsafeFolder, ensure_private_dir, write_seal
from lambdavision.runtime.unpack_sink import folder_sink

if TYPE_CHECKING:
    from lambdavision.core.preprocess import Preprocessing


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
                return scan_artifact(fileobj, name, want_torchscript, limits, folder_sink(onnx_dir))
        except OSError as exc:
            raise ArtifactError(f"{name}: cannot open the artifact ({exc.strerror or exc})") from exc
    return scan_artifact(
        source, str(getattr(source, "name", "<stream>")), want_torchscript, limits, folder_sink(onnx_dir)
    )


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
    created 0700 and must be this user's (runtime.seal); with `seal`, the folder also gets a record
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
        classes = decode_classes((folder / CLASSES_NAME).read_bytes(), CLASSES_NAME, where)
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
    extra = {"exported_by": f"lambdavision {_own_version()}", **(extra or {})}
    manifest, members = pack_artifact(
        str(out),
        classes=classes,
        preprocessing=preprocessing,
        onnx=onnx,
        torchscript=torchscript,
        torchscript_name=torchscript_name,
        extra=extra,
        onnx_data=onnx_data,
        head=head,
    )
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


def _own_version() -> str:
    from importlib import metadata  # only writers need it: not imported on the serving path

    try:
        return metadata.version("lambdavision")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


__all__ = ["read_artifact", "read_serving_dir", "unpack_for_serving", "write_artifact"]
