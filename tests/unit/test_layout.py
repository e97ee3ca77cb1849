"""The layout stays readable: no module over 400 lines, and most of them small (median under 150).

Counted over the whole package (src/lambdavision), every .py file, blank lines and docstrings
included: what a maintainer scrolls through. A module that grows past the limit holds two
concerns; split it where the nouns change (STYLE.md, "Small modules").
"""

from __future__ import annotations

import statistics
from pathlib import Path

import lambdavision

PACKAGE = Path(lambdavision.__file__).parent
MAX_LINES = 400
MAX_MEDIAN = 150


def module_lines() -> dict[str, int]:
    return {
        path.relative_to(PACKAGE.parent).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def test_the_count_sees_the_whole_package() -> None:
    lines = module_lines()
    assert {"lambdavision/handler.py", "lambdavision/core/errors.py", "lambdavision/runtime/settings.py"} <= set(lines)
    assert all(count > 0 for count in lines.values())


def test_no_module_is_over_400_lines() -> None:
    over = {name: count for name, count in module_lines().items() if count > MAX_LINES}
    assert not over, "modules over 400 lines (split them by concern): " + ", ".join(
        f"{name} ({count})" for name, count in sorted(over.items(), key=lambda item: -item[1])
    )


def test_the_median_module_is_under_150_lines() -> None:
    lines = module_lines()
    median = statistics.median(lines.values())
    assert median < MAX_MEDIAN, f"the median module has {median:g} lines (over {len(lines)} modules); aim under 150"
