"""`lambdavision.json`, the artifact's manifest: how to feed the model, how its logits become
answers, how many classes, and each member's sha256.

Format versions (each reader refuses a newer one rather than serve it wrongly):
1. classic preprocessing (input_size / resize_size / mean / std), weights inside model.onnx;
2. the same with the weights in model.onnx.data;
3. a recorded preprocessing pipeline (`steps`: a fastai Learner's, a torchvision preset's) or a
   multi-label head (sigmoid + threshold).

Light on purpose (stdlib only at import): the model download starts before numpy and Pillow load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdavision.core.errors import ArtifactError
from lambdavision.core.head import Head

if TYPE_CHECKING:
    from lambdavision.core.preprocess import Preprocessing

MANIFEST_NAME = "lambdavision.json"
CLASSES_NAME = "classes.txt"
ONNX_NAME = "model.onnx"
ONNX_DATA_NAME = "model.onnx.data"  # the weights; model.onnx refers to it by this name
FORMAT_VERSION = 3  # the newest this code reads
PIPELINE_FORMAT_VERSION = 3  # the first that can hold `steps` or a sigmoid head

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Manifest:
    """`lambdavision.json`: how to feed the model, how many classes, and each member's digest."""

    format_version: int
    preprocessing: Preprocessing
    num_classes: int
    sha256: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)
    head: Head = field(default_factory=Head)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format_version": self.format_version,
            "preprocessing": self.preprocessing.to_dict(),
            "num_classes": self.num_classes,
            "sha256": dict(self.sha256),
            "extra": dict(self.extra),
        }
        if self.format_version >= PIPELINE_FORMAT_VERSION:
            out["head"] = self.head.to_dict()
        return out

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> Manifest:
        """Parse and validate; `where` prefixes every error ("ARTIFACT: lambdavision.json")."""
        from lambdavision.core.preprocess import Preprocessing

        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{where}: not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise ArtifactError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        version = field_of(raw, "format_version", int, where)
        if version < 1:
            raise ArtifactError(f"{where}: format_version must be >= 1, got {version}")
        if version > FORMAT_VERSION:
            raise ArtifactError(
                f"{where}: format_version {version} is newer than this lambdavision reads "
                f"({FORMAT_VERSION}); upgrade lambdavision"
            )
        num_classes = field_of(raw, "num_classes", int, where)
        if num_classes < 1:
            raise ArtifactError(f"{where}: num_classes must be >= 1, got {num_classes}")
        digests = field_of(raw, "sha256", dict, where)
        for name, digest in digests.items():
            if not is_bare_name(name):
                raise ArtifactError(f"{where}: sha256 names a member {name!r} that is not a bare file name")
            if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
                raise ArtifactError(f"{where}: sha256 of {name!r} is not 64 lowercase hex digits")
        if CLASSES_NAME not in digests:
            raise ArtifactError(f"{where}: sha256 does not list {CLASSES_NAME}")
        extra = raw.get("extra", {})
        if not isinstance(extra, dict):
            raise ArtifactError(f"{where}: 'extra' must be an object, got {type(extra).__name__}")
        preprocessing = Preprocessing.from_dict(field_of(raw, "preprocessing", dict, where), where)
        head = Head.from_dict(raw["head"], where) if "head" in raw else Head()
        if version < PIPELINE_FORMAT_VERSION and (preprocessing.steps or head != Head()):
            # An older lambdavision would serve it with the wrong arithmetic; the version says so.
            raise ArtifactError(
                f"{where}: a preprocessing pipeline or a sigmoid head needs format_version "
                f"{PIPELINE_FORMAT_VERSION}, the manifest says {version}"
            )
        return cls(
            format_version=version,
            preprocessing=preprocessing,
            num_classes=num_classes,
            sha256=dict(digests),
            extra=dict(extra),
            head=head,
        )


def format_version_for(preprocessing: Preprocessing, head: Head, external_weights: bool) -> int:
    """The oldest format that holds this: older readers keep reading what they can serve right."""
    if preprocessing.steps or head != Head():
        return PIPELINE_FORMAT_VERSION
    return 2 if external_weights else 1


def is_bare_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
    )


def field_of(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in raw:
        raise ArtifactError(f"{where}: missing field {key!r}")
    value = raw[key]
    # bool is an int in Python, never a valid count or size here.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ArtifactError(f"{where}: field {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


__all__ = [
    "CLASSES_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "ONNX_DATA_NAME",
    "ONNX_NAME",
    "Manifest",
    "format_version_for",
]
