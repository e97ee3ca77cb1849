"""Worst-shape images, built in well under a second each: the memory bound's test material.

PNGs are written row by row through a streaming zlib compressor, so a 7071x7071 image of any
colour type, bit depth or Adam7 interlacing costs a few MB to build and a few hundred KB to send.
JPEG, GIF, WebP and plain BMP come from Pillow; an RLE8 BMP is written by hand (its rows may be empty: the
image is left black, yet the decoder allocates all of it).
"""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

# PNG (colour type, bit depth) per mode name used here.
PNG_MODES: dict[str, tuple[int, int]] = {
    "1": (0, 1),
    "L": (0, 8),
    "I;16": (0, 16),
    "P": (3, 8),
    "P;1": (3, 1),
    "LA": (4, 8),
    "RGB": (2, 8),
    "RGB;16": (2, 16),
    "RGBA": (6, 8),
    "RGBA;16": (6, 16),
}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


@dataclass(frozen=True)
class Shape:
    """One image to build: format, size and the options that change what decoding it costs."""

    fmt: str
    width: int
    height: int
    mode: str = "L"
    interlaced: bool = False  # PNG: Adam7
    progressive: bool = False  # JPEG
    subsampling: int = 2  # JPEG: 2 = 4:2:0, 0 = 4:4:4
    extra_scans: int = 0  # JPEG: copies of its smallest scan appended (a progressive scan bomb)

    @property
    def name(self) -> str:
        flags = "-interlaced" if self.interlaced else ""
        if self.progressive:
            flags += "-progressive"
        if self.fmt == "JPEG" and self.subsampling == 0:
            flags += "-444"
        if self.extra_scans:
            flags += f"+{self.extra_scans}scans"
        return f"{self.fmt}-{self.mode}-{self.width}x{self.height}{flags}"

    def build(self) -> bytes:
        if self.fmt == "PNG":
            return png(self.width, self.height, self.mode, interlaced=self.interlaced)
        if self.fmt == "BMP" and self.mode == "RLE8":
            return bmp_rle8(self.width, self.height)
        if self.fmt == "JPEG":
            return jpeg(self)
        colour = 1 if self.mode == "1" else 90 if self.mode in ("L", "P") else (90, 40, 200)
        image = Image.new(self.mode, (self.width, self.height), colour)
        buf = io.BytesIO()
        if self.fmt == "WEBP":
            image.save(buf, "WEBP", lossless=True, method=0)
        else:
            image.save(buf, self.fmt)
        return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png(width: int, height: int, mode: str = "L", *, interlaced: bool = False, level: int = 1) -> bytes:
    """A valid PNG of zero pixels (black, or palette entry 0) in any colour type and bit depth."""
    colour, depth = PNG_MODES[mode]
    bits = _CHANNELS[colour] * depth
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    comp = zlib.compressobj(level)  # 1 is fast; 9 gives the smallest bomb (1 x 49,999,999: 97 KB)
    parts: list[bytes] = []
    for x0, y0, dx, dy in passes:
        pass_w, pass_h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pass_w <= 0 or pass_h <= 0:
            continue
        row = b"\0" * (1 + (pass_w * bits + 7) // 8)
        per_block = max(1, (1 << 20) // len(row))
        for start in range(0, pass_h, per_block):
            parts.append(comp.compress(row * min(per_block, pass_h - start)))
    parts.append(comp.flush())
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 1 if interlaced else 0)
    palette = _chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    idat = b"".join(parts)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + palette + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def bmp_rle8(width: int, height: int) -> bytes:
    """An 8-bit RLE BMP of one pixel a row (then end-of-line escapes): tiny, yet width x height to decode."""
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    pixels = b"\x01\x00\x00\x00" * height + b"\x00\x01"  # per row: one pixel, end of line; end of bitmap
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def jpeg(shape: Shape) -> bytes:
    colour = 90 if shape.mode == "L" else (90, 40, 200) if shape.mode == "RGB" else (10, 20, 30, 40)
    buf = io.BytesIO()
    Image.new(shape.mode, (shape.width, shape.height), colour).save(
        buf, "JPEG", quality=75, progressive=shape.progressive, subsampling=shape.subsampling
    )
    data = buf.getvalue()
    if not shape.extra_scans:
        return data
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA] + [len(data) - 2]
    smallest = min((data[a:b] for a, b in itertools.pairwise(starts)), key=len)
    return data[:-2] + smallest * shape.extra_scans + b"\xff\xd9"


def from_dict(raw: dict[str, object]) -> Shape:
    return Shape(**raw)  # type: ignore[arg-type]
