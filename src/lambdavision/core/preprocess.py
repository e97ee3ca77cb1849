"""Image bytes -> a normalised float32 array of shape (3, H, W), the model's input.

Two kinds of preprocessing, both recorded in the artifact's manifest:

- classic (the guide's, and `export(model)`'s): torchvision's Resize(shorter side) + CenterCrop +
  ToTensor + Normalize arithmetic, resampled in float on Pillow and numpy (torch is far too big
  for Lambda);
- a recorded pipeline (`steps`): a fastai Learner's or a torchvision preset's own steps, in uint8 on
  Pillow as those libraries do on a PIL image (see core.steps), then / divisor, then Normalize.

Decoding (format checks, size caps, the memory budget, JPEG draft mode) is core.decode's; it
decodes no bigger than `Preprocessing.min_decode_size` needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from lambdavision.core.decode import (
    ACCEPTED_FORMATS,
    DEFAULT_MAX_PIXELS,
    MemoryBudget,
    decode,
    sniff_format,
)
from lambdavision.core.errors import ArtifactError
from lambdavision.core.steps import Step, final_size, parse_step

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
Triple = tuple[float, float, float]


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input; stored in the artifact's manifest.

    Classic (no `steps`): `resize_size` is the shorter side after resizing (torchvision
    `Resize(int)`), then a centre crop of `input_size` x `input_size`. The defaults are the guide's:
    Resize(256), CenterCrop(224), ImageNet statistics.

    Recorded pipeline (`steps`, built with `Preprocessing.pipeline`): the steps on the uint8 image,
    then / `divisor`, then (x - mean) / std when `mean` and `std` are set (None: no Normalize).
    `input_size` and `resize_size` are not used by a pipeline.
    """

    input_size: int = 224
    resize_size: int = 256
    mean: Triple | None = field(default=IMAGENET_MEAN)
    std: Triple | None = field(default=IMAGENET_STD)
    steps: tuple[Step, ...] = ()
    divisor: float = 255.0

    @classmethod
    def pipeline(
        cls, steps: tuple[Step, ...], mean: Triple | None, std: Triple | None, divisor: float = 255.0
    ) -> Preprocessing:
        """A recorded pipeline; ValueError if it does not end in one fixed size or its numbers are off."""
        if not steps:
            raise ValueError("a pipeline needs at least one resize or crop step")
        if final_size(steps) is None:
            raise ValueError("the steps do not end in one fixed size (a Resize(int) needs a crop after it)")
        if (mean is None) != (std is None):
            raise ValueError("mean and std go together")
        if std is not None and any(not s > 0 for s in std):
            raise ValueError(f"std values must be > 0, got {list(std)}")
        if not divisor > 0 or math.isinf(divisor):
            raise ValueError(f"the divisor must be a positive number, got {divisor}")
        return cls(input_size=0, resize_size=0, mean=mean, std=std, steps=tuple(steps), divisor=float(divisor))

    @property
    def input_shape(self) -> tuple[int, int]:
        """(height, width) of the model's input."""
        if not self.steps:
            return (self.input_size, self.input_size)
        size = final_size(self.steps)
        assert size is not None  # checked when built
        return (size[1], size[0])

    def min_decode_size(self, width: int, height: int) -> tuple[int, int]:
        """The smallest decoded (width, height) of a `width` x `height` image that leaves the resize
        that follows unchanged (at least one source pixel per output pixel); never more than the image.

        Classic: Resize(resize_size) makes the shorter side `resize_size`. A pipeline: its first step says.
        """
        if self.steps:
            return self.steps[0].min_decode_size((width, height))
        scale = self.resize_size / min(width, height)
        if scale >= 1:
            return (width, height)
        return (math.ceil(width * scale), math.ceil(height * scale))

    def to_dict(self) -> dict[str, object]:
        if not self.steps:
            return {
                "input_size": self.input_size,
                "resize_size": self.resize_size,
                "mean": list(self.mean or ()),
                "std": list(self.std or ()),
            }
        return {
            "steps": [step.to_dict() for step in self.steps],
            "divisor": self.divisor,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> Preprocessing:
        """The manifest's `preprocessing` object, checked; ArtifactError naming what is wrong."""
        where = f"{where}: preprocessing"
        if "steps" not in raw:
            return _classic_from_dict(raw, where)
        steps = raw["steps"]
        if not isinstance(steps, list) or not steps:
            raise ArtifactError(f"{where}: 'steps' must be a non-empty list")
        unknown = sorted(set(raw) - {"steps", "divisor", "mean", "std"})
        if unknown:
            raise ArtifactError(f"{where}: unknown field(s) {', '.join(unknown)}")
        parsed = tuple(parse_step(step, f"{where}: steps[{i}]") for i, step in enumerate(steps))
        divisor = raw.get("divisor", 255.0)
        if not isinstance(divisor, (int, float)) or isinstance(divisor, bool):
            raise ArtifactError(f"{where}: divisor must be a number, got {divisor!r}")
        mean = None if raw.get("mean") is None else _triple(raw, "mean", where)
        std = None if raw.get("std") is None else _triple(raw, "std", where)
        try:
            return cls.pipeline(parsed, mean, std, float(divisor))
        except ValueError as exc:
            raise ArtifactError(f"{where}: {exc}") from None


def _classic_from_dict(raw: Mapping[str, Any], where: str) -> Preprocessing:
    input_size = _int_field(raw, "input_size", where)
    resize_size = _int_field(raw, "resize_size", where)
    if input_size < 1 or resize_size < input_size:
        raise ArtifactError(
            f"{where}: need 1 <= input_size <= resize_size, got input_size={input_size}, resize_size={resize_size}"
        )
    mean = _triple(raw, "mean", where)
    std = _triple(raw, "std", where)
    if any(s <= 0 for s in std):
        raise ArtifactError(f"{where}: std values must be > 0, got {list(std)}")
    return Preprocessing(input_size=input_size, resize_size=resize_size, mean=mean, std=std)


def _int_field(raw: Mapping[str, Any], key: str, where: str) -> int:
    if key not in raw:
        raise ArtifactError(f"{where}: missing field {key!r}")
    value = raw[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArtifactError(f"{where}: field {key!r} must be int, got {type(value).__name__}")
    return value


def _triple(raw: Mapping[str, Any], key: str, where: str) -> Triple:
    if key not in raw:
        raise ArtifactError(f"{where}: missing field {key!r}")
    value = raw[key]
    if not isinstance(value, list):
        raise ArtifactError(f"{where}: field {key!r} must be list, got {type(value).__name__}")
    if len(value) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == v for v in value):
        raise ArtifactError(f"{where}: {key!r} must be 3 numbers (R, G, B), got {value!r}")
    return (float(value[0]), float(value[1]), float(value[2]))


def decode_image(
    data: bytes, prep: Preprocessing, max_pixels: int = DEFAULT_MAX_PIXELS, budget: MemoryBudget | None = None
) -> Image.Image:
    """Decode to an RGB image at least `prep.min_decode_size` (when the source is); see core.decode."""
    return decode(data, prep.min_decode_size, max_pixels=max_pixels, budget=budget)


def _resized_size(width: int, height: int, short: int) -> tuple[int, int]:
    """torchvision Resize(int): the shorter side becomes `short`, the longer one truncated."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def _pad_to(image: Image.Image, crop: int) -> Image.Image:
    """torchvision's CenterCrop pads with zeros when the image is smaller than the crop."""
    padded = Image.new(image.mode, (max(crop, image.width), max(crop, image.height)))
    padded.paste(image, ((padded.width - image.width) // 2, (padded.height - image.height) // 2))
    return padded


def resize_and_crop(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """Resize(resize_size) + CenterCrop(input_size) -> (3, S, S) float32 pixel values in 0..255.

    Each band is resized in float ("F" mode), not uint8, so no rounding to whole pixel levels
    happens (uint8 resizing is off by one level, 0.017 after normalisation, against torch's
    tensor path). Only the crop's box is resampled: Pillow's box resize uses the same filter
    weights and neighbouring pixels as a full resize followed by a crop, at a fraction of the work.
    """
    # (Big images arrive already box-reduced to >= 2x the target by core.decode, strip by strip.)
    width, height = image.size
    new_w, new_h = _resized_size(width, height, prep.resize_size)
    crop = prep.input_size
    if crop <= new_w and crop <= new_h:
        top, left = round((new_h - crop) / 2.0), round((new_w - crop) / 2.0)
        sx, sy = width / new_w, height / new_h
        box = (left * sx, top * sy, (left + crop) * sx, (top + crop) * sy)
        bands = [b.convert("F").resize((crop, crop), Image.Resampling.BILINEAR, box=box) for b in image.split()]
    else:
        resized = _pad_to(image.resize((new_w, new_h), Image.Resampling.BILINEAR), crop)
        top, left = round((resized.height - crop) / 2.0), round((resized.width - crop) / 2.0)
        cropped = resized.crop((left, top, left + crop, top + crop))
        bands = [b.convert("F") for b in cropped.split()]
    return np.stack([np.asarray(b, dtype=np.float32) for b in bands])


def normalise(planes: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """(3, H, W) pixel values 0..255 -> (x/255 - mean) / std, as one multiply-add per value."""
    assert prep.mean is not None and prep.std is not None  # a classic spec always has both
    scale = np.asarray([1.0 / (255.0 * s) for s in prep.std], dtype=np.float32).reshape(3, 1, 1)
    shift = np.asarray([m / s for m, s in zip(prep.mean, prep.std, strict=True)], dtype=np.float32).reshape(3, 1, 1)
    planes *= scale
    planes -= shift
    return planes


def source_size(image: Image.Image) -> tuple[int, int]:
    """The (width, height) the image had before draft decoding, in its displayed orientation.

    `original_size` is recorded before the EXIF rotation; a 90-degree turn swaps it, which shows
    as the decoded image's scale matching the swapped size better on both axes.
    """
    width, height = image.info.get("original_size", image.size)
    if (width, height) == image.size:
        return image.size
    straight = abs(image.width / width - image.height / height)
    turned = abs(image.width / height - image.height / width)
    return (height, width) if turned < straight else (width, height)


def run_pipeline(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """A recorded pipeline: its steps on the uint8 image (the first with the geometry of the
    image's size before draft decoding), then / divisor and Normalize, in float32 as torch does."""
    size = source_size(image)
    for step in prep.steps:
        image = step.apply(image, size)
        size = image.size
    planes = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / np.float32(prep.divisor)
    if prep.mean is not None and prep.std is not None:
        planes -= np.asarray(prep.mean, dtype=np.float32).reshape(3, 1, 1)
        planes /= np.asarray(prep.std, dtype=np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray(planes)


def preprocess(
    data: bytes,
    prep: Preprocessing,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    sizes: list[tuple[int, int]] | None = None,
    budget: MemoryBudget | None = None,
) -> np.ndarray:
    """Image bytes -> the model's (3, H, W) float32 input (H, W = `prep.input_shape`).

    `sizes`, when given, receives the image's original (width, height); `budget` is the request's
    memory budget (a fresh default one when None).
    """
    image = decode_image(data, prep, max_pixels, budget)
    if sizes is not None:
        sizes.append(image.info["original_size"])
    if prep.steps:
        return run_pipeline(image, prep)
    return normalise(resize_and_crop(image, prep), prep)


__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MemoryBudget",
    "Preprocessing",
    "decode_image",
    "normalise",
    "preprocess",
    "resize_and_crop",
    "sniff_format",
]
