"""`lambdavision bench` on a real tiny ONNX model in the local runtime: the shape and sanity of what it
reports (never its speed), and one clear line for every input it cannot use."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from lambdavision.bench import Stats, parse_load_line, parse_server_timing
from lambdavision.cli import bench as bench_cli
from lambdavision.cli.common import LambdaVisionGroup
from lambdavision.core.artifact import write_artifact
from lambdavision.pricing import cost_per_million, load_prices
from tests.fixtures.colour import COLOUR_PREP, COLOURS

STATS_KEYS = ("cold_start_ms", "cold_init_ms", "cold_first_request_ms", "model_load_ms", "warm_ms")
SPLIT_KEYS = ("warm_fetch_ms", "warm_decode_ms", "warm_inference_ms")


@pytest.fixture(scope="module")
def cli() -> click.Group:
    group = LambdaVisionGroup("lambdavision")
    bench_cli.register(group)
    return group


@pytest.fixture
def red_jpeg(tmp_path: Path, make_colour_image: Callable[..., bytes]) -> Path:
    path = tmp_path / "red.jpg"
    path.write_bytes(make_colour_image("red", (640, 480)))
    return path


def run(cli: click.Group, *args: str) -> Any:
    return CliRunner().invoke(cli, ["bench", *args], catch_exceptions=False)


def check_stats(stats: dict[str, float], n: int, *, positive: bool = True) -> None:
    assert stats["n"] == n
    assert stats["min"] <= stats["p25"] <= stats["median"] <= stats["p75"] <= stats["p95"] <= stats["max"]
    assert stats["min"] > 0 if positive else stats["min"] >= 0


def test_json_has_every_figure_for_each_memory_size(cli: click.Group, colour_artifact: Path, red_jpeg: Path) -> None:
    result = run(
        cli, "--model", str(colour_artifact), "--image", str(red_jpeg), "--memory", "512", "1024",
        "--cold-runs", "2", "--warm", "3", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["image_size"] == [640, 480]
    assert report["architecture"] == "x86_64"
    assert report["machine"]["cpu"] and report["machine"]["logical_cores"] >= 1
    assert "approximate" in report["caveat"] and report["machine"]["cpu"] in report["caveat"]
    prices = load_prices()
    assert report["prices"]["usd_per_gb_second"] == prices.gb_second["x86_64"]
    assert report["prices"]["read_on"] == prices.lambda_read_on
    assert [r["memory_mb"] for r in report["results"]] == [512, 1024]
    for row in report["results"]:
        assert row["error"] is None
        assert row["threads"] >= 1
        for key in STATS_KEYS:
            check_stats(row[key], 2 if key.startswith(("cold", "model")) else 3)
        for key in SPLIT_KEYS:
            check_stats(row[key], 3, positive=False)
        assert 0 < row["peak_memory_mb"] < row["memory_mb"]
        # Cold start is init + the first request, sample by sample.
        assert row["cold_start_ms"]["min"] >= row["cold_first_request_ms"]["min"]
        assert row["cold_start_ms"]["max"] >= row["cold_init_ms"]["max"]
        # The dollars follow from the figures shown.
        warm = cost_per_million(
            prices, memory_mb=row["memory_mb"], architecture="x86_64", warm_ms=row["warm_ms"]["median"]
        )
        cold = cost_per_million(
            prices,
            memory_mb=row["memory_mb"],
            architecture="x86_64",
            warm_ms=row["warm_ms"]["median"],
            cold_init_ms=row["cold_init_ms"]["median"],
            cold_request_ms=row["cold_first_request_ms"]["median"],
            cold_fraction=report["cold_fraction"],
        )
        assert row["usd_per_million_warm"] == pytest.approx(warm.to_dict())
        assert row["usd_per_million_with_cold"] == pytest.approx(cold.to_dict())
        assert row["usd_per_million_with_cold"]["total"] > row["usd_per_million_warm"]["total"] > 0


def test_table_and_chart_for_arm64(cli: click.Group, colour_artifact: Path, red_jpeg: Path, tmp_path: Path) -> None:
    chart = tmp_path / "bench.png"
    result = run(
        cli, "--model", str(colour_artifact), "--image", str(red_jpeg), "--memory", "1024,2048",
        "--arch", "arm64", "--cold-runs", "1", "--warm", "2", "--plot", str(chart),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1024 MB" in result.output and "2048 MB" in result.output
    assert "arm64 $0.0000133334 per GB-second" in result.output
    assert "approximate" in result.output and "not on AWS" in result.output
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_s3_and_bundled_under_lambda_s_cpu_share_and_shaped_s3(
    cli: click.Group, colour_artifact: Path, red_jpeg: Path
) -> None:
    result = run(
        cli, "--model", str(colour_artifact), "--image", str(red_jpeg), "--memory", "1024", "--source", "bundled",
        "--source", "s3", "--cpu-share", "--s3-latency", "40", "--s3-bandwidth", "50", "--s3-aggregate", "200",
        "--cold-runs", "1", "--warm", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(r["source"], r["memory_mb"], r["error"]) for r in report["results"]] == [
        ("bundled", 1024, None),
        ("s3", 1024, None),
    ]
    held = all(r["cpu_share"] == "0.58 vCPU" for r in report["results"])
    assert held or all(r["cpu_share"] == "unlimited (cgroups not writable)" for r in report["results"])
    assert ("held to that share by a cgroup CPU quota" in report["caveat"]) == held
    assert report["emulation"]["s3"] == {"latency_ms": 40.0, "bandwidth_mb_s": 50.0, "aggregate_mb_s": 200.0}
    assert report["emulation"]["sources"] == ["bundled", "s3"]
    # The model came through the shaped S3: the cold start (process start -> first answer, which
    # needs the model's bytes) took at least the first-byte latency asked for. (Not the model load
    # alone: the download starts at the handler's import, before the load's clock does.)
    assert report["results"][1]["cold_start_ms"]["min"] >= 40


def test_no_cpu_share_and_loopback_s3_are_said(cli: click.Group, colour_artifact: Path, red_jpeg: Path) -> None:
    args = ["--model", str(colour_artifact), "--image", str(red_jpeg), "--memory", "2048", "--source", "s3"]
    args += ["--no-cpu-share", "--s3-loopback", "--cold-runs", "1", "--warm", "1"]
    table = run(cli, *args)
    assert table.exit_code == 0, table.output
    text = " ".join(table.output.split())  # the table wraps long sentences
    assert "S3: moto behind the shaped stand-in, loopback (no shaping)." in text
    assert "while here every process may use whole cores" in text
    report = json.loads(run(cli, *args, "--json").output)
    assert [r["cpu_share"] for r in report["results"]] == ["unlimited (--no-cpu-share)"]
    assert report["emulation"]["s3"] == {"latency_ms": 0.0, "bandwidth_mb_s": None, "aggregate_mb_s": None}


def broken_at_inference_artifact(path: Path) -> Path:
    """Loads fine, fails on every request: the weights fit 8x8 inputs, the preprocessing gives 32x32
    (the input's height and width are left symbolic, so the load-time shape check cannot see it)."""
    weight = numpy_helper.from_array(np.ones((192, 3), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"]), helper.make_node("MatMul", ["flat", "W"], ["logits"])],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    write_artifact(
        path, classes=list(COLOURS), preprocessing=COLOUR_PREP, onnx=model.SerializeToString(), torchscript=None
    )
    return path


def test_a_function_that_fails_is_reported_not_crashed(cli: click.Group, red_jpeg: Path, tmp_path: Path) -> None:
    model = broken_at_inference_artifact(tmp_path / "broken.tar.gz")
    result = run(
        cli, "--model", str(model), "--image", str(red_jpeg), "--memory", "512", "--cold-runs", "1", "--warm", "1"
    )
    assert result.exit_code == 1
    assert "failed" in result.output
    assert "Error: no memory size could be measured" in result.output
    assert "HTTP 500" in result.output


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (["--memory", "64"], "outside Lambda's 128..10240 MB", 2),
        (["--memory", "lots"], "not a whole number", 2),
        (["--cold-runs", "0"], "--cold-runs", 2),
        (["--arch", "sparc"], "--arch", 2),
        (["1024"], "unexpected argument", 2),
        (["--source", "ftp"], "--source", 2),
        (["--s3-bandwidth", "0"], "--s3-bandwidth", 2),
        (["--s3-latency", "-5"], "--s3-latency", 2),
    ],
)
def test_bad_options_are_usage_errors(
    cli: click.Group, colour_artifact: Path, red_jpeg: Path, args: list[str], needle: str, code: int
) -> None:
    result = run(cli, "--model", str(colour_artifact), "--image", str(red_jpeg), *args)
    assert result.exit_code == code
    assert needle in result.output


