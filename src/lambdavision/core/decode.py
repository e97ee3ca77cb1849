"""Image bytes -> an RGB image no bigger than the model needs, at a memory cost bounded before decoding.

What a compressed image costs to decode has nothing to do with its size in bytes: a 97 KB PNG
declares 1 x 49,999,999 pixels and took 2.4 GB to decode and resize. So before any pixel is
decoded, from the header alone:

- the format is recognised by its first bytes (JPEG, PNG, WebP, GIF, BMP; Pillow's other
  decoders are never reached);
- each side must be at most `MAX_SIDE`, the aspect ratio at most `MAX_ASPECT`:1 and the pixel
  count at most `max_pixels` (a 12 MP photo is 4032x3024; phone panoramas run 4:1 to 10:1);
- the memory decoding will take is estimated (`DecodePlan.cost`) and charged to the request's
  `MemoryBudget`, which every image of a request (a batch too) draws from, together with the
  image bytes themselves; an image over what is left is refused (422) undecoded.

Then it is decoded as small as the format allows: a JPEG at the smallest DCT scale (draft mode)
that still covers what the model's resize needs (`min_decode_size`); PNG, GIF, BMP and WebP have
no reduced decoding in Pillow, so they are decoded in full and then converted to RGB and
box-reduced (`Image.reduce`) strip by strip, never holding a second full-size copy.

The costs are Pillow's, measured on this stack (Pillow 13, libjpeg-turbo, libwebp): one byte per
pixel for modes 1/L/P, two for I;16, four for every other mode (Pillow pads RGB to four bytes);
a progressive or multi-scan JPEG also holds its DCT coefficients at full size (two bytes per
coefficient, 3 bytes a pixel for 4:2:0 colour); the WebP reader holds ~16 bytes a pixel (two
RGBA canvases, a copy of the frame and the image).
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from lambdavision.core.errors import BadRequest, LambdaVisionError, UnprocessableImage, UnsupportedMediaType

DEFAULT_MAX_PIXELS = 50_000_000  # a 12 MP phone photo is 12.2 M; a 20000x20000 PNG bomb is 400 M
MAX_SIDE = 20_000  # pixels, either side
MAX_ASPECT = 16  # longer side / shorter side; phone panoramas are ~4:1 to 10:1
# Per request, shared by all its images: their bytes plus each one's estimated decoding memory.
DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024
# A progressive JPEG is refined scan by scan, each pass over the whole image: a file of thousands
# of tiny scans costs minutes of CPU (libjpeg-turbo's own guidance caps scans at 500). Real
# progressive JPEGs have about 10. Scans times pixels bounds one image's decoding time (100
# scans of 12 MP took ~1.6 s here): a 12 MP photo may have 61 scans, 50 MP 15.
MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_PIXELS = 750_000_000

# (width, height) of the source -> the smallest decoded (width, height) that leaves the model's
# resize unchanged (`Preprocessing.min_decode_size`).
TargetSize = Callable[[int, int], tuple[int, int]]

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

_MIB = 1024 * 1024
_ROW_BYTES = 32  # Pillow's per-row bookkeeping (line pointers), whatever the width
_STRIP_PIXELS = 1 << 20  # pixels converted and reduced at a time
_WEBP_BYTES_PER_PIXEL = 16
# EXIF orientation -> the transpose that displays the image upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def sniff_format(data: bytes) -> str | None:
    """The accepted image format these bytes start with, or None."""
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (name != "WEBP" or data[:4] == b"RIFF"):
            return name
    return None


class MemoryBudget:
    """The memory one request's images may take, charged before anything big is allocated.

    Charges add up over the request: a batch shares one budget (decoding is sequential, so the
    total also bounds the batch's decoding time), and nothing is given back.
    """

    def __init__(self, total: int = DEFAULT_MEMORY_BUDGET) -> None:
        self.total = total
        self.used = 0

    def charge(self, nbytes: int, what: str) -> None:
        """Take `nbytes`, or raise UnprocessableImage (422) saying what would not fit."""
        if nbytes > self.total - self.used:
            left = "" if self.used == 0 else f" (its other images already use {_mb(self.used)} MB)"
            raise UnprocessableImage(
                f"{what} would take about {_mb(nbytes)} MB of memory, over this request's budget of "
                f"{_mb(self.total)} MB{left}: send a smaller image"
            )
        self.used += nbytes


def check_shape(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """The side, aspect-ratio and pixel caps, from the header's size alone (UnprocessableImage)."""
    if width <= 0 or height <= 0:
        raise UnprocessableImage("the image has no pixels")
    if max(width, height) > MAX_SIDE:
        raise UnprocessableImage(f"the image is {width}x{height}, over the cap of {MAX_SIDE:,} pixels a side")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise UnprocessableImage(
            f"the image is {width}x{height}, an aspect ratio over the cap of {MAX_ASPECT}:1 "
            "(panoramas up to that are accepted)"
        )
    if width * height > max_pixels:
        raise UnprocessableImage(
            f"the image is {width}x{height} = {width * height:,} pixels, over the cap of {max_pixels:,}"
        )


@dataclass(frozen=True)
class DecodePlan:
    """How an opened image will be decoded, and what that costs in memory at most."""

    decoded: tuple[int, int]  # (width, height) the decoder produces (after a JPEG's draft scale)
    factor: int  # the box reduction applied after decoding (1: none)
    cost: int  # bytes

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the RGB image handed on, before any EXIF rotation."""
        return _ceil_div(self.decoded[0], self.factor), _ceil_div(self.decoded[1], self.factor)


def decode(
    data: bytes,
    target: TargetSize,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    budget: MemoryBudget | None = None,
) -> Image.Image:
    """Decode to an upright RGB image at least `target(width, height)` in size (when the source is).

    `image.info["original_size"]` is the size the file declares. Raises UnsupportedMediaType (not
    an accepted format), UnprocessableImage (corrupt, truncated, over a cap or the budget),
    BadRequest (empty).
    """
    if not data:
        raise BadRequest("the image is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedMediaType("not an image: send a JPEG, PNG, WebP, GIF or BMP")
    budget = budget if budget is not None else MemoryBudget()
    try:
        if fmt == "WEBP":
            # Pillow's WebP reader allocates its canvases as it opens the file: check from the header.
            size = webp_canvas_size(data)
            if size is None:
                raise UnprocessableImage("the WebP image's size cannot be read from its header")
            check_shape(*size, max_pixels)
            budget.charge(webp_open_cost(*size, data), f"decoding this {size[0]}x{size[1]} WEBP image")
        source = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = source.size
        check_shape(width, height, max_pixels)
        if fmt == "BMP" and any(tile[0] != "raw" for tile in source.tile):
            # Pillow decodes RLE BMPs in Python a byte at a time: a 29 KB file took 5 s and 3x its
            # pixels in memory. Real BMPs are uncompressed; their cost is bounded by their bytes.
            raise UnsupportedMediaType("compressed (RLE) BMP images are not accepted: send a PNG or JPEG")
        plan = plan_decode(source, fmt, data, target)
        budget.charge(plan.cost, f"decoding this {width}x{height} {fmt} image")
        source.load()  # the first frame of a GIF/WebP animation
        image = _to_small_rgb(source, plan.factor)
        method = _ORIENTATION.get(_orientation(source))
        if method is not None and image is source:
            ImageOps.exif_transpose(image, in_place=True)
        elif method is not None:
            image = image.transpose(method)
        image.info["original_size"] = (width, height)  # before any reduction, for logs
        return image
    except LambdaVisionError:
        raise
    except Image.DecompressionBombError as exc:
        raise UnprocessableImage(f"the image is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError) as exc:
        raise UnprocessableImage(f"the {fmt} image cannot be decoded: {exc}") from None


def plan_decode(source: Image.Image, fmt: str, data: bytes, target: TargetSize) -> DecodePlan:
    """Pick the draft scale (JPEG) and reduction factor, and estimate the memory they take."""
    width, height = source.size
    upright = _orientation(source) in (5, 6, 7, 8) if fmt == "JPEG" else False
    want = _wanted_size(target, width, height, upright)
    cost = height * _ROW_BYTES
    if fmt == "JPEG":
        cost += _jpeg_cost(source, data, width, height)
        # The smallest DCT scale (1/8, 1/4, 1/2) that still covers the target: a 4032x3024 photo
        # then decodes at 504x378, several times faster and 64 times smaller.
        if want[0] < width or want[1] < height:
            source.draft("RGB", want)
    decoded = source.size  # the draft scale, for a JPEG
    if fmt != "WEBP":  # (a WebP's decoding memory is charged before it is opened: webp_open_cost)
        cost += decoded[0] * decoded[1] * _pixel_bytes(source.mode)
    if fmt != "JPEG":  # the orientation of other formats is known once decoded: take the smaller factor
        turned = _wanted_size(target, width, height, True)
        want = min(want[0], turned[0]), min(want[1], turned[1])
    # Box-reduce to at least twice the target: a bilinear resize from there is indistinguishable
    # from one from the full image, at a fraction of the memory.
    factor = max(1, min(decoded[0] // (2 * want[0]), decoded[1] // (2 * want[1])))
    out_w, out_h = _ceil_div(decoded[0], factor), _ceil_div(decoded[1], factor)
    if factor > 1 or source.mode != "RGB":
        rows = min(decoded[1], _strip_rows(decoded[0], factor))
        cost += rows * decoded[0] * 24  # one strip: its copy, RGB and (16-bit) float versions
    # The RGB result three times over: itself, then a rotated copy or the float bands of the resize.
    cost += 3 * out_w * out_h * 4
    return DecodePlan(decoded=decoded, factor=factor, cost=cost)


def _wanted_size(target: TargetSize, width: int, height: int, upright_swapped: bool) -> tuple[int, int]:
    """`target` for the displayed orientation, as (width, height) of the stored image, 1..size."""
    if upright_swapped:
        shown_w, shown_h = target(height, width)
        want_w, want_h = shown_h, shown_w
    else:
        want_w, want_h = target(width, height)
    return max(1, min(want_w, width)), max(1, min(want_h, height))


def _jpeg_cost(source: Image.Image, data: bytes, width: int, height: int) -> int:
    """A progressive or multi-scan JPEG keeps every DCT coefficient at full size while it decodes."""
    scans = data.count(b"\xff\xda")  # every start-of-scan marker (an EXIF thumbnail's too: an upper bound)
    if scans > MAX_JPEG_SCANS:
        raise UnprocessableImage(f"the JPEG has {scans} scans, over the cap of {MAX_JPEG_SCANS}")
    layers: list[tuple[str, int, int, int]] = list(getattr(source, "layer", []))
    first_scan = _first_scan_components(data)
    single_pass = not source.info.get("progressive") and first_scan is not None and first_scan >= len(layers)
    if single_pass or not layers:
        return 0
    if scans * width * height > MAX_JPEG_SCAN_PIXELS:
        raise UnprocessableImage(
            f"the progressive JPEG has {scans} scans of {width}x{height} pixels, over the cap of "
            f"{MAX_JPEG_SCAN_PIXELS:,} scanned pixels ({MAX_JPEG_SCAN_PIXELS // (width * height)} scans at this size)"
        )
    h_max = max(h for _, h, _, _ in layers)
    v_max = max(v for _, _, v, _ in layers)
    blocks = 0
    for _, h, v, _ in layers:
        # libjpeg pads each component to whole MCUs of 8x8 blocks, two bytes per coefficient.
        blocks += _ceil_div(width, 8 * h_max) * h * _ceil_div(height, 8 * v_max) * v
    return blocks * 64 * 2


def _first_scan_components(data: bytes) -> int | None:
    """How many components the first scan of a JPEG holds (fewer than the frame's: several scans)."""
    pos = 2
    while pos + 4 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
        elif marker == 0xDA:
            return data[pos + 4]
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def webp_open_cost(width: int, height: int, data: bytes) -> int:
    """What Pillow's WebP reader holds once it has decoded: canvases, frame copy, image, file copy."""
    return width * height * _WEBP_BYTES_PER_PIXEL + len(data)


def webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP file declares in its first chunk (VP8X, VP8L or VP8), or None."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _to_small_rgb(image: Image.Image, factor: int) -> Image.Image:
    """RGB, box-reduced by `factor`, converted a strip at a time (no second full-size copy).

    Strips are whole multiples of `factor` rows, so the result is the one a single
    `image.convert(...).reduce(factor)` gives, without its full-size RGB intermediate.
    """
    if factor == 1 and image.mode == "RGB":
        return image
    width, height = image.size
    peak = _peak_value(image)
    out = Image.new("RGB", (_ceil_div(width, factor), _ceil_div(height, factor)))
    rows = _strip_rows(width, factor)
    for top in range(0, height, rows):
        strip = _strip_to_rgb(image.crop((0, top, width, min(height, top + rows))), peak)
        out.paste(strip.reduce(factor) if factor > 1 else strip, (0, top // factor))
    return out


def _strip_rows(width: int, factor: int) -> int:
    """Rows converted at a time: about `_STRIP_PIXELS`, and a whole multiple of `factor`."""
    return factor * max(1, _STRIP_PIXELS // max(1, width * factor))


def _peak_value(image: Image.Image) -> float:
    """What maps to 255 when a 16-bit or float image becomes 8-bit."""
    if image.mode.startswith("I;16"):
        return 65535.0
    if image.mode in ("I", "F"):
        extrema = image.getextrema()
        return max(float(extrema[1]), 1.0)  # type: ignore[arg-type]
    return 255.0


def _strip_to_rgb(image: Image.Image, peak: float) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # Pillow's convert("RGB") clips 16-bit and float values at 255: scale to 8 bits first.
        values = np.asarray(image, dtype=np.float32)
        values *= 255.0 / peak
        grey = np.clip(values, 0, 255, out=values).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, struct.error, KeyError, TypeError):
        return 1  # unreadable EXIF: show the image as stored
    return value if isinstance(value, int) else 1


def _pixel_bytes(mode: str) -> int:
    """Bytes Pillow stores per pixel: one for 1/L/P, two for 16-bit, four for the rest (RGB too)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _mb(nbytes: int) -> int:
    return math.ceil(nbytes / _MIB)


__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MEMORY_BUDGET",
    "MAX_ASPECT",
    "MAX_JPEG_SCANS",
    "MAX_JPEG_SCAN_PIXELS",
    "MAX_SIDE",
    "DecodePlan",
    "MemoryBudget",
    "TargetSize",
    "check_shape",
    "decode",
    "plan_decode",
    "sniff_format",
    "webp_canvas_size",
    "webp_open_cost",
]
