"""The local Lambda runtime: real awslambdaric processes behind the loopback Runtime API."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from lambdavision.cfn import FunctionSpec
from lambdavision.core.errors import LambdaVisionError
from lambdavision.local.env_file import apply_env_file, parse_env_document
from lambdavision.local.pool import FunctionPool, Invocation
from lambdavision.local.runtime_api import PendingEvent, RuntimeApiCore, RuntimeApiServer
from tests.fixtures.pools import Logs, PoolFactory

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"


def spec(
    name: str, *, memory_mb: int = 256, timeout_s: int = 3, environment: dict[str, str] | None = None
) -> FunctionSpec:
    return FunctionSpec(
        logical_id=f"{name.title().replace('_', '')}Function",
        handler="app.lambda_handler",
        code_dir=FUNCTIONS / name,
        runtime="python3.12",
        memory_mb=memory_mb,
        timeout_s=timeout_s,
        environment=environment or {},
    )


def answer(invocation: Invocation) -> Any:
    return json.loads(invocation.payload)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    """Poll for a state change (not a timing assertion: the bound only stops a broken test hanging)."""
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# --- the happy path ---


def test_warm_reuse_and_init_reported_only_on_the_cold_start(make_pool: PoolFactory) -> None:
    pool, logs = make_pool(spec("echo"))
    first, second = pool.invoke({"n": 1}), pool.invoke({"n": 2})
    assert first.error_type is None and second.error_type is None
    assert answer(first)["pid"] == answer(second)["pid"]
    assert (first.init_duration_ms is not None, second.init_duration_ms) == (True, None)
    reports = [line for line in logs.lines() if line.startswith("REPORT ")]
    assert reports == [first.report_line, second.report_line]
    assert "\tInit Duration: " in reports[0] and "Init Duration" not in reports[1]
    assert reports[1].startswith(f"REPORT RequestId: {second.request_id}\tDuration: ")
    assert "\tMemory Size: 256 MB\tMax Memory Used: " in reports[1]
    assert 1 <= second.max_memory_mb <= 256


def test_handler_gets_a_dict_and_lambdas_context(make_pool: PoolFactory) -> None:
    pool, _ = make_pool(spec("echo", memory_mb=512, timeout_s=7))
    event = {"body": '{"url": "x"}', "list": [1, 2.5, None], "nested": {"ok": True}}
    result = answer(pool.invoke(event))
    assert (result["event"], result["event_type"]) == (event, "dict")
    assert result["function_name"] == "EchoFunction"
    assert result["memory_limit_in_mb"] == "512"
    assert result["cwd"] == str(FUNCTIONS / "echo")
    assert 0 < result["remaining_ms"] <= 7000  # the deadline header is absolute epoch ms


def test_env_json_variables_and_shell_credentials_reach_the_function(make_pool: PoolFactory) -> None:
    env_file = parse_env_document({"EchoFunction": {"ONLY_IN_ENV_JSON": "yes", "DECLARED": "from env.json"}})
    function = apply_env_file(spec("echo", environment={"DECLARED": "from template"}), env_file)
    shell = {
        "AWS_ACCESS_KEY_ID": "AKIALOCALTEST",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "AWS_REGION": "eu-central-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_PROFILE": "local",
        "LAMBDAVISION_DEBUG": "1",
        "UNRELATED_SHELL_VARIABLE": "stays out",
    }
    pool, _ = make_pool(function, shell_env=shell)
    names = [*shell, "ONLY_IN_ENV_JSON", "DECLARED", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_VERSION"]
    seen = answer(pool.invoke({"env": names}))["env"]
    assert seen == {
        **shell,
        "UNRELATED_SHELL_VARIABLE": None,
        "ONLY_IN_ENV_JSON": "yes",
        "DECLARED": "from env.json",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }


def test_function_logs_are_prefixed_and_come_before_the_report(make_pool: PoolFactory) -> None:
    pool, logs = make_pool(spec("logs"))
    first, second = pool.invoke({"tag": "one"}), pool.invoke({"tag": "two"})
    lines = logs.lines()
    for invocation, tag, cold in ((first, "one", True), (second, "two", False)):
        rid = invocation.request_id
        mine = [line for line in lines if line.startswith(f"{rid} ")]
        expected = [f"{rid} print line for {tag}", f"{rid} stderr line for {tag}", f"{rid} no newline at the end"]
        assert [line for line in mine if "logging line" not in line] == (
            [f"{rid} loading the model", *expected] if cold else expected
        )
        assert any(line.endswith(f"\tlogging line for {tag}") for line in mine)
        report = lines.index(invocation.report_line)
        assert all(lines.index(line) < report for line in mine)


# --- what breaks an invocation ---


def test_timeout_kills_the_environment_and_the_next_call_gets_a_new_one(make_pool: PoolFactory) -> None:
    pool, _ = make_pool(spec("slow", timeout_s=1))
    first = answer(pool.invoke({"seconds": 0}))
    timed_out = pool.invoke({"seconds": 60})
    assert timed_out.error_type == "Sandbox.Timedout"
    error = answer(timed_out)
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith(f" {timed_out.request_id} Task timed out after 1.00 seconds")
    assert "\tStatus: timeout" in timed_out.report_line
    assert gone(first["pid"])
    after = pool.invoke({"seconds": 0})
    assert after.error_type is None and answer(after)["pid"] != first["pid"]


def test_handler_exception_returns_lambdas_error_and_the_environment_stays(make_pool: PoolFactory) -> None:
    pool, logs = make_pool(spec("raises"))
    failed = pool.invoke({"value": 42})
    error = answer(failed)
    assert failed.error_type == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("ModelNotReady", "cannot classify 42")
    assert any("raises/app.py" in frame and "_check" in frame for frame in error["stackTrace"])
    assert failed.init_duration_ms is not None
    again = pool.invoke({"value": 1})
    assert again.error_type == "Unhandled" and again.init_duration_ms is None  # same warm environment
    assert any(line == f"{failed.request_id} [ERROR] ModelNotReady: cannot classify 42" for line in logs.lines())


def test_import_error_is_reported_and_each_call_gets_a_fresh_environment(make_pool: PoolFactory) -> None:
    pool, _ = make_pool(spec("import_error"))
    for _ in range(2):
        failed = pool.invoke({})
        error = answer(failed)
        assert failed.error_type == "Runtime.ImportModuleError" == error["errorType"]
        assert "lambdavision_fixture_no_such_module" in error["errorMessage"]
        assert failed.init_duration_ms is not None  # a cold start each time: the broken one was replaced
        assert pool.pids == []


def test_exception_in_init_code_is_an_unhandled_error(make_pool: PoolFactory) -> None:
    function = dataclasses.replace(spec("import_error"), handler="init_raises.lambda_handler")
    pool, _ = make_pool(function)
    failed = pool.invoke({})
    assert failed.error_type == "Unhandled"
    assert answer(failed)["errorType"] == "RuntimeError"
    assert answer(failed)["errorMessage"] == "the model could not be loaded"
    assert pool.pids == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code_dir": FUNCTIONS / "no_such_folder"}, "does not exist"),
        ({"runtime": "nodejs20.x"}, "Python functions only"),
        ({"handler": "no_dot"}, "module.function"),
        ({"unavailable_reason": "its code is in S3 (s3://b/k)"}, "s3://b/k"),
    ],
)
def test_a_function_that_cannot_run_here_is_refused_at_start(change: dict[str, Any], message: str) -> None:
    pool = FunctionPool(dataclasses.replace(spec("echo"), **change), log_stream=Logs())
    try:
        with pytest.raises(LambdaVisionError, match=message):
            pool.start()
    finally:
        pool.close()


@pytest.mark.parametrize(("how", "ending"), [("exit", "exit status 3"), ("segfault", "signal: segmentation fault")])
def test_crash_is_reported_and_the_environment_replaced(make_pool: PoolFactory, how: str, ending: str) -> None:
    pool, _ = make_pool(spec("crash"))
    before = answer(pool.invoke({"how": "none"}))["pid"]
    crashed = pool.invoke({"how": how})
    assert crashed.error_type == "Runtime.ExitError"
    assert answer(crashed)["errorMessage"].endswith(f"Runtime exited with error: {ending}")
    after = pool.invoke({"how": "none"})
    assert after.error_type is None and answer(after)["pid"] != before


def test_memory_over_memory_size_is_reported_and_the_environment_replaced(make_pool: PoolFactory) -> None:
    pool, _ = make_pool(spec("memory_hog", memory_mb=128))
    hog = pool.invoke({"megabytes": 300})
    assert hog.error_type == "Runtime.OutOfMemory" == answer(hog)["errorType"]
    assert hog.max_memory_mb > 128
    assert "\tMemory Size: 128 MB\t" in hog.report_line and "\tError Type: Runtime.OutOfMemory" in hog.report_line
    small = pool.invoke({"megabytes": 0})
    assert small.error_type is None and small.init_duration_ms is not None


def test_answer_over_6_mb_is_refused_but_the_environment_stays(make_pool: PoolFactory) -> None:
    pool, _ = make_pool(spec("oversized"))
    big = pool.invoke({})
    assert big.error_type == "Function.ResponseSizeTooLarge" == answer(big)["errorType"]
    assert len(big.payload) < 1000
    small = pool.invoke({"small": True})
    assert small.error_type is None and small.init_duration_ms is None


# --- concurrency ---


def test_a_slow_invocation_does_not_block_a_second_one(make_pool: PoolFactory, tmp_path: Path) -> None:
    pool, _ = make_pool(spec("slow", timeout_s=30), concurrency=2)
    started, go = tmp_path / "started", tmp_path / "go"
    results: list[Invocation] = []
    slow = threading.Thread(target=lambda: results.append(pool.invoke({"started": str(started), "go": str(go)})))
    slow.start()
    try:
        assert wait_until(started.exists)
        second = pool.invoke({"create": str(go)})  # runs while the first is still waiting for it
    finally:
        slow.join(60)
    first = answer(results[0])
    assert first["saw_go"] is True
    assert answer(second)["pid"] != first["pid"]


def test_fifty_parallel_invocations_all_succeed_on_two_environments(make_pool: PoolFactory) -> None:
    pool, _ = make_pool(spec("echo"), concurrency=2)
    with ThreadPoolExecutor(max_workers=50) as callers:
        invocations = list(callers.map(lambda n: pool.invoke({"n": n}), range(50)))
    assert [i.error_type for i in invocations] == [None] * 50
    assert [answer(i)["event"] for i in invocations] == [{"n": n} for n in range(50)]
    assert len({i.request_id for i in invocations}) == 50
    assert 1 <= len({answer(i)["pid"] for i in invocations}) <= 2


def test_warm_start_initialises_every_environment_before_the_first_request(make_pool: PoolFactory) -> None:
    logs = Logs()
    pool = FunctionPool(spec("logs"), concurrency=2, log_stream=logs)
    try:
        pool.start(warm=True)
        assert len(pool.pids) == 2
        assert logs.lines().count("INIT loading the model") == 2
        invocation = pool.invoke({"tag": "x"})
        assert invocation.init_duration_ms is not None  # still reported on the first call
    finally:
        pool.close()


# --- no process left behind ---


def test_close_stops_every_environment(make_pool: PoolFactory) -> None:
    pool, _ = make_pool(spec("slow", timeout_s=30), concurrency=2)
    pool.start(warm=True)
    pids = pool.pids
    assert len(pids) == 2
    pool.close()
    pool.close()  # idempotent
    assert all(gone(pid) for pid in pids)
    assert not [c for c in psutil.Process().children(recursive=True) if c.pid in pids and c.is_running()]


PARENT_SCRIPT = """
import json, sys, time
from pathlib import Path
from lambdavision.core.errors import LambdaVisionError
from lambdavision.local.pool import FunctionPool
from lambdavision.cfn import FunctionSpec
spec = FunctionSpec("Slow", "app.lambda_handler", Path(sys.argv[1]), "python3.12", 256, 30, {})
pool = FunctionPool(spec, concurrency=2)
pool.start(warm=True)
print(json.dumps(pool.pids), flush=True)
time.sleep(120)
"""


def test_environments_die_when_lambdavision_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT, str(FUNCTIONS / "slow")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 2 and not any(gone(pid) for pid in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert wait_until(lambda: all(gone(pid) for pid in pids))
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


# --- the Runtime API over HTTP ---


def test_runtime_api_speaks_the_contract_awslambdaric_expects() -> None:
    core = RuntimeApiCore()
    with RuntimeApiServer(core) as server:
        host, port = server.address.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            core.submit(PendingEvent("req-1", b'{"a": 1}', 5000, "arn:aws:lambda:::function:F", "Root=1-x"))
            before_ms = int(time.time() * 1000)
            connection.request("GET", "/2018-06-01/runtime/invocation/next")
            response = connection.getresponse()
            after_ms = int(time.time() * 1000)
            assert (response.status, response.read()) == (200, b'{"a": 1}')
            assert response.getheader("Content-Type") == "application/json"
            assert response.getheader("Lambda-Runtime-Aws-Request-Id") == "req-1"
            assert response.getheader("Lambda-Runtime-Invoked-Function-Arn") == "arn:aws:lambda:::function:F"
            assert response.getheader("Lambda-Runtime-Trace-Id") == "Root=1-x"
            deadline = int(response.getheader("Lambda-Runtime-Deadline-Ms") or 0)
            assert before_ms + 5000 <= deadline <= after_ms + 5000
            for path, body in [
                ("/2018-06-01/runtime/invocation/req-1/response", b'{"ok": 1}'),
                ("/2018-06-01/runtime/invocation/unknown/error", b"{}"),
                ("/2018-06-01/runtime/init/error", b'{"errorType": "Runtime.ImportModuleError"}'),
            ]:
                connection.request("POST", path, body=body)  # same keep-alive connection
                response = connection.getresponse()
                response.read()
                assert response.status == 202
            core.submit(PendingEvent("req-2", b"{}", 5000, "arn", "trace"))
            connection.request("GET", "/2018-06-01/runtime/invocation/next")
            connection.getresponse().read()
            chunks = iter([b'{"errorMessage": "boom", ', b'"errorType": "ValueError"}'])
            connection.request(
                "POST",
                "/2018-06-01/runtime/invocation/req-2/error",
                body=chunks,
                headers={"Lambda-Runtime-Function-Error-Type": "Unhandled"},
                encode_chunked=True,
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 202
            outcome = core.outcome("req-1")
            assert outcome is not None and (outcome.kind, outcome.body) == ("response", b'{"ok": 1}')
            error = core.outcome("req-2")
            assert error is not None and (error.kind, error.error_type) == ("error", "Unhandled")
            assert error.body == b'{"errorMessage": "boom", "errorType": "ValueError"}'
            assert core.init_error is not None
            connection.request("GET", "/2018-06-01/runtime/nowhere")
            response = connection.getresponse()
            response.read()
            assert response.status == 404
        finally:
            connection.close()
