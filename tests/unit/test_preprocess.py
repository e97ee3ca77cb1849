"""Preprocessing against torchvision's arithmetic, computed here with torch ops (no torchvision)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile

from lambdavision.core.errors import BadRequest, UnprocessableImage, UnsupportedMediaType
from lambdavision.core.preprocess import Preprocessing, decode_image, preprocess, sniff_format

PREP = Preprocessing()


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: enough structure for resampling differences to show."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    arr = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) % 256], -1) + rng.normal(0, 20, (height, width, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def encode(arr: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def torch_reference(rgb: np.ndarray, prep: Preprocessing = PREP) -> np.ndarray:
    """Resize(shorter=resize_size, bilinear, antialias) + CenterCrop + ToTensor + Normalize."""
    h, w = rgb.shape[:2]
    s = prep.resize_size
    nh, nw = (int(s * h / w), s) if w <= h else (s, int(s * w / h))
    t = torch.from_numpy(rgb).permute(2, 0, 1).float().unsqueeze(0)
    t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    c = prep.input_size
    top, left = round((nh - c) / 2), round((nw - c) / 2)
    t = t[:, :, top : top + c, left : left + c] / 255.0
    mean = torch.tensor(prep.mean).view(1, 3, 1, 1)
    std = torch.tensor(prep.std).view(1, 3, 1, 1)
    return ((t - mean) / std)[0].numpy()


def test_png_matches_torch_reference_within_1e_2() -> None:
    arr = photo_like(400, 300)
    ours = preprocess(encode(arr, "PNG"), PREP)
    assert ours.shape == (3, 224, 224)
    assert ours.dtype == np.float32
    assert np.abs(ours - torch_reference(arr)).max() <= 1e-2


def test_portrait_and_custom_sizes_match() -> None:
    arr = photo_like(150, 260, seed=3)
    prep = Preprocessing(input_size=64, resize_size=73, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    ours = preprocess(encode(arr, "PNG"), prep)
    assert ours.shape == (3, 64, 64)
    assert np.abs(ours - torch_reference(arr, prep)).max() <= 1e-2


def test_small_jpeg_without_draft_matches_reference_of_same_decode() -> None:
    data = encode(photo_like(320, 240, seed=1), "JPEG", quality=90)
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.abs(preprocess(data, PREP) - torch_reference(decoded)).max() <= 1e-2


def test_large_jpeg_is_draft_decoded_near_target_and_stays_close() -> None:
    data = encode(photo_like(4032, 3024, seed=2), "JPEG", quality=85)
    image = decode_image(data, PREP)
    # Decoded at a reduced DCT scale, but never below the resize target.
    assert image.size[0] < 4032
    assert min(image.size) >= PREP.resize_size
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    diff = np.abs(preprocess(data, PREP) - torch_reference(full))
    assert diff.mean() <= 0.02


def test_exif_orientation_is_applied() -> None:
    arr = photo_like(120, 80)
    image = Image.fromarray(arr)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif, quality=95)
    decoded = decode_image(buf.getvalue(), Preprocessing(input_size=32, resize_size=40))
    width, height = decoded.size
    assert height > width  # stored landscape, displayed portrait


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "LA", "1"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    image = Image.fromarray(photo_like(64, 48)).convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    buf = io.BytesIO()
    image.save(buf, fmt)
    out = preprocess(buf.getvalue(), Preprocessing(input_size=32, resize_size=36))
    assert out.shape == (3, 32, 32)
    assert np.isfinite(out).all()


def test_16_bit_greyscale_is_scaled_not_clipped() -> None:
    arr = np.full((40, 40), 65535, dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    prep = Preprocessing(input_size=32, resize_size=32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    out = preprocess(buf.getvalue(), prep)
    assert np.allclose(out, 1.0, atol=1e-3)  # white, not clipped to 255/65535


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "PNG", "JPEG"])
def test_accepted_formats(fmt: str) -> None:
    data = encode(photo_like(50, 40), fmt)
    assert sniff_format(data) == fmt
    assert preprocess(data, Preprocessing(input_size=32, resize_size=36)).shape == (3, 32, 32)


def test_animated_gif_uses_first_frame() -> None:
    red = Image.new("RGB", (40, 40), (255, 0, 0))
    blue = Image.new("RGB", (40, 40), (0, 0, 255))
    buf = io.BytesIO()
    red.save(buf, "GIF", save_all=True, append_images=[blue])
    image = decode_image(buf.getvalue(), Preprocessing(input_size=32, resize_size=36))
    r, _, b = image.getpixel((20, 20))  # type: ignore[misc]
    assert r > 200 and b < 50


def test_small_image_is_padded_like_center_crop() -> None:
    out = preprocess(encode(photo_like(20, 10), "PNG"), Preprocessing(input_size=32, resize_size=16))
    assert out.shape == (3, 32, 32)


def test_text_is_unsupported_media_type() -> None:
    with pytest.raises(UnsupportedMediaType):
        preprocess(b"hello, this is not an image", PREP)


def test_tiff_is_not_an_accepted_format() -> None:
    with pytest.raises(UnsupportedMediaType):
        preprocess(encode(photo_like(20, 20), "TIFF"), PREP)


def test_empty_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        preprocess(b"", PREP)


def test_truncated_jpeg_is_unprocessable() -> None:
    data = encode(photo_like(300, 200), "JPEG")
    with pytest.raises(UnprocessableImage, match="cannot be decoded"):
        preprocess(data[: len(data) // 2], PREP)


def png_bomb(width: int, height: int) -> bytes:
    """A real greyscale PNG of width x height zero pixels, compressed to a few hundred KB."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    # 8000 x 8000 = 64 M pixels: over our 50 M cap, under Pillow's own limit (so Pillow's
    # DecompressionBombError cannot be what refuses it), in 70 KB.
    bomb = png_bomb(8000, 8000)
    assert len(bomb) < 100_000
    assert Image.MAX_IMAGE_PIXELS > 8000 * 8000

    def never(*args: object) -> None:
        raise AssertionError("a pixel was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    refusal = r"^the image is 8000x8000 = 64,000,000 pixels, over the cap of 50,000,000$"
    with pytest.raises(UnprocessableImage, match=refusal):
        preprocess(bomb, PREP)


def test_the_pixel_cap_is_50_million() -> None:
    # Exactly 50,000,000 pixels is served; one more row is not. Both are far under Pillow's limit.
    assert Image.MAX_IMAGE_PIXELS > 10_000 * 5_001
    assert preprocess(png_bomb(10_000, 5_000), PREP).shape == (3, 224, 224)
    with pytest.raises(UnprocessableImage, match=r"= 50,010,000 pixels, over the cap of 50,000,000$"):
        preprocess(png_bomb(10_000, 5_001), PREP)


def test_large_png_is_reduced_first_and_stays_close() -> None:
    arr = photo_like(2400, 1800, seed=5)
    ours = preprocess(encode(arr, "PNG"), PREP)
    diff = np.abs(ours - torch_reference(arr))
    assert ours.shape == (3, 224, 224)
    assert diff.mean() <= 0.02
