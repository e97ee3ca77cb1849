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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lambdavision.core.errors import ArtifactError
from lambdavision.core.head import Head
from lambdavision.core.manifest import CLASSES_NAME, FORMAT_VERSION, MANIFEST_NAME, ONNX_DATA_NAME, ONNX_NAME, Manifest

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


def decode_classes(data: bytes, name: str, source: str) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{source}: member {name!r} is not UTF-8 text ({exc.reason})") from exc
    classes = [line.strip() for line in text.splitlines() if line.strip()]
    if not classes:
        raise ArtifactError(f"{source}: member {name!r} lists no classes")
    return classes


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
    "decode_classes",
]
