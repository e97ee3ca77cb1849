"""Photo-like check images for the export check: non-square, JPEG and PNG, landscape and portrait,
from a phone-sized 4032x3024 JPEG (decoded in draft mode when served) down to one smaller than
a model's input. Seeded: the same images every time.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# (name, width, height): every orientation and format, sizes that exercise draft decoding,
# down- and up-sampling, and aspect ratios far from square (crop and pad differ most there).
CHECK_PHOTOS: tuple[tuple[str, int, int], ...] = (
    ("landscape-phone.jpg", 4032, 3024),
    ("portrait.jpg", 1200, 1600),
    ("landscape.png", 800, 533),
    ("portrait.png", 480, 720),
    ("panorama.png", 1000, 400),
    ("small-landscape.jpg", 300, 180),
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A scene: sky and ground gradients, blurred coloured shapes, fine sensor-like noise."""
    rng = np.random.default_rng(seed)
    small_w, small_h = max(8, width // 8), max(8, height // 8)
    yy = np.linspace(0.0, 1.0, small_h)[:, None, None]
    sky, ground = rng.uniform(60, 230, 3), rng.uniform(20, 160, 3)
    horizon = rng.uniform(0.3, 0.7)
    base = np.where(yy < horizon, sky * (1 - 0.5 * yy), ground * (0.6 + 0.6 * yy)) * np.ones((1, small_w, 1))
    scene = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(scene)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        w, h = rng.uniform(0.05, 0.4) * width, rng.uniform(0.05, 0.4) * height
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=colour)
    scene = scene.filter(ImageFilter.GaussianBlur(radius=max(1.0, min(width, height) / 300)))
    noise = rng.integers(-10, 11, (height, width, 3), dtype=np.int16)  # integers: 12 MP of it in ~0.2 s
    return Image.fromarray(np.clip(np.asarray(scene, dtype=np.int16) + noise, 0, 255).astype(np.uint8))


@functools.cache
def _encoded(seed: int) -> bytes:
    """One check photo's file bytes, made once per process (the phone-sized one takes a second)."""
    name, width, height = CHECK_PHOTOS[seed]
    buffer = io.BytesIO()
    if name.endswith(".jpg"):
        photo(width, height, seed).save(buffer, "JPEG", quality=90)
    else:
        photo(width, height, seed).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def write_check_photos(folder: Path) -> list[Path]:
    """The check photos, written into `folder`; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed, (name, _, _) in enumerate(CHECK_PHOTOS):
        path = folder / name
        path.write_bytes(_encoded(seed))
        paths.append(path)
    return paths


def images_in(folder: Path) -> list[Path]:
    """The image files in `folder` and below, by name."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
