"""core.decode: the shape caps, the memory budget and the reduced decoding (issue 14.1)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFile

from lambdavision.core.decode import (
    MAX_ASPECT,
    MAX_JPEG_SCANS,
    MAX_SIDE,
    MemoryBudget,
    check_shape,
    decode,
    plan_decode,
    webp_canvas_size,
)
from lambdavision.core.errors import UnprocessableImage, UnsupportedMediaType
from lambdavision.core.preprocess import Preprocessing
from tests.memory.shapes import Shape, png

PREP = Preprocessing()
TARGET = PREP.min_decode_size


def test_min_decode_size_follows_the_resize_on_the_shorter_side() -> None:
    assert PREP.min_decode_size(4032, 3024) == (342, 256)  # ceil: at least one source pixel per output pixel
    assert PREP.min_decode_size(3024, 4032) == (256, 342)
    assert PREP.min_decode_size(20000, 1250) == (4096, 256)
    assert PREP.min_decode_size(100, 50) == (100, 50)  # never more than the image itself


@pytest.mark.parametrize(
    ("width", "height", "problem"),
    [
        (MAX_SIDE + 1, 2000, "a side"),
        (1, 49_999_999, "a side"),
        (2000, MAX_SIDE + 1, "a side"),
        (MAX_SIDE, MAX_SIDE // MAX_ASPECT - 1, "aspect ratio"),
        (16, 16 * MAX_ASPECT + 1, "aspect ratio"),
        (7072, 7071, "pixels, over the cap"),
        (0, 10, "no pixels"),
    ],
)
def test_shape_caps_refuse(width: int, height: int, problem: str) -> None:
    with pytest.raises(UnprocessableImage, match=problem) as caught:
        check_shape(width, height)
    assert caught.value.status == 422


@pytest.mark.parametrize(("width", "height"), [(MAX_SIDE, MAX_SIDE // MAX_ASPECT), (7071, 7071), (4032, 3024), (1, 1)])
def test_shape_caps_accept_up_to_the_edge(width: int, height: int) -> None:
    check_shape(width, height)
    check_shape(height, width)


def test_the_97_kb_tall_png_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png(1, 49_999_999, level=9)
    assert len(bomb) < 100_000

    def decoded(self: ImageFile.ImageFile) -> None:  # (it was: 9.4 s and 2.4 GB)
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    with pytest.raises(UnprocessableImage, match="over the cap of 20,000 pixels a side"):
        decode(bomb, TARGET)


def test_a_jpeg_decodes_at_the_smallest_dct_scale_covering_the_target() -> None:
    data = Shape("JPEG", 4032, 3024, "RGB").build()
    image = decode(data, TARGET)
    assert image.size == (504, 378)  # 1/8: still >= (341, 256)
    assert image.info["original_size"] == (4032, 3024)


def test_an_exif_rotated_jpeg_is_upright_and_big_enough_as_shown() -> None:
    source = Image.new("RGB", (4032, 3024), (10, 200, 30))
    exif = source.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    source.save(buf, "JPEG", exif=exif)
    image = decode(buf.getvalue(), Preprocessing(input_size=224, resize_size=700).min_decode_size)
    assert image.width < image.height
    assert image.size == (756, 1008)  # 1/4: 1/8 (378 wide) would be under the 700 px shorter side


@pytest.mark.parametrize("mode", ["P", "1", "LA", "RGBA", "L"])
def test_strip_by_strip_reduction_equals_converting_and_reducing_whole(mode: str) -> None:
    rng = np.random.default_rng(4)
    base = Image.fromarray(rng.integers(0, 255, (1800, 2400, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    base.save(buf, "PNG")
    image = decode(buf.getvalue(), TARGET)
    expected = base.convert("RGB").reduce(3)  # 1800 // (2 * 256) = 3
    assert image.size == expected.size
    assert np.array_equal(np.asarray(image), np.asarray(expected))


def test_16_bit_png_is_scaled_then_reduced() -> None:
    arr = (np.arange(2400 * 1800, dtype=np.uint32) % 65536).astype(np.uint16).reshape(1800, 2400)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    image = decode(buf.getvalue(), TARGET)
    grey = Image.fromarray(np.clip(arr.astype(np.float32) * (255.0 / 65535.0), 0, 255).astype(np.uint8))
    assert np.array_equal(np.asarray(image), np.asarray(grey.convert("RGB").reduce(3)))


def test_an_image_over_the_budget_is_refused_undecoded() -> None:
    budget = MemoryBudget(100 * 1024 * 1024)
    with pytest.raises(UnprocessableImage, match="over this request's budget of 100 MB") as caught:
        decode(png(7071, 7071, "RGBA"), TARGET, budget=budget)
    assert caught.value.status == 422
    assert budget.used == 0


def test_a_request_shares_its_budget_between_images() -> None:
    budget = MemoryBudget(300 * 1024 * 1024)
    data = png(7071, 7071, "RGBA")
    decode(data, TARGET, budget=budget)
    assert budget.used > 200 * 1024 * 1024
    with pytest.raises(UnprocessableImage, match="its other images already use"):
        decode(data, TARGET, budget=budget)


def test_progressive_jpegs_are_charged_their_full_size_coefficients() -> None:
    def cost(shape: Shape) -> int:
        data = shape.build()
        return plan_decode(Image.open(io.BytesIO(data)), "JPEG", data, TARGET).cost

    baseline = cost(Shape("JPEG", 4000, 3000, "RGB"))
    progressive = cost(Shape("JPEG", 4000, 3000, "RGB", progressive=True))
    full_444 = cost(Shape("JPEG", 4000, 3000, "RGB", progressive=True, subsampling=0))
    assert baseline < 10 * 1024 * 1024
    # 4:2:0 holds 1.5 coefficients a pixel, 4:4:4 three; 2 bytes each, padded to whole MCUs.
    assert 4000 * 3000 * 3 <= progressive - baseline <= 4000 * 3000 * 3 * 1.01
    assert 4000 * 3000 * 6 <= full_444 - baseline <= 4000 * 3000 * 6 * 1.01


def test_a_jpeg_of_too_many_scans_is_refused() -> None:
    extra = MAX_JPEG_SCANS - 9  # Pillow writes 10 scans
    data = Shape("JPEG", 600, 400, "RGB", progressive=True, extra_scans=extra).build()
    with pytest.raises(UnprocessableImage, match=f"over the cap of {MAX_JPEG_SCANS}"):
        decode(data, TARGET)
    decode(Shape("JPEG", 600, 400, "RGB", progressive=True, extra_scans=extra - 1).build(), TARGET)


def test_a_big_progressive_jpeg_may_have_fewer_scans() -> None:
    data = Shape("JPEG", 4000, 4000, "L", progressive=True, extra_scans=50).build()  # 16 MP, 6 + 50 scans
    with pytest.raises(UnprocessableImage, match=r"56 scans of 4000x4000 pixels, over the cap .* \(46 scans"):
        decode(data, TARGET)


def test_rle_bmp_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType, match="RLE"):
        decode(Shape("BMP", 300, 200, "RLE8").build(), TARGET)
    decode(Shape("BMP", 300, 200, "1").build(), TARGET)  # an uncompressed one is fine


def test_a_webp_is_checked_from_its_header_before_pillow_allocates() -> None:
    real = Shape("WEBP", 640, 480, "RGB").build()
    assert webp_canvas_size(real) == (640, 480)
    # The same file claiming a 16383x16383 canvas (268 M pixels, 4 GB for Pillow's reader).
    extended = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00" + (16382).to_bytes(3, "little") * 2
    with pytest.raises(UnprocessableImage, match="over the cap"):
        decode(extended + b"\x00" * 64, TARGET)
    with pytest.raises(UnprocessableImage, match="cannot be read from its header"):
        decode(b"RIFF\x00\x00\x00\x00WEBPVP8Q" + b"\x00" * 40, TARGET)
