"""Issue 14.1: no accepted image costs more than SECURITY.md's stated peak memory, whatever its shape.

Each case is a real request through the handler in a child process (tests.memory.probe), which
reports its max RSS minus its RSS just before the request. The 1 x 49,999,999 greyscale PNG
(97 KB) took 2.4 GB and 9.4 s before; every cap is tried at its edge and just past it, and
every accepted shape must still be classified (a bound kept by refusing everything proves nothing).
"""

from __future__ import annotations

import pytest

from lambdavision.core.decode import DEFAULT_MAX_PIXELS, MAX_ASPECT, MAX_JPEG_SCAN_PIXELS, MAX_JPEG_SCANS, MAX_SIDE
from tests.memory.client import MemoryProbe, stated_bound_mib
from tests.memory.shapes import Shape

UNDER_PIXELS = 7071  # 7071 x 7071 = 49,999,041, just under the 50 M cap
ASPECT_SHORT = MAX_SIDE // MAX_ASPECT  # 1250: MAX_SIDE x 1250 is at both the side and the aspect cap
SCANS_TO_CAP = MAX_JPEG_SCANS - 10  # Pillow's progressive JPEGs have 10 scans of their own

CASES: list[tuple[Shape, int]] = [
    # The reproducers: very tall and very wide greyscale PNGs under the pixel cap.
    (Shape("PNG", 1, 49_999_999, "L"), 422),
    (Shape("PNG", 49_999_999, 1, "L"), 422),
    (Shape("PNG", 16, 3_100_000, "L"), 422),
    # Side and aspect caps: at the edge, and one pixel past it.
    (Shape("PNG", MAX_SIDE, ASPECT_SHORT, "RGBA"), 200),
    (Shape("PNG", ASPECT_SHORT, MAX_SIDE, "1"), 200),
    (Shape("PNG", MAX_SIDE + 1, ASPECT_SHORT + 1, "L"), 422),
    (Shape("PNG", ASPECT_SHORT - 1, MAX_SIDE, "P"), 422),
    (Shape("JPEG", MAX_SIDE, ASPECT_SHORT, "RGB", progressive=True, subsampling=0), 200),
    # The pixel cap, just under and just over, in the costliest modes.
    (Shape("PNG", UNDER_PIXELS, UNDER_PIXELS, "1"), 200),
    (Shape("PNG", UNDER_PIXELS, UNDER_PIXELS, "P;1"), 200),
    (Shape("PNG", UNDER_PIXELS, UNDER_PIXELS, "I;16"), 200),
    (Shape("PNG", UNDER_PIXELS, UNDER_PIXELS, "LA"), 200),
    (Shape("PNG", UNDER_PIXELS, UNDER_PIXELS, "RGBA;16", interlaced=True), 200),
    (Shape("PNG", UNDER_PIXELS + 1, UNDER_PIXELS, "L"), 422),
    (Shape("GIF", UNDER_PIXELS, UNDER_PIXELS, "P"), 200),
    (Shape("BMP", UNDER_PIXELS, UNDER_PIXELS, "1"), 200),
    (Shape("JPEG", UNDER_PIXELS, UNDER_PIXELS, "RGB", progressive=True), 200),
    (Shape("JPEG", UNDER_PIXELS, UNDER_PIXELS, "CMYK"), 200),
    # The memory budget: a progressive 4:4:4 JPEG keeps 6 bytes of coefficients a pixel, a WebP ~16.
    (Shape("JPEG", UNDER_PIXELS, UNDER_PIXELS, "RGB", progressive=True, subsampling=0), 422),
    (Shape("WEBP", 4032, 3024, "RGBA"), 200),  # a 12 MP photo
    (Shape("WEBP", 4600, 3500, "RGB"), 422),
    # Progressive scans: at the count cap (a 3 MP image), and one past it...
    (Shape("JPEG", 2000, 1500, "RGB", progressive=True, extra_scans=SCANS_TO_CAP), 200),
    (Shape("JPEG", 2000, 1500, "RGB", progressive=True, extra_scans=SCANS_TO_CAP + 1), 422),
    # ...and scans times pixels: a 12 MP photo may have 61 scans, 50 MP 15.
    (Shape("JPEG", 4032, 3024, "RGB", progressive=True, extra_scans=61 - 10), 200),
    (Shape("JPEG", 4032, 3024, "RGB", progressive=True, extra_scans=61 - 10 + 1), 422),
    (Shape("JPEG", UNDER_PIXELS, UNDER_PIXELS, "RGB", progressive=True, extra_scans=15 - 10), 200),
    (Shape("JPEG", UNDER_PIXELS, UNDER_PIXELS, "RGB", progressive=True, extra_scans=15 - 10 + 1), 422),
    # An RLE BMP is decoded by Pillow in Python, a byte at a time (5 s for 29 KB): refused.
    (Shape("BMP", UNDER_PIXELS, UNDER_PIXELS, "RLE8"), 415),
]


def test_the_cases_sit_on_the_caps() -> None:
    assert UNDER_PIXELS**2 <= DEFAULT_MAX_PIXELS < (UNDER_PIXELS + 1) * UNDER_PIXELS
    assert MAX_SIDE == MAX_ASPECT * ASPECT_SHORT
    assert MAX_JPEG_SCAN_PIXELS // UNDER_PIXELS**2 == 15
    assert MAX_JPEG_SCAN_PIXELS // (4032 * 3024) == 61
    assert MAX_JPEG_SCAN_PIXELS // (2000 * 1500) > MAX_JPEG_SCANS


@pytest.mark.parametrize(("shape", "status"), CASES, ids=[shape.name for shape, _ in CASES])
def test_worst_shapes_stay_within_the_stated_bound(memory_probe: MemoryProbe, shape: Shape, status: int) -> None:
    measured = memory_probe.measure(shape)
    assert measured.status == status, measured.error
    assert measured.raise_mib <= stated_bound_mib(), f"{shape.name} raised peak memory by {measured.raise_mib:.0f} MiB"


def test_a_batch_shares_one_budget(memory_probe: MemoryProbe) -> None:
    # 16 images that each fit the budget alone: the first is decoded, the rest are refused in place.
    heavy = Shape("PNG", UNDER_PIXELS, UNDER_PIXELS, "RGBA")
    measured = memory_probe.measure(*[heavy] * 16, batch=True)
    assert measured.status == 200
    assert measured.statuses == [200] + [422] * 15
    assert measured.raise_mib <= stated_bound_mib()
    # Light images share it without trouble: sixteen 12 MP JPEG photos are all classified.
    photos = memory_probe.measure(*[Shape("JPEG", 4032, 3024, "RGB")] * 16, batch=True)
    assert photos.statuses == [200] * 16
    assert photos.raise_mib <= stated_bound_mib()
