"""`lambdavision logs -n PyTorchFunction --stack-name S` against a real moto server.

moto cannot run the function, so the test writes the events into the function's log group itself,
as Lambda would. moto honours bare words and "quoted phrases" in filter patterns (other pattern
forms silently match everything there), so the filters tested are those.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import numpy as np
import pytest

from lambdavision.aws.log_records import LogEvent, ReadableLog, summarise_metrics
from lambdavision.aws.logs import parse_time
from lambdavision.core.errors import BadRequest
from lambdavision.core.event_builders import build_rest_v1_event
from lambdavision.runtime.app import App
from lambdavision.runtime.fetch import FetchPolicy
from lambdavision.runtime.loader import load_classifier
from tests.fixtures.colour import colour_image
from tests.functional.test_deploy import GUIDE_DEPLOY, STACK, make_packaged_app

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))
STREAM = "2026/01/01/[$LATEST]0123456789abcdef"


def logs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LAMBDAVISION, "logs", "-n", "PyTorchFunction", "--stack-name", STACK, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def log_group(tmp_path: Path, aws_env: dict[str, str]) -> str:
    make_packaged_app(tmp_path)
    deployed = subprocess.run(
        [LAMBDAVISION, *GUIDE_DEPLOY], cwd=tmp_path, env=aws_env, capture_output=True, text=True, timeout=120
    )
    assert deployed.returncode == 0, deployed.stderr
    resource = boto3.client("cloudformation").describe_stack_resource(
        StackName=STACK, LogicalResourceId="PyTorchFunction"
    )
    group = f"/aws/lambda/{resource['StackResourceDetail']['PhysicalResourceId']}"
    boto3.client("logs").create_log_stream(logGroupName=group, logStreamName=STREAM)
    return group


def put(group: str, *messages: str, at: datetime | None = None) -> None:
    when = at or datetime.now(UTC)
    events = [
        {"timestamp": int((when + timedelta(milliseconds=i)).timestamp() * 1000), "message": m}
        for i, m in enumerate(messages)
    ]
    boto3.client("logs").put_log_events(logGroupName=group, logStreamName=STREAM, logEvents=events)


def messages(output: str) -> list[str]:
    """The message part of `stream time message` lines."""
    return [line.split(" ", 2)[2] for line in output.splitlines()]


def test_logs_resolves_the_function_and_prints_its_events(log_group: str, aws_env: dict[str, str]) -> None:
    put(log_group, "START RequestId: 1", "[INFO] classified dog 0.98", "END RequestId: 1")
    result = logs(env=aws_env)
    assert result.returncode == 0, result.stderr
    assert messages(result.stdout) == ["START RequestId: 1", "[INFO] classified dog 0.98", "END RequestId: 1"]
    stream, stamp, _ = result.stdout.splitlines()[0].split(" ", 2)
    assert stream == STREAM
    assert datetime.fromisoformat(stamp) > datetime.now(UTC) - timedelta(minutes=5)


def test_filter_with_a_bare_word_and_a_quoted_phrase(log_group: str, aws_env: dict[str, str]) -> None:
    put(log_group, "[INFO] classified dog 0.98", "[ERROR] Task timed out after 29.00 seconds", "[INFO] dog again")
    word = logs("--filter", "ERROR", env=aws_env)
    assert word.returncode == 0, word.stderr
    assert messages(word.stdout) == ["[ERROR] Task timed out after 29.00 seconds"]
    phrase = logs("--filter", '"classified dog"', env=aws_env)
    assert messages(phrase.stdout) == ["[INFO] classified dog 0.98"]


def test_start_and_end_times(log_group: str, aws_env: dict[str, str]) -> None:
    now = datetime.now(UTC)
    put(log_group, "three hours ago", at=now - timedelta(hours=3))
    put(log_group, "ninety minutes ago", at=now - timedelta(minutes=90))
    put(log_group, "just now", at=now)
    assert messages(logs(env=aws_env).stdout) == ["just now"]  # default start: 10m ago
    assert messages(logs("--start-time", "2h ago", env=aws_env).stdout) == ["ninety minutes ago", "just now"]
    window = logs("--start-time", (now - timedelta(hours=4)).isoformat(), "--end-time", "1 hour ago", env=aws_env)
    assert window.returncode == 0, window.stderr
    assert messages(window.stdout) == ["three hours ago", "ninety minutes ago"]


@pytest.fixture
def tail_process(log_group: str, aws_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [LAMBDAVISION, "logs", "-n", "PyTorchFunction", "--stack-name", STACK, "--tail",
         "--poll-interval", "0.2", "--tail-for", "90"],
        env=aws_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def read_until(process: subprocess.Popen[str], wanted: str) -> list[str]:
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # ends when the process exits (--tail-for bounds it)
        lines.append(line.rstrip("\n"))
        if line.rstrip("\n").endswith(wanted):
            return lines
    raise AssertionError(f"{wanted!r} never printed; got {lines}")


def test_tail_prints_each_new_event_once_until_ctrl_c(
    log_group: str, aws_env: dict[str, str], tail_process: subprocess.Popen[str]
) -> None:
    put(log_group, "before the tail")
    seen = read_until(tail_process, "before the tail")
    put(log_group, "first new event")
    seen += read_until(tail_process, "first new event")
    # Several polls later, a second event: the first must not have come again meanwhile.
    time.sleep(1.0)
    put(log_group, "second new event")
    seen += read_until(tail_process, "second new event")
    assert messages("\n".join(seen)) == ["before the tail", "first new event", "second new event"]

    tail_process.send_signal(signal.SIGINT)
    out, err = tail_process.communicate(timeout=30)
    assert tail_process.returncode == 0, err
    assert "Traceback" not in err
    assert out == ""


def test_tail_and_end_time_do_not_mix(aws_env: dict[str, str]) -> None:
    result = logs("--tail", "--end-time", "5m ago", env=aws_env)
    assert result.returncode == 2
    assert "--end-time cannot be combined with --tail" in result.stderr


def test_unknown_logical_id_and_missing_stack_are_one_line(log_group: str, aws_env: dict[str, str]) -> None:
    wrong = subprocess.run(
        [LAMBDAVISION, "logs", "-n", "NoSuchFunction", "--stack-name", STACK],
        env=aws_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrong.returncode == 1
    (line,) = wrong.stderr.strip().splitlines()
    assert "no resource 'NoSuchFunction'" in line and "logical id" in line

    not_a_function = subprocess.run(
        [LAMBDAVISION, "logs", "-n", "RestApi", "--stack-name", STACK],
        env=aws_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    (line,) = not_a_function.stderr.strip().splitlines()
    assert "not a Lambda function" in line

    missing = subprocess.run(
        [LAMBDAVISION, "logs", "-n", "PyTorchFunction", "--stack-name", "nope"],
        env=aws_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1
    (line,) = missing.stderr.strip().splitlines()
    assert "stack 'nope' does not exist" in line


def test_a_bad_time_is_one_line(aws_env: dict[str, str]) -> None:
    result = logs("--start-time", "yesterday-ish", env=aws_env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "'10m ago'" in line and "ISO 8601" in line


# --- the handler's JSON log lines and EMF records ------------------------------------------------


def _event(method: str, path: str, body: bytes = b"", content_type: str = "application/json") -> dict[str, Any]:
    return build_rest_v1_event(
        method=method,
        path=path,
        resource=path,
        path_parameters=None,
        query=[],
        headers=[("Content-Type", content_type)],
        body=body,
        binary=content_type.startswith("image/"),
    )


def handler_output(colour_artifact: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """What two execution environments of the real handler print for a few real requests, framed by
    the runtime's START/END/REPORT lines as in CloudWatch; and the requests' EMF records."""
    lines: list[str] = []
    classifier = load_classifier(colour_artifact)
    requests = [
        ("env1-red", _event("POST", "/invocations", colour_image("red", (120, 90)), "image/jpeg")),
        ("env1-bad-json", _event("POST", "/invocations", b"{")),
        ("env1-page", _event("GET", "/")),
        ("env1-green", _event("POST", "/invocations", colour_image("green"), "image/jpeg")),
        ("env1-text", _event("POST", "/invocations", b"plain words", "text/plain")),
    ]
    for level, batch in ((20, requests), (30, [("env2-blue", requests[0][1])])):
        out = io.StringIO()
        # LOG_LEVEL=WARNING in the second environment: its successes print only the EMF record.
        app = App(classifier, FetchPolicy(), function_name="PyTorchFunction", out=out, log_level=level)
        if batch is not requests:
            batch = [("env2-blue", _event("POST", "/invocations", colour_image("blue"), "image/jpeg"))]
        for request_id, event in batch:
            lines.append(f"START RequestId: {request_id} Version: $LATEST")
            app(event, SimpleNamespace(aws_request_id=request_id))
            lines += out.getvalue().splitlines()
            out.seek(0)
            out.truncate()
            lines += [f"END RequestId: {request_id}", f"REPORT RequestId: {request_id}\tDuration: 5.00 ms"]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return lines, [r for r in records if "_aws" in r]


def test_logs_show_one_readable_line_per_request_and_metrics_summarise_them(
    log_group: str, aws_env: dict[str, str], colour_artifact: Path
) -> None:
    lines, emf = handler_output(colour_artifact)
    put(log_group, *lines)

    shown = logs(env=aws_env)
    assert shown.returncode == 0, shown.stderr
    by_id: dict[str, list[str]] = {}
    for message in messages(shown.stdout):
        if message.split(" ", 1)[0].startswith("env"):
            by_id.setdefault(message.split(" ", 1)[0], []).append(message)
    # One line per request (its EMF record adds nothing), each `id status what N.N ms [cold]`.
    assert sorted(by_id) == sorted(r["request_id"] for r in emf)
    assert all(len(found) == 1 for found in by_id.values())
    line = {request_id: found[0].split(" ") for request_id, found in by_id.items()}
    assert line["env1-red"][1:3] == ["200", "red"] and line["env1-red"][3].endswith("%")
    assert float(line["env1-red"][3].rstrip("%")) > 90
    assert line["env1-red"][-1] == "cold" and line["env1-green"][-1] == "ms"
    assert line["env1-bad-json"][1:3] == ["400", "BadRequest:"]
    assert line["env1-page"][1:3] == ["200", "page"]
    assert line["env1-text"][1].startswith("4") and line["env1-text"][2].endswith(":")  # the error's type
    assert line["env2-blue"][1:3] == ["200", "-"] and line["env2-blue"][-1] == "cold"  # from its EMF record
    for request_id, words in line.items():
        record = next(r for r in emf if r["request_id"] == request_id)
        ms_at = words.index("ms")
        assert float(words[ms_at - 1]) == pytest.approx(record["Latency"], abs=0.051)
    assert "START RequestId: env1-red Version: $LATEST" in messages(shown.stdout)

    raw = logs("--raw", env=aws_env)
    assert messages(raw.stdout) == lines

    metrics = logs("--metrics", env=aws_env)
    assert metrics.returncode == 0, metrics.stderr
    rows = {line[:14].strip(): line[15:].split() for line in metrics.stdout.splitlines()}
    statuses = [r["status"] for r in emf]
    assert int(rows["requests"][0]) == len(emf) == 6
    assert int(rows["errors"][0]) == sum(s >= 500 for s in statuses)
    assert int(rows["client errors"][0]) == sum(400 <= s < 500 for s in statuses) == 2
    assert int(rows["cold starts"][0]) == 2
    latencies = np.array([r["Latency"] for r in emf])
    for q in (50, 95, 99):
        expected = float(np.percentile(latencies, q, method="inverted_cdf"))
        assert rows[f"latency p{q}"] == [f"{expected:.1f}", "ms"]
    assert rows["latency max"] == [f"{latencies.max():.1f}", "ms"]

    nothing = logs("--metrics", "--start-time", "3h ago", "--end-time", "2h ago", env=aws_env)
    assert nothing.returncode == 0
    assert nothing.stdout.startswith("requests       0")
    mixed = logs("--metrics", "--tail", env=aws_env)
    assert mixed.returncode == 2 and "--metrics summarises a time window" in mixed.stderr


def test_readable_lines_and_metrics_from_odd_records() -> None:
    """Lines that are not the handler's (other JSON, broken JSON, EMF without fields) never break either view."""
    stamp = int(datetime(2026, 1, 2, tzinfo=UTC).timestamp() * 1000)
    texts = [
        '{"level":"INFO","message":"model loaded","source":"s3://b/k","init_ms":812.5}',
        "{not json",
        "[1, 2]",
        '{"_aws":{"CloudWatchMetrics":[]},"request_id":"r1"}',
        '{"message":"request","request_id":"r2","status":502,"error_type":"UpstreamError","error":"' + "x" * 300 + '"}',
    ]
    events = [LogEvent(str(i), stamp, "s", text) for i, text in enumerate(texts)]
    readable = ReadableLog()
    shown = [readable.format(e) for e in events]
    assert shown[0] == "s 2026-01-02T00:00:00.000Z INFO model loaded source=s3://b/k init_ms=812.5"
    assert shown[1] == "s 2026-01-02T00:00:00.000Z {not json"
    assert shown[2] == "s 2026-01-02T00:00:00.000Z [1, 2]"
    assert shown[3] == "s 2026-01-02T00:00:00.000Z r1 - - ? ms"
    assert shown[4] is not None and shown[4].startswith("s 2026-01-02T00:00:00.000Z r2 502 UpstreamError: xxx")
    assert len(shown[4]) < 250
    summary = summarise_metrics(events)
    assert (summary.requests, summary.errors, summary.cold_starts, summary.latencies_ms) == (1, 0, 0, ())
    assert summary.percentile(50) is None
    assert any(line.startswith("latency p50    ? ms") for line in summary.lines())


# --- time parsing (pure) ------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("10m ago", NOW - timedelta(minutes=10)),
        ("10 minutes ago", NOW - timedelta(minutes=10)),
        ("2h ago", NOW - timedelta(hours=2)),
        ("1 day ago", NOW - timedelta(days=1)),
        ("3w ago", NOW - timedelta(weeks=3)),
        ("45s ago", NOW - timedelta(seconds=45)),
        ("2026-02-28T10:00:00Z", datetime(2026, 2, 28, 10, tzinfo=UTC)),
        ("2026-02-28T10:00:00+02:00", datetime(2026, 2, 28, 8, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


def test_parse_time_without_a_zone_is_local_time() -> None:
    assert parse_time("2026-02-28T10:00:00", now=NOW) == datetime(2026, 2, 28, 10).astimezone()


@pytest.mark.parametrize("text", ["", "ago", "10 parsecs ago", "tomorrow", "2026-13-01"])
def test_parse_time_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_time(text, now=NOW)


def test_event_format_is_stream_time_message() -> None:
    event = LogEvent("1", int(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC).timestamp() * 1000), "s", "hi\n")
    assert event.format() == "s 2026-01-02T03:04:05.678Z hi"
