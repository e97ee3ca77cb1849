"""The export check on photos: lambdavision's own serving path against the library's own answers.

Before an artifact with a recorded pipeline is written, each check photo goes through exactly
what the function will do (decode with draft mode, the manifest's preprocessing as read back from
its JSON, ONNX Runtime, the head) and through the library (`learn.predict`, or the torchvision
model with its transforms on the PIL image). Any top-1 change (multi-label: any change of the
labels over the threshold) or a probability off by more than the tolerance refuses the artifact.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lambdavision.core.classify import probabilities
from lambdavision.core.errors import ExportError, LambdaVisionError
from lambdavision.core.head import Head
from lambdavision.core.preprocess import Preprocessing, preprocess
from lambdavision.export.photos import images_in, write_check_photos
from lambdavision.export.torch_onnx import first_line
from lambdavision.runtime.backends import OnnxBackend

# Largest |Δp| accepted on a check photo. Measured on this project's test Learners (README, "From
# fastai"): 0.0009 at most with full decodes, up to ~0.006 when a phone-sized JPEG is draft-decoded;
# a wrong pipeline (crop for squish, no Normalize, ImageNet statistics for none) is off by 0.05-0.5.
CHECK_TOLERANCE = 0.02

Reference = Callable[[Path], np.ndarray]  # a photo's path -> the library's probabilities


@dataclass(frozen=True)
class ReadModel:
    """What a reader (fastai, torchvision) found: the module, its classes, how to feed it, how its
    logits become answers, and the library's own answer for a photo."""

    model: Any
    classes: list[str]
    preprocessing: Preprocessing
    head: Head
    reference: Reference
    reference_name: str  # "learn.predict", "the model with its transforms"
    extra: dict[str, Any]


@dataclass(frozen=True)
class PhotoCheck:
    """How lambdavision's answers compared with the library's on the check photos."""

    photos: int
    max_abs_dp: float
    worst_photo: str
    tolerance: float

    def to_extra(self) -> dict[str, Any]:
        return {
            "photos": self.photos,
            "max_abs_dp": round(self.max_abs_dp, 6),
            "worst_photo": self.worst_photo,
            "tolerance": self.tolerance,
        }


def check_photos(
    read: ReadModel,
    graph: bytes,
    weights: bytes | None,
    images: Path | None,
    tolerance: float = CHECK_TOLERANCE,
) -> PhotoCheck:
    """Compare answers on `images` (a folder) or on generated photos; ExportError on a disagreement."""
    # What the function will read: the preprocessing and head as they come back from the manifest.
    prep = Preprocessing.from_dict(json.loads(json.dumps(read.preprocessing.to_dict())), "the manifest")
    head = Head.from_dict(json.loads(json.dumps(read.head.to_dict())), "the manifest")
    try:
        backend = OnnxBackend(graph, "the exported model", threads=2, weights=weights)
    except Exception as exc:
        raise ExportError(f"ONNX Runtime cannot run the exported model: {first_line(exc)}") from exc
    with tempfile.TemporaryDirectory(prefix="lambdavision-check-") as tmp:
        if images is None:
            paths = write_check_photos(Path(tmp))
        else:
            if not images.is_dir():
                raise ExportError(f"{images}: not a folder of images")
            paths = images_in(images)
            if not paths:
                raise ExportError(f"{images}: holds no JPEG, PNG, WebP, GIF or BMP images to check the export on")
        rows = [_compare(path, read, prep, head, backend) for path in paths]
    failures = [
        f"{name}: {change or 'probabilities differ'} (max |Δp| {dp:.3g})"
        for name, dp, change in rows
        if change or dp > tolerance
    ]
    worst = max(rows, key=lambda row: row[1])
    if failures:
        raise ExportError(
            f"lambdavision's serving path disagrees with {read.reference_name} on {len(failures)} of {len(rows)} "
            f"photos, refusing to write the artifact (tolerance |Δp| {tolerance}): " + "; ".join(failures)
        )
    return PhotoCheck(len(rows), worst[1], worst[0], tolerance)


def _compare(
    path: Path, read: ReadModel, prep: Preprocessing, head: Head, backend: OnnxBackend
) -> tuple[str, float, str]:
    """(photo name, max |Δp|, how the answer changed or "")."""
    try:
        ours = probabilities(np.asarray(backend.run(preprocess(path.read_bytes(), prep)[None]), np.float64), head)[0]
    except LambdaVisionError as exc:
        raise ExportError(f"{path}: lambdavision cannot serve this image ({exc})") from exc
    except OSError as exc:
        raise ExportError(f"cannot read {path} ({exc.strerror})") from exc
    try:
        theirs = np.asarray(read.reference(path), dtype=np.float64).reshape(-1)
    except Exception as exc:
        raise ExportError(f"{path}: {read.reference_name} fails on it ({first_line(exc)})") from exc
    if theirs.shape != ours.shape:
        return path.name, float("inf"), f"{read.reference_name} gives {theirs.size} probabilities, not {ours.size}"
    dp = float(np.abs(ours - theirs).max())
    return path.name, dp, _answer_change(ours, theirs, read.classes, head, read.reference_name)


def _answer_change(ours: np.ndarray, theirs: np.ndarray, classes: Sequence[str], head: Head, name: str) -> str:
    if head.threshold is not None:
        mine = {classes[int(i)] for i in np.flatnonzero(ours > head.threshold)}
        reference = {classes[int(i)] for i in np.flatnonzero(theirs > head.threshold)}
        if mine != reference:
            return f"{name} says labels {sorted(reference)}, lambdavision says {sorted(mine)}"
        return ""
    top_ours, top_theirs = int(ours.argmax()), int(theirs.argmax())
    if top_ours != top_theirs:
        return (
            f"{name} says {classes[top_theirs]} ({theirs[top_theirs]:.3f}), "
            f"lambdavision says {classes[top_ours]} ({ours[top_ours]:.3f})"
        )
    return ""
