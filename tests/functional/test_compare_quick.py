"""`benchmarks/compare.py --quick` end to end: every variant measured, every figure present and positive,
every ratio computed from the figures shown, and all four outputs written. Never its speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import compare

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    work = tmp_path_factory.mktemp("compare")
    out = work / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compare.py"), "--quick", "--cache-dir", str(work / "cache"),
         "--out", str(out)],
        capture_output=True, text=True, timeout=280, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text()), proc.stdout


def test_all_outputs_are_written(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    out, results, stdout = quick_run
    assert (out / "compare.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    table = (out / "results.md").read_text()
    section = (out / "README-section.md").read_text()
    assert compare.markdown_table(results) in table
    assert compare.markdown_table(results) in section
    assert compare.markdown_targets(results) in section
    assert "python benchmarks/compare.py --quick" in section
    assert results["meta"]["machine"]["cpu"] in section
    assert compare.markdown_table(results) in stdout


def test_every_variant_has_every_figure(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    keys = [v["key"] for v in results["variants"]]
    assert keys[:4] == ["baseline", "lv_s3_full", "lv_s3", "lv_bundled"]
    int8 = next(v for v in results["variants"] if v["key"] == "lv_int8")
    assert int8["available"] or "not available" in int8["reason"]
    available = [v for v in results["variants"] if v["available"]]
    meta = results["meta"]
    assert meta["quick"] and meta["cold_runs"] >= 1 and meta["warm_requests"] >= 1
    for row in results["table"]:
        for variant in available:
            cell = row["cells"][variant["key"]]
            if variant["key"] == "baseline" and row["label"].startswith(("Forward floor", "Warm overhead")):
                assert cell is None  # the floor is ONNX Runtime's: the torch app has none
                continue
            if row["label"].startswith("· with the model bundled"):
                assert (cell is None) == (variant["key"] not in ("lv_bundled", "lv_int8")), variant["key"]
                continue
            assert cell is not None, (row["label"], variant["key"])
            if row["unit"] == "%" or row["label"].startswith("· fetch") or "decode" in row["label"]:
                assert cell["value"] >= 0, (row["label"], variant["key"])
            else:
                assert cell["value"] > 0, (row["label"], variant["key"])
    for variant in available:
        cold, warm = variant["cold"], variant["warm"]
        assert cold["total"]["n"] == meta["cold_runs"]
        assert warm["large"]["total"]["n"] == warm["small"]["total"]["n"] == meta["warm_requests"]
        assert cold["total"]["median"] >= cold["first_request"]["min"]
        assert variant["package"]["zipped_mb"] < variant["package"]["unzipped_mb"]


def test_ratios_are_computed_from_the_figures_shown(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    table = compare.markdown_table(results)
    checked = 0
    for row in results["table"]:
        base = row["cells"].get("baseline")
        for key, cell in row["cells"].items():
            if key == "baseline" or cell is None:
                continue
            assert cell["shown"] == compare.shown(cell["value"], row["unit"])
            if base is None or row["unit"] == "%":
                assert cell["ratio"] is None
                continue
            assert cell["ratio"] == pytest.approx(cell["shown"] / base["shown"])
            assert f"{cell['text']} ({compare.fmt_ratio(cell['ratio'])})" in table
            checked += 1
    assert checked > 50


def test_targets_are_judged_from_the_table(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    rows = {row["label"]: row for row in results["table"]}
    assert len(results["targets"]) == 6
    for target in results["targets"]:
        row = rows[target["row"]]
        assert target["variants"], target["target"]
        for key, verdict in target["variants"].items():
            cell = row["cells"][key]
            figure = cell["ratio"] if target["kind"] == "ratio" else cell["shown"]
            assert verdict["figure"] == figure
            assert verdict["met"] == (figure <= target["limit"] + 1e-9)
