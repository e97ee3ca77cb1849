"""Image decoding's caps and cost estimates at their edges: what mutation testing (`make mutate`) found unpinned.

The request's memory budget may be used to its last byte and no further, over several charges;
the decoding cost follows the documented bytes per pixel (1 for 1/L/P, 2 for I;16, 4 otherwise),
3 bytes a pixel more for a progressive 4:2:0 JPEG's coefficients, 16 a pixel plus the file for a
WebP; a JPEG's first scan is found past fill bytes, restart markers and long segments; the
scanned-pixels cap lets through exactly its value; a WebP's canvas is read from each of its three
header kinds, at their shortest lengths.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from lambdavision.core.decode import (
    MAX_JPEG_SCAN_PIXELS,
    MAX_JPEG_SCANS,
    MemoryBudget,
    plan_decode,
    webp_canvas_size,
    webp_open_cost,
)
from lambdavision.core.errors import UnprocessableImage


def full_size(width: int, height: int) -> tuple[int, int]:
    return width, height


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def cost(data: bytes, fmt: str) -> int:
    return plan_decode(Image.open(io.BytesIO(data), formats=[fmt]), fmt, data, full_size).cost


# --- the memory budget ------------------------------------------------------------------------------


def test_the_budget_can_be_used_to_its_last_byte_over_several_charges() -> None:
    """Rule: charges add up; their total may reach the budget, never pass it."""
    budget = MemoryBudget(total=10 * 1024 * 1024)
    budget.charge(6 * 1024 * 1024, "the first image")
    budget.charge(4 * 1024 * 1024, "the second image")
    assert budget.used == budget.total
    with pytest.raises(UnprocessableImage) as caught:
        budget.charge(1, "a third image")
    assert caught.value.message == (
        "a third image would take about 1 MB of memory, over this request's budget of 10 MB "
        "(its other images already use 10 MB): send a smaller image"
    )


def test_a_first_image_over_the_budget_says_so_without_other_images() -> None:
    """Rule: the refusal mentions other images only when there are some."""
    with pytest.raises(UnprocessableImage) as caught:
        MemoryBudget(total=1024 * 1024).charge(1024 * 1024 + 1, "decoding this image")
    assert caught.value.message == (
        "decoding this image would take about 2 MB of memory, over this request's budget of 1 MB: send a smaller image"
    )
    budget = MemoryBudget(total=1024 * 1024)
    budget.charge(1, "a tiny image")
    with pytest.raises(UnprocessableImage, match=r"\(its other images already use 1 MB\)"):
        budget.charge(1024 * 1024, "the next image")


# --- what decoding costs ------------------------------------------------------------------------------


def test_decoded_pixels_cost_their_mode_s_bytes() -> None:
    """Rule: 1 byte a pixel for modes 1/L/P, 2 for I;16, 4 for every other mode."""
    width, height = 64, 48
    costs = {
        mode: cost(encode(Image.new(mode, (width, height)), "PNG"), "PNG")
        for mode in ("1", "L", "P", "I;16", "RGBA", "LA")
    }
    assert costs["1"] == costs["L"] == costs["P"]
    assert costs["I;16"] - costs["L"] == width * height
    assert costs["RGBA"] - costs["L"] == 3 * width * height
    assert costs["LA"] == costs["RGBA"]


def test_a_webp_open_costs_16_bytes_a_pixel_and_the_file() -> None:
    """Rule: Pillow's WebP reader holds two RGBA canvases, a frame copy and the image (~16 B/pixel) + the file."""
    assert webp_open_cost(300, 200, b"x" * 1000) == 300 * 200 * 16 + 1000


def photo(width: int, height: int) -> Image.Image:
    return Image.linear_gradient("L").resize((width, height)).convert("RGB")


def test_a_progressive_jpeg_costs_3_bytes_a_pixel_more() -> None:
    """Rule: a progressive 4:2:0 JPEG holds its coefficients: 2 bytes each, 1.5 per pixel."""
    image = photo(256, 128)
    baseline = encode(image, "JPEG", subsampling="4:2:0")
    progressive = encode(image, "JPEG", subsampling="4:2:0", progressive=True)
    assert cost(progressive, "JPEG") - cost(baseline, "JPEG") == 3 * 256 * 128


def _segments_inserted(data: bytes, extra: bytes) -> bytes:
    """`extra` right after the JPEG's SOI marker."""
    return data[:2] + extra + data[2:]


@pytest.mark.parametrize(
    "extra",
    [
        b"\xff\xff\xff",  # fill bytes before a marker
        b"\xff\xd0",  # restart markers carry no length
        b"\xff\xd7",
        b"\xff\xd3\xff\xd5",
    ],
)
def test_the_first_scan_of_a_baseline_jpeg_is_found_past_markers_without_a_length(extra: bytes) -> None:
    """Rule: a baseline JPEG is single-pass (no coefficient cost), whatever legal bytes precede its scan."""
    data = encode(photo(64, 48), "JPEG")
    Image.open(io.BytesIO(_segments_inserted(data, extra))).load()  # Pillow reads it
    assert cost(_segments_inserted(data, extra), "JPEG") == cost(data, "JPEG")


def test_the_first_scan_is_found_past_long_segments_and_without_jfif() -> None:
    """Rule: segment lengths are 16-bit big-endian; the walk starts at the first segment, whatever it is."""
    image = photo(64, 48)
    plain = encode(image, "JPEG")
    assert cost(encode(image, "JPEG", comment=b"c" * 1000), "JPEG") == cost(plain, "JPEG")
    assert plain[2:4] == b"\xff\xe0"
    no_jfif = plain[:2] + plain[4 + int.from_bytes(plain[4:6], "big") :]
    assert no_jfif[2:4] == b"\xff\xdb"  # a quantisation table first: its first byte is 0
    assert cost(no_jfif, "JPEG") == cost(plain, "JPEG")


