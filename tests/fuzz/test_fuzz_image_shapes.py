"""Property: whatever an image's shape, the handler answers 200, 415 or 422 within the stated peak memory.

Each drawn image (format, mode, size at or around every cap, interlacing, progressive scans) is
sent to the real handler in a child process (tests.memory.probe), which reports how much the
request raised its max RSS; SECURITY.md's bound must hold for every one of them. A few cases
run in the suite (each builds and decodes images of up to 50 M pixels); `make fuzz` runs for
minutes.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdavision.core.decode import MAX_SIDE
from tests.fuzz.budget import FUZZ_SETTINGS, Counter, run_budget
from tests.memory.client import MemoryProbe, stated_bound_mib
from tests.memory.shapes import PNG_MODES, Shape

SHAPE_EXAMPLES = int(os.environ.get("LAMBDAVISION_FUZZ_SHAPE_EXAMPLES", "6"))

MODES = {
    "PNG": sorted(PNG_MODES),
    "JPEG": ["RGB", "L", "CMYK"],
    "GIF": ["P", "L"],
    "BMP": ["1", "L", "RGB", "RLE8"],
    "WEBP": ["RGB", "RGBA"],
}
# Pixels an image may have and still be built in about a second (Pillow holds it whole to encode
# JPEG, GIF, BMP and WebP; PNGs are streamed). Past the caps on purpose: 50 M pixels is the cap.
BUILDABLE = {"PNG": 60_000_000, "JPEG": 52_000_000, "GIF": 52_000_000, "BMP": 52_000_000, "WEBP": 20_000_000}
# A BMP is sent uncompressed: it must fit the 10 MB body (1 bit a pixel: 80 M; 24 bits: 3.3 M).
BMP_BITS = {"1": 1, "L": 8, "RGB": 24, "RLE8": 0}

EDGES = [1, 2, 15, 16, 17, 1249, 1250, 1251, 3024, 4032, 7071, 7072, 16383, MAX_SIDE - 1, MAX_SIDE, MAX_SIDE + 1]
sides = st.one_of(st.sampled_from(EDGES), st.integers(1, MAX_SIDE + 500))
REPRODUCERS = [Shape("PNG", 1, 49_999_999, "L"), Shape("PNG", 49_999_999, 1, "L"), Shape("PNG", 16, 3_100_000, "L")]


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(REPRODUCERS))
    fmt = draw(st.sampled_from(sorted(MODES)))
    mode = draw(st.sampled_from(MODES[fmt]))
    width, height = draw(sides), draw(sides)
    limit = BUILDABLE[fmt]
    if fmt == "BMP" and BMP_BITS[mode]:
        limit = min(limit, 9_000_000 * 8 // BMP_BITS[mode])
    if fmt == "WEBP":
        width, height = min(width, 16383), min(height, 16383)  # the format's own limit
    if width * height > limit:
        height = max(1, limit // width)
    return Shape(
        fmt,
        width,
        height,
        mode,
        interlaced=fmt == "PNG" and draw(st.booleans()),
        progressive=fmt == "JPEG" and draw(st.booleans()),
        subsampling=draw(st.sampled_from([0, 2])) if fmt == "JPEG" else 2,
        extra_scans=draw(st.sampled_from([0, 0, 50, 95])) if fmt == "JPEG" and width * height < 4_000_000 else 0,
    )


def test_any_image_shape_stays_within_the_stated_peak_memory(memory_probe: MemoryProbe) -> None:
    bound = stated_bound_mib()
    counter = Counter()

    @settings(FUZZ_SETTINGS, max_examples=SHAPE_EXAMPLES)
    @given(shapes())
    def target(shape: Shape) -> None:
        counter.tick()
        measured = memory_probe.measure(shape)
        assert measured.status in (200, 415, 422), (shape, measured)
        assert measured.status != 415 or shape.mode == "RLE8", (shape, measured)
        assert measured.raise_mib <= bound, f"{shape} raised peak memory by {measured.raise_mib:.0f} MiB"

    run_budget("image shapes", target, counter)
