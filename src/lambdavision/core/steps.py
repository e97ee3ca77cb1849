"""The geometric steps of a recorded inference pipeline (fastai's, torchvision's), on uint8 Pillow images.

fastai (`Learner.predict`) and torchvision presets given a PIL image resize with Pillow, in uint8,
before anything becomes a tensor; each step here repeats that library's own arithmetic (box
sizes, integer truncation, rounding, padding) so a served image gets the same pixels:

- `FastaiResize`: fastai's `Resize` at predict time — crop: the centred largest box of the target
  aspect, then resize; squish: the whole image resized; pad: the smallest centred box holding the
  image, padded (zeros / reflection / border), then resized;
- `FastaiCropPad`: fastai's centred crop-or-pad with no resize (`CropPad`, the validation side of
  `RandomCrop` and `RandomResizedCrop`);
- `Resize`: torchvision's `Resize` (shorter side, optional `max_size`, or an exact (h, w));
- `CenterCrop`: torchvision's `CenterCrop` (zero padding when the image is smaller).

The first step may get a JPEG decoded at a reduced scale (draft mode): its geometry is computed on
the original size, as the library computes it, and scaled to the decoded one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from lambdavision.core.errors import ArtifactError

RESAMPLE: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
# fastai's pad modes and the numpy modes torchvision's PIL `pad` uses for them.
PAD_MODES: dict[str, str] = {"zeros": "constant", "border": "edge", "reflection": "reflect"}
FASTAI_METHODS = ("crop", "squish", "pad")

Size = tuple[int, int]  # (width, height), Pillow's order
Box = tuple[int, int, int, int]  # (left, top, right, bottom) in source pixels; may reach outside


def crop_pad_resize(
    image: Image.Image, orig: Size, box: Box, pad_mode: str, out: Size | None, resample: str = "bilinear"
) -> Image.Image:
    """fastai's `_do_crop_pad`: crop `box` (in `orig` coordinates) where it lies inside the image,
    pad where it reaches outside, then resize to `out` (None: no resize).

    When `image` is `orig` itself this is fastai's own sequence of calls. When it was decoded
    smaller (JPEG draft), the box is scaled to it and its fractional part is resampled with
    Pillow's `box=` argument, so the geometry stays that of the original.
    """
    width, height = orig
    sx, sy = image.width / width, image.height / height
    left, top, right, bottom = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    hull = (math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom))
    inner = (max(hull[0], 0), max(hull[1], 0), min(hull[2], image.width), min(hull[3], image.height))
    if inner != (0, 0, image.width, image.height):
        image = image.crop(inner)
    pads = (max(0, -hull[0]), max(0, -hull[1]), max(0, hull[2] - inner[2]), max(0, hull[3] - inner[3]))
    if any(pads):
        image = pad(image, pads, pad_mode)
    if out is None:
        return image
    fraction = (left - hull[0], top - hull[1], right - hull[0], bottom - hull[1])
    if fraction == (0.0, 0.0, float(image.width), float(image.height)):
        return image.resize(out, RESAMPLE[resample])
    return image.resize(out, RESAMPLE[resample], box=fraction)


def pad(image: Image.Image, ltrb: tuple[int, int, int, int], mode: str) -> Image.Image:
    """torchvision's PIL `pad` (which fastai calls): numpy's constant / edge / reflect padding."""
    left, top, right, bottom = ltrb
    array = np.asarray(image)
    widths = ((top, bottom), (left, right), (0, 0))[: array.ndim]
    return Image.fromarray(np.pad(array, widths, mode=PAD_MODES[mode]))  # type: ignore[call-overload]


def _scale_for(orig: Size, needed: tuple[float, float]) -> Size:
    """The smallest decoded size that still gives the resize at least one source pixel per output
    pixel on both axes; `needed` is (output / source) pixels along (width, height)."""
    scale = min(1.0, max(needed))
    return (math.ceil(orig[0] * scale), math.ceil(orig[1] * scale)) if scale < 1.0 else orig


@dataclass(frozen=True)
class FastaiResize:
    """fastai's `Resize(size, method, pad_mode, resamples)` as applied at predict (validation) time."""

    size: Size  # (height, width) of the result, as fastai's `Resize((h, w))` takes it
    method: str = "crop"
    pad_mode: str = "reflection"
    resample: str = "bilinear"
    op: ClassVar[str] = "fastai_resize"

    def box(self, width: int, height: int) -> Box:
        """fastai's crop box at pcts (0.5, 0.5): same float ops and `int()` truncations."""
        if self.method == "squish":
            return (0, 0, width, height)
        target_w, target_h = self.size[1], self.size[0]
        ratio_w, ratio_h = width / target_w, height / target_h
        wider = ratio_w > ratio_h if self.method == "pad" else ratio_w < ratio_h
        m = ratio_w if wider else ratio_h
        crop_w, crop_h = int(m * target_w), int(m * target_h)
        left, top = int(0.5 * (width - crop_w)), int(0.5 * (height - crop_h))
        return (left, top, left + crop_w, top + crop_h)

    def output_size(self, size: Size) -> Size | None:
        return (self.size[1], self.size[0])

    def min_decode_size(self, orig: Size) -> Size:
        left, top, right, bottom = self.box(*orig)
        return _scale_for(orig, (self.size[1] / (right - left), self.size[0] / (bottom - top)))

    def apply(self, image: Image.Image, orig: Size) -> Image.Image:
        return crop_pad_resize(image, orig, self.box(*orig), self.pad_mode, (self.size[1], self.size[0]), self.resample)

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "size": list(self.size),
            "method": self.method,
            "pad_mode": self.pad_mode,
            "resample": self.resample,
        }


