"""`lambdavision local start-api` as a subprocess, driven with real HTTP on loopback.

The app is tests/functions/gateway_app: a plain-CloudFormation template whose echo handler
answers with the event fields it received (or, with `?action=`, sleeps, raises, answers
malformed or oversized, or sends an upload back). Environments are real awslambdaric processes.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psutil
import pytest

APP = Path(__file__).resolve().parents[1] / "functions" / "gateway_app"
LAMBDAVISION = Path(sys.executable).with_name("lambdavision")
READY_PATTERN = re.compile(r"Running on (http://[^/\s]+)/")
STARTUP_DEADLINE_S = 60.0


@dataclass
class Server:
    """A running `start-api` subprocess and everything it printed on stderr."""

    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, pattern: str, seconds: float = 30.0) -> str:
        """The output once `pattern` is in it: the access line is written after the answer is sent,
        by the server's thread, and read by another (a bounded wait, not a speed check)."""
        deadline = time.monotonic() + seconds
        while not re.search(pattern, self.output()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.output()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def post_json(self, path: str, payload: Any) -> tuple[int, Any]:
        status, _, body = self.request("POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        return status, json.loads(body)


def _drain(server: Server) -> None:
    assert server.process.stderr is not None
    for line in server.process.stderr:
        server.lines.append(line)
        match = READY_PATTERN.search(line)
        if match and not server.ready.is_set():
            server.url = match.group(1)
            server.ready.set()
    server.ready.set()  # the process ended: stop waiting


def start_server(*extra: str) -> Server:
    command = [
        str(LAMBDAVISION),
        "local",
        "start-api",
        "--use-venv",
        "-t",
        str(APP / "template.yaml"),
        "-n",
        str(APP / "env.json"),
        "--port",
        "0",
        "--parameter-overrides",
        "Greeting=hi",
        *extra,
    ]
    process = subprocess.Popen(
        command, cwd=APP, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    server = Server(process)
    threading.Thread(target=_drain, args=(server,), daemon=True).start()
    if not server.ready.wait(STARTUP_DEADLINE_S) or not server.url:
        stop_server(server)
        raise AssertionError(f"start-api did not start:\n{server.output()}")
    return server


def stop_server(server: Server) -> None:
    """SIGTERM, then SIGKILL the process tree if it ignored that (a test failure, not a hang)."""
    if server.process.poll() is not None:
        return
    try:
        tree = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    for child in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server("--concurrency", "2", "--warm", "--client-timeout", "3")
    try:
        yield running
    finally:
        stop_server(running)


# ---- the event and the answer ----


def test_mounted_routes_are_printed_like_sam(server: Server) -> None:
    output = server.output()
    assert f"Mounting EchoFunction at {server.url}/invocations [POST]" in output
    assert f"Mounting EchoFunction at {server.url}/items/{{id}} [GET]" in output
    assert f"Mounting SleepyFunction at {server.url}/sleepy [POST]" in output


def test_post_reaches_the_function_as_a_rest_proxy_event(server: Server) -> None:
    status, headers, body = server.request(
        "POST",
        "/invocations?tag=a&tag=b&top=3",
        b'{"url": "http://127.0.0.1/cat.jpg"}',
        {"Content-Type": "application/json", "X-Test": "yes"},
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert event["httpMethod"] == "POST"
    assert event["path"] == "/invocations"
    assert event["resource"] == "/invocations"
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] == {"tag": "b", "top": "3"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "top": ["3"]}
    assert event["headers"]["X-Test"] == "yes"
    assert event["multiValueHeaders"]["X-Test"] == ["yes"]
    assert event["body"] == '{"url": "http://127.0.0.1/cat.jpg"}'
    assert event["isBase64Encoded"] is False
    assert event["stage"] == "Prod"
    assert event["sourceIp"] == "127.0.0.1"
    # Response headers name both request ids, as API Gateway and Lambda number them.
    assert headers["x-amzn-RequestId"] == event["requestId"]
    assert headers["Lambda-Runtime-Aws-Request-Id"] == event["lambdaRequestId"]
    # The parameter override and env.json (even a variable the template lacks) reach the function.
    assert event["greeting"] == "hi"
    assert event["fromEnvFile"] == "from-env-json"
    # One SAM-style log line per request.
    access = r'127\.0\.0\.1 - - \[[^]]+\] "POST /invocations\?tag=a&tag=b&top=3 HTTP/1\.1" 200 -'
    assert re.search(access, server.wait_for_output(access))


def test_path_parameters_and_greedy_paths(server: Server) -> None:
    status, item = server.post_json("/echo/a/b%20c", {})
    assert status == 200
    assert item["resource"] == "/echo/{proxy+}"
    assert item["pathParameters"] == {"proxy": "a/b c"}
    status, _, body = server.request("GET", "/items/42")
    assert status == 200
    assert json.loads(body)["pathParameters"] == {"id": "42"}


def test_a_binary_upload_arrives_intact_and_comes_back_intact(server: Server) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 400 + b"\xff\xd9"
    # API Gateway decodes a base64 answer only for a client whose first Accept type is binary.
    status, headers, body = server.request(
        "POST", "/invocations?action=binary", jpeg, {"Content-Type": "image/jpeg", "Accept": "image/jpeg"}
    )
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert body == jpeg


def test_a_base64_answer_stays_base64_text_for_a_client_that_does_not_accept_binary(server: Server) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"
    for accept in ("application/json", "*/*", "text/html, image/jpeg"):
        status, _, body = server.request(
            "POST", "/invocations?action=binary", jpeg, {"Content-Type": "image/jpeg", "Accept": accept}
        )
        assert (status, base64.b64decode(body, validate=True)) == (200, jpeg)


def test_a_json_upload_is_not_base64_encoded(server: Server) -> None:
    status, event = server.post_json("/invocations", {"image": "x"})
    assert status == 200
    assert event["isBase64Encoded"] is False


def test_multi_value_headers_of_the_answer_are_all_sent(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", "/invocations?action=cookies", body=b"")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    finally:
        connection.close()


# ---- what API Gateway answers itself ----


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/nowhere"), ("GET", "/invocations"), ("GET", "/"), ("DELETE", "/items/1")]
)
def test_an_unknown_route_is_403(server: Server, method: str, path: str) -> None:
    status, _headers, body = server.request(method, path)
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize(
    "path",
    [
        "/invocations?action=raise",
        "/invocations?action=malformed",
        "/invocations?action=huge",
        "/sleepy?action=sleep&seconds=30",  # SleepyFunction's Timeout is 1 s
    ],
)
def test_a_failed_function_is_502_and_the_server_keeps_serving(server: Server, path: str) -> None:
    status, _, body = server.request("POST", path, b"{}", {"Content-Type": "application/json"})
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert server.post_json("/invocations", {})[0] == 200


def test_the_integration_timeout_is_29_s_unless_the_flag_says_otherwise(server: Server) -> None:
    # The module's server runs without --integration-timeout: API Gateway REST's 29 s.
    assert "Integration timeout 29 s: a request still running then gets API Gateway's 504" in server.output()
    quick = start_server("--concurrency", "1", "--integration-timeout", "1")
    try:
        assert "Integration timeout 1 s:" in quick.output()
        status, _, body = quick.request("POST", "/invocations?action=sleep&seconds=8", b"{}")
        assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})
    finally:
        stop_server(quick)


def test_a_body_over_10_mb_is_413(server: Server) -> None:
    status, _, body = server.request(
        "POST", "/invocations", b"x" * (10 * 1024 * 1024 + 1), {"Content-Type": "application/json"}
    )
    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}


