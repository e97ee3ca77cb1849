"""Peak memory (and time) of the worst image shapes through the real handler (a benchmark: it prints figures).

Runs every case of tests/functional/test_memory_bound.py (and a 16-image batch) through
tests.memory.probe, a child process that reports each request's max RSS minus its RSS before it,
with the colour model (whose own inference memory is negligible), and prints a Markdown table:
the figures SECURITY.md quotes.

    .venv/bin/python benchmarks/memory_bound.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambdavision.runtime.artifact_files import write_artifact  # noqa: E402
from tests.fixtures.colour import COLOUR_PREP, COLOURS, colour_onnx  # noqa: E402
from tests.functional.test_memory_bound import CASES  # noqa: E402
from tests.memory.client import MemoryProbe, stated_bound_mib  # noqa: E402
from tests.memory.shapes import Shape  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        artifact = Path(tmp) / "colour.tar.gz"
        write_artifact(artifact, classes=list(COLOURS), preprocessing=COLOUR_PREP, onnx=colour_onnx(), torchscript=None)
        probe = MemoryProbe(artifact)
        try:
            rows = [(shape.name, probe.measure(shape)) for shape, _ in CASES]
            heavy = Shape("PNG", 7071, 7071, "RGBA")
            rows.append(("batch of 16 x " + heavy.name, probe.measure(*[heavy] * 16, batch=True)))
            photo = Shape("JPEG", 4032, 3024, "RGB")
            rows.append(("batch of 16 x " + photo.name, probe.measure(*[photo] * 16, batch=True)))
            scans = Shape("JPEG", 4032, 3024, "RGB", progressive=True, extra_scans=51)  # 61 scans: the cap
            rows.append(("batch of 16 x " + scans.name, probe.measure(*[scans] * 16, batch=True)))
        finally:
            probe.close()
    print(f"| image | answer | peak memory raised (MiB) | time (s) |  (bound: {stated_bound_mib():.0f} MiB)")
    print("|---|---|---:|---:|")
    for name, measured in rows:
        answer = ", ".join(f"{s}×{measured.statuses.count(s)}" for s in sorted(set(measured.statuses)))
        print(f"| {name} | {answer} | {max(measured.raise_mib, 0):.0f} | {measured.seconds:.2f} |")


if __name__ == "__main__":
    main()