def test_the_first_scan_header_is_read_at_its_own_offset() -> None:
    """Rule: the component count is read from the scan header itself, not from the bytes before it."""
    plain = encode(photo(64, 48), "JPEG")
    sos = plain.index(b"\xff\xda")
    zeros_before_scan = plain[:sos] + b"\xff\xfe\x00\x0a" + bytes(8) + plain[sos:]  # a comment of zeros
    Image.open(io.BytesIO(zeros_before_scan)).load()
    assert cost(zeros_before_scan, "JPEG") == cost(plain, "JPEG")


def _progressive_with_scans(width: int, height: int, scans: int) -> bytes:
    data = encode(photo(width, height), "JPEG", progressive=True, quality=50)
    # Start-of-scan markers after the end of the image: counted, never decoded (plan_decode only).
    return data + b"\xff\xda" * (scans - data.count(b"\xff\xda"))


def test_the_scanned_pixels_cap_lets_through_exactly_its_value() -> None:
    """Rule: scans x pixels may equal MAX_JPEG_SCAN_PIXELS; one pixel row more is refused."""
    width = 3000
    height = MAX_JPEG_SCAN_PIXELS // (MAX_JPEG_SCANS * width)
    assert MAX_JPEG_SCANS * width * height == MAX_JPEG_SCAN_PIXELS
    assert cost(_progressive_with_scans(width, height, MAX_JPEG_SCANS), "JPEG") > 0
    with pytest.raises(UnprocessableImage, match="over the cap of 750,000,000 scanned pixels"):
        cost(_progressive_with_scans(width, height + 1, MAX_JPEG_SCANS), "JPEG")


# --- a WebP's canvas from its header --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "chunk", "shortest"),
    [
        ({"lossless": False}, b"VP8 ", 30),
        ({"lossless": True}, b"VP8L", 25),
        ({"lossless": False, "exif": b"Exif\0\0MM\0*\0\0\0\x08\0\0"}, b"VP8X", 30),
    ],
)
def test_each_webp_header_kind_gives_the_canvas_size(options: dict[str, Any], chunk: bytes, shortest: int) -> None:
    """Rule: VP8, VP8L and VP8X headers are each read their own way, from their shortest valid prefix."""
    data = encode(Image.new("RGB", (300, 258), (9, 8, 7)), "WEBP", **options)
    assert data[12:16] == chunk
    assert webp_canvas_size(data) == (300, 258)
    assert webp_canvas_size(data[:shortest]) == (300, 258)
    assert webp_canvas_size(data[: shortest - 1]) is None
    assert webp_canvas_size(data[:20]) is None


def test_the_chunk_kind_decides_how_a_webp_header_is_read() -> None:
    """Rule: a lossy (VP8) header whose byte 20 happens to be VP8L's signature is still read as VP8."""
    data = bytearray(encode(Image.new("RGB", (300, 258)), "WEBP", lossless=False))
    data[20] = 0x2F
    assert webp_canvas_size(bytes(data)) == (300, 258)
    lossless = bytearray(encode(Image.new("RGB", (300, 258)), "WEBP", lossless=True))
    lossless[20] = 0  # not VP8L's signature...
    lossless[23:26] = b"\x9d\x01\x2a"  # ...and VP8's start code where VP8 has it: still not a VP8 header
    assert webp_canvas_size(bytes(lossless)) is None


# --- the plan: what is charged, and the draft scale for the orientation shown -----------------------------


def test_the_cost_of_a_plain_decode_is_rows_pixels_and_three_results() -> None:
    """Rule: 32 B of bookkeeping a row + the decoded pixels (4 B each for RGB) + the RGB result three times."""
    width, height = 64, 48
    expected = height * 32 + width * height * 4 + 3 * width * height * 4
    assert cost(encode(photo(width, height), "JPEG"), "JPEG") == expected
    assert cost(encode(photo(width, height), "PNG"), "PNG") == expected
    # a WebP's pixels are charged before it is opened (webp_open_cost), never a second time here
    webp = encode(photo(width, height), "WEBP")
    assert cost(webp, "WEBP") == height * 32 + 3 * width * height * 4


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def fixed_target(width: int, height: int) -> tuple[int, int]:
    return 64, 256  # a tall target: which way the image is shown decides the scale


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_a_jpeg_shown_turned_is_drafted_for_its_shown_orientation(orientation: int) -> None:
    """Rule: EXIF orientations 5-8 swap the sides: the draft scale covers the target as shown."""
    data = encode(photo(1024, 256), "JPEG", exif=_exif(orientation))
    turned = plan_decode(Image.open(io.BytesIO(data)), "JPEG", data, fixed_target)
    assert turned.decoded == (256, 64)  # shown 256x1024: the 64x256 target needs a quarter of it
    plain = encode(photo(1024, 256), "JPEG", exif=_exif(1))
    assert plan_decode(Image.open(io.BytesIO(plain)), "JPEG", plain, fixed_target).decoded == (1024, 256)


@pytest.mark.parametrize("orientation", [1, 6])
def test_other_formats_reduce_for_either_orientation(orientation: int) -> None:
    """Rule: a PNG's orientation is applied after decoding: its reduction covers the target both ways."""
    data = encode(photo(1024, 1024), "PNG", exif=_exif(orientation))
    plan = plan_decode(Image.open(io.BytesIO(data)), "PNG", data, fixed_target)
    assert plan.factor == 8  # 1024 / (2 x 64) either way round