def raw_exchange(server: Server, data: bytes) -> bytes:
    """Send raw bytes; everything the server answers until it closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    "raw",
    [
        b"THIS IS NOT HTTP\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_a_malformed_request_is_400_and_the_server_keeps_serving(server: Server, raw: bytes) -> None:
    answer = raw_exchange(server, raw)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400"
    assert server.post_json("/invocations", {})[0] == 200


def test_a_chunked_request_body_is_read(server: Server) -> None:
    payload = b'{"chunked": true}'
    raw = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    )
    head, _, body = raw_exchange(server, raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["body"] == payload.decode()


def test_keep_alive_serves_several_requests_on_one_connection(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        sockets = set()
        for index in range(3):
            connection.request("POST", f"/invocations?i={index}", body=b"{}")
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["queryStringParameters"] == {"i": str(index)}
            sockets.add(id(connection.sock))
        assert len(sockets) == 1
    finally:
        connection.close()


# ---- concurrency ----


def test_with_two_environments_a_slow_request_does_not_block_a_second(server: Server, tmp_path: Path) -> None:
    # Each request waits in its environment until the other has arrived: they can only both say
    # "met" if they ran at the same time, in two processes (no reliance on sleeps overlapping).
    path = f"/invocations?action=meet&n=2&wait=15&dir={quote(str(tmp_path))}"
    with ThreadPoolExecutor(max_workers=2) as executor:
        futures = [executor.submit(server.post_json, path, {}) for _ in range(2)]
        results = [future.result() for future in futures]
    assert [status for status, _ in results] == [200, 200]
    assert [answer["met"] for _, answer in results] == [True, True]
    assert results[0][1]["pid"] != results[1][1]["pid"]


def test_fifty_parallel_requests_all_succeed(server: Server) -> None:
    def one(index: int) -> tuple[int, Any]:
        return server.post_json(f"/invocations?i={index}", {"i": index})

    with ThreadPoolExecutor(max_workers=50) as executor:
        results = list(executor.map(one, range(50)))
    assert [status for status, _ in results] == [200] * 50
    # Every answer is its own request's: nothing crossed between queued requests.
    assert [answer["queryStringParameters"]["i"] for _, answer in results] == [str(i) for i in range(50)]


def test_a_slowloris_client_does_not_block_others_and_is_dropped(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as slow:
        slow.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Never: ")  # headers never end
        assert server.post_json("/invocations", {"while": "slowloris"})[0] == 200
        # The server times the silent client out (--client-timeout 3) and closes it.
        assert slow.recv(1024) == b""


# ---- shutdown ----


def environment_processes(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.parametrize(
    "signal_number", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"]
)
def test_stopping_the_server_leaves_no_environment_process(signal_number: int) -> None:
    running = start_server("--concurrency", "2", "--warm")
    try:
        assert running.post_json("/invocations", {})[0] == 200
        children = environment_processes(running.process.pid)
        assert len(children) >= 2  # EchoFunction's two warm environments at least
        os.kill(running.process.pid, signal_number)
        running.process.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == []
        if signal_number != signal.SIGKILL:
            assert running.process.returncode == 0
            assert "Stopped" in running.output()
    finally:
        stop_server(running)


def test_a_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                str(LAMBDAVISION),
                "local",
                "start-api",
                "--use-venv",
                "-t",
                str(APP / "template.yaml"),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"]
