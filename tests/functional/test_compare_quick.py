"""`benchmarks/compare.py --quick` end to end: every condition (loopback, and as on Lambda at 1,024, 2,048
and 3,008 MB) and variant measured, every figure present and positive, every ratio computed from the
figures shown, and all four outputs written. Never its speed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lambdavision.bench import compare_tables as tables

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    work = tmp_path_factory.mktemp("compare")
    out = work / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compare.py"), "--quick", "--cache-dir", str(work / "cache"),
         "--out", str(out)],
        capture_output=True, text=True, timeout=420, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text()), proc.stdout


def parse_figures_table(markdown: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The main table of results.md, read as a reader would: its column labels and each row's label and
    cells, in order (labels repeat: "· fetch" under each image size)."""
    lines = markdown[markdown.index("| Figure |") :].splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append((cells[0], cells[1:]))
    return header[1:], rows


def number(text: str) -> tuple[float, float]:
    """'2,139 ms' -> (2139.0, 0.5): the figure and half its last printed digit."""
    figure = re.search(r"-?[\d,]+(?:\.\d+)?", text.replace("$", ""))
    assert figure, text
    digits = figure.group(0).replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return float(digits), 0.5 * 10**-decimals


def test_the_table_shows_the_measured_figures_and_their_ratios(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    """results.md's table parsed here, independently of compare.py's formatting, against results.json."""
    out, results, _ = quick_run
    labels, rows = parse_figures_table((out / "results.md").read_text())
    variants = [v for v in results["variants"] if v["available"]]
    assert labels == [v["label"] for v in variants]
    checked = 0
    assert [label for label, _ in rows] == [row["label"] for row in results["table"]]
    for row, (_, shown_cells) in zip(results["table"], rows, strict=True):
        cells = dict(zip([v["key"] for v in variants], shown_cells, strict=True))
        base = cells.get("baseline", "–")
        for key, text in cells.items():
            cell = row["cells"].get(key)
            if cell is None:
                assert text == "–"
                continue
            shown, half = number(text.split(" (")[0])
            assert abs(shown - cell["value"]) <= half + 1e-9, (row["label"], key, text, cell["value"])
            ratio = re.search(r"\((1/|×)([\d.]+)\)$", text)
            if key == "baseline" or base == "–" or row["unit"] == "%":
                assert ratio is None, (row["label"], key, text)
                continue
            assert ratio, (row["label"], key, text)
            base_shown, _ = number(base)
            measured = shown / base_shown
            printed = 1 / float(ratio.group(2)) if ratio.group(1) == "1/" else float(ratio.group(2))
            # The printed ratio is the shown figure over the baseline's, to the digits printed.
            if ratio.group(1) == "1/":
                assert abs(1 / measured - float(ratio.group(2))) <= 0.05 + 1e-9, (row["label"], key, text, base)
            else:
                assert abs(measured - printed) <= 0.005 + 1e-9, (row["label"], key, text, base)
            checked += 1
    assert checked > 50


def test_all_outputs_are_written(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    out, results, stdout = quick_run
    assert (out / "compare.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    table = (out / "results.md").read_text()
    section = (out / "README-section.md").read_text()
    main_table = table[table.index("| Figure |") :].split("\n\n")[0]
    assert main_table in section and main_table in stdout  # the same table in every output
    assert tables.markdown_targets(results) in section
    assert "python benchmarks/compare.py --quick" in section
    assert results["meta"]["machine"]["cpu"] in section
    assert tables.markdown_targets(results) in stdout
    assert tables.conditions_markdown(results) in stdout
    assert tables.conditions_markdown(results) in section and tables.conditions_markdown(results) in table
    assert "85–90 MB/s" in section and "tens of milliseconds" in section  # the shaping's sources


def test_every_variant_has_every_figure(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    keys = [v["key"] for v in results["variants"]]
    assert keys[:4] == ["baseline", "lv_s3_full", "lv_s3", "lv_bundled"]
    int8 = next(v for v in results["variants"] if v["key"] == "lv_int8")
    assert int8["available"], int8["reason"]  # `export --quantize int8` exists: the variant must run
    available = [v for v in results["variants"] if v["available"]]
    meta = results["meta"]
    assert meta["quick"] and meta["cold_runs"] >= 1 and meta["warm_requests"] >= 1
    for row in results["table"]:
        for variant in available:
            cell = row["cells"][variant["key"]]
            floor_rows = ("Forward floor", "Decode floor", "Warm overhead", "Warm p50 above")
            if variant["key"] == "baseline" and row["label"].startswith(floor_rows):
                assert cell is None  # the floors are ONNX Runtime's and lambdavision's decode: the torch app has none
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
    table = tables.markdown_table(results)
    checked = 0
    for row in results["table"]:
        base = row["cells"].get("baseline")
        for key, cell in row["cells"].items():
            if key == "baseline" or cell is None:
                continue
            assert cell["shown"] == tables.shown(cell["value"], row["unit"])
            if base is None or row["unit"] == "%":
                assert cell["ratio"] is None
                continue
            assert cell["ratio"] == pytest.approx(cell["shown"] / base["shown"])
            assert f"{cell['text']} ({tables.fmt_ratio(cell['ratio'])})" in table
            checked += 1
    assert checked > 50


def test_targets_are_judged_from_the_table(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    rows = {row["label"]: row for row in results["table"]}
    assert len(results["targets"]) == 7
    for target in results["targets"]:
        row = rows[target["row"]]
        assert target["variants"], target["target"]
        if target["target"].startswith("cold start from S3"):
            assert set(target["variants"]) == {"lv_s3_full", "lv_s3"}
        if target["target"].startswith("cold start bundled"):
            assert set(target["variants"]) <= {"lv_bundled", "lv_int8"} and "lv_bundled" in target["variants"]
        for key, verdict in target["variants"].items():
            cell = row["cells"][key]
            figure = cell["ratio"] if target["kind"] == "ratio" else cell["shown"]
            assert verdict["figure"] == figure
            assert verdict["met"] == (figure <= target["limit"] + 1e-9)


def test_every_condition_is_measured_with_the_guide_app_beside(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, results, _ = quick_run
    conditions = results["conditions"]
    assert [c["key"] for c in conditions] == ["loopback", "lambda-1024", "lambda-2048", "lambda-3008"]
    assert [c["primary"] for c in conditions] == [False, False, True, False]
    assert results["meta"]["memory_mb"] == 2048 and results["variants"] == conditions[2]["variants"]
    assert conditions[0]["cpu_share"] is None and conditions[0]["s3"]["bandwidth_mb_s"] is None
    for condition, share in zip(conditions[1:], ("0.58 vCPU", "1.16 vCPU", "1.70 vCPU"), strict=True):
        assert condition["s3"] == {"latency_ms": 30.0, "bandwidth_mb_s": 85.0, "aggregate_mb_s": None}
        # Held to the share where cgroups are writable (as here), else said so.
        assert condition["cpu_share"] in (share, "unlimited (cgroups not writable)")
        assert share.split()[0] in condition["label"] or "unlimited" in condition["label"]
    for condition in conditions:
        keys = [v["key"] for v in condition["variants"] if v["available"]]
        assert {"baseline", "lv_s3", "lv_bundled"} <= set(keys)
        for variant in condition["variants"]:
            if not variant["available"]:
                continue
            assert variant["cold"]["total"]["median"] > 0 and variant["peak_memory_mb"] > 0
            assert variant["warm"]["large"]["total"]["median"] > 0 and variant["warm"]["small"]["total"]["median"] > 0
            if variant["key"] != "baseline":
                assert variant["floor"]["median"] > 0 and variant["decode_floor"]["median"] > 0
        check = condition["threads_check"]
        assert check["threads"] in (1, 2) and check["other_threads"] == 3 - check["threads"]
        assert check["floor_ms"] > 0 and check["other_floor_ms"] > 0
    assert tables.threads_markdown(results).count("\n") == 1 + len(conditions)
    table = tables.conditions_markdown(results)
    assert table.count("| guide app (torch, S3) |") == 4
    assert "Lambda-shaped: 1,024 MB" in table and "loopback: 3,008 MB" in table
