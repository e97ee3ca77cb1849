"""Image bytes -> a normalised float32 array of shape (3, H, W), the model's input.

Same arithmetic as torchvision's Resize(shorter side) + CenterCrop + ToTensor + Normalize, but on
Pillow and numpy (torch is far too big for Lambda). Decoding (format checks, size caps, the memory
budget, JPEG draft mode) is core.decode's; it decodes no bigger than `min_decode_size` needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from lambdavision.core.decode import (
    ACCEPTED_FORMATS,
    DEFAULT_MAX_PIXELS,
    MemoryBudget,
    decode,
    sniff_format,
)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input; stored in the artifact's manifest.

    `resize_size` is the shorter side after resizing (torchvision `Resize(int)`), then a centre
    crop of `input_size` x `input_size`. The defaults are the guide's: Resize(256), CenterCrop(224),
    ImageNet statistics.
    """

    input_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)

    def min_decode_size(self, width: int, height: int) -> tuple[int, int]:
        """The smallest decoded (width, height) of a width x height image that leaves the resize unchanged.

        Resize(resize_size) makes the shorter side `resize_size`: decoding (or reducing) to that
        size or more changes nothing the model sees. Never more than the image itself.
        """
        new_w, new_h = _resized_size(width, height, self.resize_size)
        return max(1, min(new_w, width)), max(1, min(new_h, height))

    def to_dict(self) -> dict[str, object]:
        return {
            "input_size": self.input_size,
            "resize_size": self.resize_size,
            "mean": list(self.mean),
            "std": list(self.std),
        }


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
    scale = np.asarray([1.0 / (255.0 * s) for s in prep.std], dtype=np.float32).reshape(3, 1, 1)
    shift = np.asarray([m / s for m, s in zip(prep.mean, prep.std, strict=True)], dtype=np.float32).reshape(3, 1, 1)
    planes *= scale
    planes -= shift
    return planes


def preprocess(
    data: bytes,
    prep: Preprocessing,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    sizes: list[tuple[int, int]] | None = None,
    budget: MemoryBudget | None = None,
) -> np.ndarray:
    """Image bytes -> the model's (3, input_size, input_size) float32 input.

    `sizes`, when given, receives the image's original (width, height); `budget` is the request's
    memory budget (a fresh default one when None).
    """
    image = decode_image(data, prep, max_pixels, budget)
    if sizes is not None:
        sizes.append(image.info["original_size"])
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
