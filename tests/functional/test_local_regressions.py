"""Regressions of the local runtime and gateway found in review: each test failed before its fix.

The functions are written into tmp_path by each test, so the behaviour under test is in view.
"""

from __future__ import annotations

import http.client
import io
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from lambdavision.cfn import FunctionSpec
from lambdavision.cfn import load_app as load_template
from lambdavision.local.api_server import LocalApi
from lambdavision.local.log_forwarder import MAX_LOG_LINE_BYTES
from lambdavision.local.pool import MAX_EVENT_BYTES, FunctionPool, Invocation, RequestEntityTooLarge
from tests.fixtures.pools import Logs, PoolFactory

# Bounds that only stop a broken test from hanging; nothing asserts how fast anything is.
GIVE_UP_S = 60.0


def write_function(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(textwrap.dedent(source))
    return folder


def function_spec(code_dir: Path, *, timeout_s: int = 3, environment: dict[str, str] | None = None) -> FunctionSpec:
    return FunctionSpec(
        logical_id="RegressionFunction",
        handler="app.handler",
        code_dir=code_dir,
        runtime="python3.12",
        memory_mb=512,
        timeout_s=timeout_s,
        environment=environment or {},
    )


class SlowLogs(Logs):
    def write(self, text: str) -> int:
        time.sleep(0.0002)
        return super().write(text)


def invoke_in_thread(pool: FunctionPool, event: Any) -> Invocation | None:
    """The invocation, or None when it did not return (the bug) within the give-up bound."""
    result: list[Invocation] = []
    thread = threading.Thread(target=lambda: result.append(pool.invoke(event)), daemon=True)
    thread.start()
    thread.join(GIVE_UP_S)
    return result[0] if result else None


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll for a state change (the bound only stops a broken test hanging)."""
    give_up = time.monotonic() + GIVE_UP_S
    while time.monotonic() < give_up:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---- 1. log forwarding ----


def test_an_invocation_returns_while_a_background_thread_keeps_printing(make_pool: PoolFactory, tmp_path: Path) -> None:
    code = write_function(
        tmp_path / "flood",
        """
        import threading, time

        def _flood():
            while True:
                print("x" * 200)

        def handler(event, context):
            threading.Thread(target=_flood, daemon=True).start()
            time.sleep(0.05)
            return "answered"
        """,
    )
    # A sink slower than the function prints: the pipe never empties while the thread runs.
    pool, logs = make_pool(function_spec(code, timeout_s=3), log_stream=SlowLogs())
    invocation = invoke_in_thread(pool, {})
    assert invocation is not None, "invoke never returned: drain() chased a pipe that never empties"
    assert (invocation.error_type, json.loads(invocation.payload)) == (None, "answered")
    assert invocation.report_line in logs.lines()


def test_a_long_log_line_is_cut_at_cloudwatchs_event_size(make_pool: PoolFactory, tmp_path: Path) -> None:
    code = write_function(
        tmp_path / "long_line",
        """
        import sys

        def handler(event, context):
            sys.stdout.write("y" * 600_000 + "\\n")
            sys.stdout.flush()
            return "printed"
        """,
    )
    pool, logs = make_pool(function_spec(code))
    invocation = pool.invoke({})
    assert invocation.error_type is None
    pieces = [line.split(" ", 1)[1] for line in logs.lines() if line.startswith(f"{invocation.request_id} y")]
    assert [len(piece) for piece in pieces] == [
        MAX_LOG_LINE_BYTES,
        MAX_LOG_LINE_BYTES,
        600_000 - 2 * MAX_LOG_LINE_BYTES,
    ]
    assert set("".join(pieces)) == {"y"}


# ---- 2. a crash kills what the function started ----


def test_a_crash_also_stops_the_processes_the_function_started(make_pool: PoolFactory, tmp_path: Path) -> None:
    pid_file = tmp_path / "background.pid"
    code = write_function(
        tmp_path / "crash_with_child",
        f"""
        import os, subprocess

        def handler(event, context):
            child = subprocess.Popen(["sleep", "300"])
            with open({str(pid_file)!r}, "w") as out:
                out.write(str(child.pid))
            os._exit(3)
        """,
    )
    pool, _ = make_pool(function_spec(code))
    invocation = invoke_in_thread(pool, {})
    assert invocation is not None
    assert invocation.error_type == "Runtime.ExitError"
    assert "exit status 3" in json.loads(invocation.payload)["errorMessage"]
    background = int(pid_file.read_text())
    try:
        assert is_gone(background), "the function's background process survived the crash"
    finally:
        if not is_gone(background):
            psutil.Process(background).kill()


def test_an_environment_that_exited_between_calls_is_not_alive_and_is_replaced(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    code = write_function(
        tmp_path / "pid",
        """
        import os

        def handler(event, context):
            return os.getpid()
        """,
    )
    pool, _ = make_pool(function_spec(code))
    first = json.loads(pool.invoke({}).payload)
    psutil.Process(first).kill()
    assert wait_until(lambda: first not in pool.pids), "a dead environment still counts as alive"
    second = pool.invoke({})
    assert second.error_type is None and json.loads(second.payload) != first


# ---- 4. events over Lambda's 6 MB synchronous limit ----

LAMBDAVISION = [sys.executable, "-c", "import sys; from lambdavision.cli import main; sys.exit(main())"]


def run_lambdavision(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LAMBDAVISION, *args], cwd=cwd, capture_output=True, text=True, timeout=GIVE_UP_S, stdin=subprocess.DEVNULL
    )


def one_function_template(folder: Path, variables: str = "{}") -> Path:
    write_function(folder / "fn", "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ran'}\n")
    template = folder / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: fn/\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.12\n"
        f"      Environment: {{Variables: {variables}}}\n"
        "      Events:\n"
        "        Any:\n"
        "          Type: Api\n"
        "          Properties:\n"
        '            Path: "/{proxy+}"\n'
        "            Method: ANY\n"
    )
    return template


def test_an_event_over_6_mb_is_refused_before_any_process_starts(make_pool: PoolFactory, tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", "def handler(event, context):\n    return 'ran'\n")
    pool, logs = make_pool(function_spec(code))
    with pytest.raises(RequestEntityTooLarge, match="6291456"):
        pool.invoke({"data": "x" * MAX_EVENT_BYTES})
    assert pool.pids == [] and "START" not in logs.getvalue()
    assert json.loads(pool.invoke({"data": "x" * 1000}).payload) == "ran"


def test_local_invoke_of_an_event_over_6_mb_is_one_line_and_a_failure(tmp_path: Path) -> None:
    one_function_template(tmp_path)
    (tmp_path / "big.json").write_text(json.dumps({"data": "x" * MAX_EVENT_BYTES}))
    result = run_lambdavision("local", "invoke", "--use-venv", "-e", "big.json", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "RequestEntityTooLarge" in result.stderr


def test_start_api_answers_413_for_a_body_that_makes_the_event_over_6_mb(tmp_path: Path) -> None:
    app = load_template(one_function_template(tmp_path))
    with LocalApi(app, port=0, log_stream=io.StringIO()) as api:
        status, body = http_request(api.url, "POST", "/x", b"a" * (7 * 1024 * 1024), {"Content-Type": "text/plain"})
        assert (status, json.loads(body)) == (413, {"message": "Request Too Long"})
        assert http_request(api.url, "POST", "/x", b"a" * 1000, {"Content-Type": "text/plain"})[0] == 200


def http_request(
    url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(url).port or 0, timeout=GIVE_UP_S)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# ---- 5. variables no process environment can hold ----


@pytest.mark.parametrize(
    ("variables", "message"),
    [('{A: "x\\0y"}', "variable A has a NUL"), ('{"A=B": "1"}', "name 'A=B'")],
)
def test_a_template_variable_no_environment_can_hold_is_one_line(tmp_path: Path, variables: str, message: str) -> None:
    one_function_template(tmp_path, variables)
    result = run_lambdavision("local", "invoke", "--use-venv", cwd=tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


@pytest.mark.parametrize(("document", "message"), [({"Fn": {"A": "x\0y"}}, "NUL"), ({"Fn": {"A=B": "1"}}, "'A=B'")])
def test_an_env_file_variable_no_environment_can_hold_is_one_line(
    tmp_path: Path, document: dict[str, Any], message: str
) -> None:
    one_function_template(tmp_path)
    (tmp_path / "env.json").write_text(json.dumps(document))
    result = run_lambdavision("local", "invoke", "--use-venv", "-n", "env.json", cwd=tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


# ---- 6. API Gateway's integration timeout ----


def test_start_api_answers_504_after_the_integration_timeout_and_the_invocation_goes_on(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    one_function_template(tmp_path)
    write_function(
        tmp_path / "fn",
        f"""
        import time

        def handler(event, context):
            if event["path"] == "/slow":
                time.sleep(2)
                open({str(marker)!r}, "w").close()
            return {{"statusCode": 200, "body": "done"}}
        """,
    )
    logs = io.StringIO()
    app = load_template(tmp_path / "template.yaml")  # the function's Timeout (3 s) is longer than the gateway's
    with LocalApi(app, port=0, log_stream=logs, integration_timeout_s=1.0) as api:
        status, body = http_request(api.url, "GET", "/slow")
        assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})
        assert wait_until(marker.exists), "the invocation was cut off with the client's answer"
        assert wait_until(lambda: logs.getvalue().count("REPORT RequestId") == 1)
        assert http_request(api.url, "GET", "/fast") == (200, b"done")


# ---- 7. stopping during a --warm start ----


def environment_processes(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [child for child in children if "awslambdaric" in " ".join(child.cmdline())]


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_warm_start_stops_without_waiting_for_init(tmp_path: Path, signal_number: int) -> None:
    one_function_template(tmp_path)
    # Init far longer than the give-up bound below: waiting for it would fail the test.
    write_function(tmp_path / "fn", "import time\ntime.sleep(600)\ndef handler(event, context):\n    return 1\n")
    process = subprocess.Popen(
        [*LAMBDAVISION, "local", "start-api", "--use-venv", "--warm", "--port", "0"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    environments: list[psutil.Process] = []
    try:
        assert wait_until(lambda: len(environment_processes(process.pid)) == 2), "the environments never started"
        environments = environment_processes(process.pid)
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=30)
        assert "Stopped: every environment is shut down." in stderr
        assert all(is_gone(environment.pid) for environment in environments)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for environment in environments:
            if not is_gone(environment.pid):
                environment.kill()