@dataclass(frozen=True)
class FastaiCropPad:
    """fastai's centred `crop_pad(size)` with no resize: `CropPad`, and the validation-time crop of
    `RandomCrop` and `RandomResizedCrop`."""

    size: Size  # (height, width)
    pad_mode: str = "zeros"
    op: ClassVar[str] = "fastai_crop_pad"

    def output_size(self, size: Size) -> Size | None:
        return (self.size[1], self.size[0])

    def min_decode_size(self, orig: Size) -> Size:
        return orig  # no resize after it: every source pixel is used as it is

    def apply(self, image: Image.Image, orig: Size) -> Image.Image:
        width, height = orig
        left, top = (width - self.size[1]) // 2, (height - self.size[0]) // 2
        return crop_pad_resize(image, orig, (left, top, left + self.size[1], top + self.size[0]), self.pad_mode, None)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "size": list(self.size), "pad_mode": self.pad_mode}


@dataclass(frozen=True)
class Resize:
    """torchvision's `Resize` on a PIL image: `size` int = the shorter side (the longer one
    truncated, capped by `max_size`), or (height, width) exactly."""

    size: int | Size
    max_size: int | None = None
    resample: str = "bilinear"
    op: ClassVar[str] = "resize"

    def output_size(self, size: Size) -> Size | None:
        """torchvision's `_compute_resized_output_size`, in (width, height)."""
        if not isinstance(self.size, int):
            return (self.size[1], self.size[0])
        width, height = size
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.size, int(self.size * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def fixed_size(self) -> Size | None:
        return None if isinstance(self.size, int) else (self.size[1], self.size[0])

    def min_decode_size(self, orig: Size) -> Size:
        out = self.output_size(orig)
        assert out is not None
        return _scale_for(orig, (out[0] / orig[0], out[1] / orig[1]))

    def apply(self, image: Image.Image, orig: Size) -> Image.Image:
        out = self.output_size(orig)
        assert out is not None
        if out == image.size == orig:
            return image  # torchvision returns the image untouched
        return image.resize(out, RESAMPLE[self.resample])

    def to_dict(self) -> dict[str, Any]:
        size: int | list[int] = self.size if isinstance(self.size, int) else list(self.size)
        return {"op": self.op, "size": size, "max_size": self.max_size, "resample": self.resample}


@dataclass(frozen=True)
class CenterCrop:
    """torchvision's `CenterCrop` on a PIL image: zero-pad (split like torchvision) when smaller,
    then crop at round((H - h) / 2), round((W - w) / 2)."""

    size: Size  # (height, width)
    op: ClassVar[str] = "center_crop"

    def output_size(self, size: Size) -> Size | None:
        return (self.size[1], self.size[0])

    def min_decode_size(self, orig: Size) -> Size:
        return orig

    def apply(self, image: Image.Image, orig: Size) -> Image.Image:
        crop_h, crop_w = self.size
        if crop_w > image.width or crop_h > image.height:
            dw, dh = max(0, crop_w - image.width), max(0, crop_h - image.height)
            image = pad(image, (dw // 2, dh // 2, (dw + 1) // 2, (dh + 1) // 2), "zeros")
            if image.size == (crop_w, crop_h):
                return image
        top, left = round((image.height - crop_h) / 2.0), round((image.width - crop_w) / 2.0)
        return image.crop((left, top, left + crop_w, top + crop_h))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "size": list(self.size)}


Step = FastaiResize | FastaiCropPad | Resize | CenterCrop
STEP_TYPES: dict[str, type[Step]] = {t.op: t for t in (FastaiResize, FastaiCropPad, Resize, CenterCrop)}


def final_size(steps: tuple[Step, ...]) -> Size | None:
    """The (width, height) every image leaves the steps with, or None if it depends on the image."""
    size: Size | None = None
    for step in steps:
        fixed = step.fixed_size() if isinstance(step, Resize) else step.output_size((1, 1))
        size = fixed if fixed is not None else None
    return size


def parse_step(raw: Any, where: str) -> Step:
    """One step from the manifest; ArtifactError naming what is wrong."""
    if not isinstance(raw, Mapping):
        raise ArtifactError(f"{where}: each step must be an object, got {type(raw).__name__}")
    op = raw.get("op")
    if op not in STEP_TYPES:
        raise ArtifactError(f"{where}: unknown step {op!r} (this lambdavision knows {', '.join(STEP_TYPES)})")
    where = f"{where}: {op}"
    known = {"op", "size", "method", "pad_mode", "resample", "max_size"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ArtifactError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if op == "resize":
        size: int | Size = (
            _positive(raw.get("size"), "size", where) if isinstance(raw.get("size"), int) else _hw(raw, where)
        )
        max_size = raw.get("max_size")
        if max_size is not None:
            max_size = _positive(max_size, "max_size", where)
            if isinstance(size, int) and max_size <= size:
                raise ArtifactError(f"{where}: max_size {max_size} must be over the shorter side {size}")
        return Resize(size, max_size, _choice(raw, "resample", RESAMPLE, "bilinear", where))
    if op == "center_crop":
        return CenterCrop(_hw(raw, where))
    if op == "fastai_crop_pad":
        return FastaiCropPad(_hw(raw, where), _choice(raw, "pad_mode", PAD_MODES, "zeros", where))
    return FastaiResize(
        _hw(raw, where),
        _choice(raw, "method", dict.fromkeys(FASTAI_METHODS), "crop", where),
        _choice(raw, "pad_mode", PAD_MODES, "reflection", where),
        _choice(raw, "resample", RESAMPLE, "bilinear", where),
    )


def _positive(value: Any, name: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 16384:
        raise ArtifactError(f"{where}: {name} must be a whole number of pixels from 1 to 16384, got {value!r}")
    return value


def _hw(raw: Mapping[str, Any], where: str) -> Size:
    value = raw.get("size")
    if not isinstance(value, list) or len(value) != 2:
        raise ArtifactError(f"{where}: size must be [height, width], got {value!r}")
    return (_positive(value[0], "height", where), _positive(value[1], "width", where))


def _choice(raw: Mapping[str, Any], key: str, allowed: Mapping[str, Any], default: str, where: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ArtifactError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)
