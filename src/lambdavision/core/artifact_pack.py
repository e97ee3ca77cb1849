"""The members of a new artifact, in order, with the manifest that records them (pure).

`runtime.artifact_files.write_artifact` writes what `pack_artifact` returns as a deterministic
tar.gz; the export side (`export/`, `quantize`) calls that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lambdavision.core.errors import ArtifactError
from lambdavision.core.head import Head
from lambdavision.core.manifest import (
    CLASSES_NAME,
    MANIFEST_NAME,
    ONNX_DATA_NAME,
    ONNX_NAME,
    Manifest,
    format_version_for,
    is_bare_name,
)

if TYPE_CHECKING:
    from lambdavision.core.preprocess import Preprocessing


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
    if not (is_bare_name(torchscript_name) and torchscript_name.endswith(".pth")):
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


def check_class_names(classes: Sequence[str], where: str) -> None:
    if isinstance(classes, str) or not classes:
        raise ArtifactError(f"{where}: need a non-empty list of class names")
    for name in classes:
        if not isinstance(name, str) or not name.strip() or name != name.strip() or "\n" in name or "\r" in name:
            raise ArtifactError(
                f"{where}: class name {name!r} must be non-empty text without surrounding whitespace or line breaks"
            )


__all__ = ["check_class_names", "pack_artifact"]
