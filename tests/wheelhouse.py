"""Fetch every wheel the test suite's package builds need, before the suite runs sealed.

`make test` runs pytest in a network namespace with loopback only (scripts/sealed), where pip
cannot reach the package registry. The builds the tests make (`package`, `build`, `local` of a
built package, the runtime client) still run pip, offline then: `scripts/sealed` points pip at
the folders filled here (PIP_NO_INDEX, PIP_FIND_LINKS). Laid out as lambdavision's own wheel
cache, so a second run downloads nothing.

    python -m tests.wheelhouse FOLDER      # prints the wheel folders, one a line
"""

from __future__ import annotations

import sys
from pathlib import Path

from lambdavision.builder import runtime_client, wheels

# The runtimes and architectures the tests build for (an arm64 package on this host also builds
# its x86_64 host twin, which is the x86_64 target's wheels).
TARGETS = [
    wheels.Target(runtime, architecture)
    for runtime in ("python3.12", "python3.13")
    for architecture in ("x86_64", "arm64")
]


def fill(folder: Path) -> list[Path]:
    """Download what is missing; the wheel folders, one per target."""
    requirement_sets = [wheels.requirements(False), wheels.requirements(True), runtime_client.pinned()]
    for target in TARGETS:
        for reqs in requirement_sets:
            wheels.fetch_wheels(target, reqs, folder, log=lambda line: print(line, file=sys.stderr))
    return [folder / "wheels" / target.slug for target in TARGETS]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.wheelhouse FOLDER", file=sys.stderr)
        return 2
    for path in fill(Path(argv[0]).resolve()):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
