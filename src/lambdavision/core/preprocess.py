"""Image bytes -> a normalised float32 array of shape (3, H, W), the model's input.

Same arithmetic as torchvision's Resize(shorter side) + CenterCrop + ToTensor + Normalize, but on
Pillow and numpy (torch is far too big for Lambda), with JPEG draft mode so a 12 MP photo is
decoded near the size we need instead of in full.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from lambdavision.core.errors import BadRequest, LambdaVisionError, UnprocessableImage, UnsupportedMediaType

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

    def to_dict(self) -> dict[str, object]:
        return {
            "input_size": self.input_size,
            "resize_size": self.resize_size,
            "mean": list(self.mean),
            "std": list(self.std),
        }


# Formats an API should accept, told apart by their first bytes before Pillow sees them.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"WEBP", 8, "WEBP"),
)
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
DEFAULT_MAX_PIXELS = 50_000_000  # a 12 MP phone photo is 12.2 M; a 20000x20000 PNG bomb is 400 M


def sniff_format(data: bytes) -> str | None:
    """The accepted image format these bytes start with, or None."""
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (name != "WEBP" or data[:4] == b"RIFF"):
            return name
    return None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and float greyscale: Pillow's convert("RGB") clips at 255, so scale to 8 bits first.
        values = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
        grey = np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, prep: Preprocessing, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode to an RGB image at least `prep.resize_size` on its shorter side (when the source is).

    Raises UnsupportedMediaType (not an accepted format), UnprocessableImage (corrupt, truncated,
    or over the pixel cap), BadRequest (empty).
    """
    if not data:
        raise BadRequest("the image is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedMediaType("not an image: send a JPEG, PNG, WebP, GIF or BMP")
    try:
        source = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = source.size
        if width <= 0 or height <= 0:
            raise UnprocessableImage("the image has no pixels")
        if width * height > max_pixels:
            raise UnprocessableImage(
                f"the image is {width}x{height} = {width * height:,} pixels, over the cap of {max_pixels:,}"
            )
        if fmt == "JPEG":
            # Decode at the smallest DCT scale that still covers the resize target: a 4032x3024
            # photo then decodes at 1/8 or 1/4 size, several times faster and smaller.
            scale = prep.resize_size / min(width, height)
            if scale < 1:
                source.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        source.load()  # first frame of a GIF/WebP animation
        # In place: without an orientation tag the default returns a copy (0.4 ms for 640x480).
        ImageOps.exif_transpose(source, in_place=True)
        image = _to_rgb(source)
        image.info["original_size"] = (width, height)  # before draft reduction, for logs
        return image
    except LambdaVisionError:
        raise
    except Image.DecompressionBombError as exc:
        raise UnprocessableImage(f"the image is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError) as exc:
        raise UnprocessableImage(f"the {fmt} image cannot be decoded: {exc}") from None


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
    # A big non-JPEG (no draft mode) is first box-reduced by an integer factor to >= 2x the target:
    # float bands of a 7000x7000 PNG would otherwise take ~600 MB for a moment.
    factor = min(image.size) // (2 * prep.resize_size)
    if factor >= 2:
        image = image.reduce(factor)
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
    data: bytes, prep: Preprocessing, max_pixels: int = DEFAULT_MAX_PIXELS, sizes: list[tuple[int, int]] | None = None
) -> np.ndarray:
    """Image bytes -> the model's (3, input_size, input_size) float32 input.

    `sizes`, when given, receives the image's original (width, height).
    """
    image = decode_image(data, prep, max_pixels)
    if sizes is not None:
        sizes.append(image.info["original_size"])
    return normalise(resize_and_crop(image, prep), prep)
