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

Pure: this module is what an artifact is (`Artifact`, `Limits`) and how its members are checked
and assembled; `core.artifact_scan` reads a tar stream; `runtime.artifact_files` opens, unpacks
and writes files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    # Imported where used at run time: core.preprocess brings numpy and Pillow, and this module
    # must stay light enough for the model download to start before those imports (model_source).
    from lambdavision.core.preprocess import Preprocessing

_GIB = 1024**3
_MIB = 1024**2


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


def pack_artifact(
    where: str,
    *,
    classes: Sequence[str],
    preprocessing: Preprocessing,
    onnx: bytes | None,
    torchscript: bytes | None,
    torchscript_name: str = "model.pth",
    extra: Mapping[str, Any] | None = None,
    onnx_data: bytes | None = None,
    head: Head | None = None,
) -> tuple[Manifest, list[tuple[str, bytes]]]:
    """The manifest and the members, in order, of a full-layout artifact (checked; `where` names it
    in errors). `runtime.artifact_files.write_artifact` writes them.

    `onnx_data` is the weights file `onnx` refers to as model.onnx.data (format 2); a recorded
    preprocessing pipeline or a sigmoid `head` makes it format 3 (see core.manifest).
    """
    out = where
    if onnx is None and torchscript is None:
        raise ArtifactError(f"{out}: nothing to write: neither an ONNX nor a TorchScript model")
    if onnx_data is not None and onnx is None:
        raise ArtifactError(f"{out}: {ONNX_DATA_NAME} without the {ONNX_NAME} that refers to it")
    check_class_names(classes, out)
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
    manifest_extra = dict(extra or {})
    head = head or Head()
    manifest = Manifest(
        format_version=format_version_for(preprocessing, head, onnx_data is not None),
        preprocessing=preprocessing,
        num_classes=len(classes),
        sha256={name: hashlib.sha256(data).hexdigest() for name, data in payloads},
        extra=manifest_extra,
        head=head,
    )
    return manifest, [(MANIFEST_NAME, manifest.to_json()), *payloads]


def decode_classes(data: bytes, name: str, source: str) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{source}: member {name!r} is not UTF-8 text ({exc.reason})") from exc
    classes = [line.strip() for line in text.splitlines() if line.strip()]
    if not classes:
        raise ArtifactError(f"{source}: member {name!r} lists no classes")
    return classes


def check_class_names(classes: Sequence[str], where: str) -> None:
    if isinstance(classes, str) or not classes:
        raise ArtifactError(f"{where}: need a non-empty list of class names")
    for name in classes:
        if not isinstance(name, str) or not name.strip() or name != name.strip() or "\n" in name or "\r" in name:
            raise ArtifactError(
                f"{where}: class name {name!r} must be non-empty text without surrounding whitespace or line breaks"
            )


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
    "check_class_names",
    "decode_classes",
    "pack_artifact",
]