def test_unusable_inputs_are_one_line_errors(
    cli: click.Group, colour_artifact: Path, red_jpeg: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    result = run(cli, "--model", str(colour_artifact), "--image", str(text))
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "is not an image" in result.output

    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x00" * 100)
    result = run(cli, "--model", str(junk), "--image", str(red_jpeg))
    assert result.exit_code == 1
    assert result.output.startswith("Error:") and result.output.strip().count("\n") == 0

    result = run(cli, "--model", str(tmp_path / "missing.tar.gz"), "--image", str(red_jpeg))
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_server_timing_and_load_lines_are_parsed() -> None:
    assert parse_server_timing('fetch;dur=1.5, decode;dur=20, inference;desc="x";dur=3.25') == {
        "fetch": 1.5,
        "decode": 20.0,
        "inference": 3.25,
    }
    assert parse_server_timing("") == {}
    json_line = 'INIT {"level":"INFO","message":"model loaded","source":"s3://b/k","init_ms":812.5,"fetch_ms":300}'
    assert parse_load_line(json_line) == (812.5, {"fetch": 300.0})
    text_line = "abc model loaded from s3://b/k in 4101 ms (fetch 900 ms, load 3201 ms)"
    assert parse_load_line(text_line) == (4101.0, {"fetch": 900.0, "load": 3201.0})
    assert parse_load_line("nothing here") == (None, {})


def test_stats_summarise_median_and_spread() -> None:
    stats = Stats.of([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (stats.n, stats.median, stats.minimum, stats.maximum) == (5, 3.0, 1.0, 5.0)
    assert stats.p25 == 2.0 and stats.p75 == 4.0 and 4.0 < stats.p95 <= 5.0
