"""Issue 14.4: start-api's HTTP layer follows RFC 9112 and logs nothing raw.

The real `GatewayHTTPServer` (h11 underneath) on a loopback port, in front of a real
`LocalGateway` whose function is a fake `invoke` that echoes the body it was sent. Each case is
the issue's reproducer sent as raw bytes.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from lambdavision.local.gateway import LocalGateway
from lambdavision.local.http_server import GatewayHTTPServer, printable
from lambdavision.local.pool import Invocation
from lambdavision.local.template import ApiRoute


class Log(io.StringIO):
    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


def echo(function_id: str, event: dict[str, Any]) -> Invocation:
    body = json.dumps({"body": event.get("body"), "path": event.get("path"), "headers": event.get("headers")})
    return Invocation(
        request_id="req-1",
        payload=json.dumps({"statusCode": 200, "body": body}).encode(),
        error_type=None,
        duration_ms=1.0,
        billed_ms=1,
        init_duration_ms=None,
        max_memory_mb=30,
        report_line="REPORT",
    )


@pytest.fixture
def server() -> Iterator[tuple[GatewayHTTPServer, Log]]:
    log = Log()
    gateway = LocalGateway([ApiRoute("ANY", "/{proxy+}", "Echo")], echo, [])
    http = GatewayHTTPServer(("127.0.0.1", 0), gateway, log_stream=log, client_timeout_s=2.0)
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield http, log
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)


def exchange(server: GatewayHTTPServer, data: bytes) -> bytes:
    """Send raw bytes, half-close, and read everything until the server closes."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """The status of each response in `answer`, read one after the other by their Content-Length."""
    found = []
    while answer:
        head, _, rest = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        found.append(status)
        lengths = [int(line.split(b":")[1]) for line in lines[1:] if line.lower().startswith(b"content-length:")]
        answer = rest[lengths[0] if lengths and status >= 200 else 0 :]
    return found


SMUGGLED = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"


def test_transfer_encoding_with_content_length_is_refused_and_nothing_behind_it_is_served(
    server: tuple[GatewayHTTPServer, Log],
) -> None:
    http, _ = server
    request = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 38\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLED
    )
    answer = exchange(http, request)
    assert statuses(answer) == [400]
    assert b"Connection: close" in answer
    assert b"/admin" not in answer


@pytest.mark.parametrize("size", [b"0x29", b"+29", b"1_0", b" 29", b"29 ; x=\x01"])
def test_a_chunk_size_must_be_strict_hex(server: tuple[GatewayHTTPServer, Log], size: bytes) -> None:
    http, _ = server
    request = (
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n" + b"a" * 41)
        + b"\r\n0\r\n\r\n"
        + SMUGGLED
    )
    assert statuses(exchange(http, request)) == [400]


@pytest.mark.parametrize("length", [b"+38", b"38 38", b"0x26", b"38.0", b"-0"])
def test_a_content_length_must_be_plain_digits(server: tuple[GatewayHTTPServer, Log], length: bytes) -> None:
    http, _ = server
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n" + b"a" * 38
    assert statuses(exchange(http, request)) == [400]


def test_an_obs_fold_header_is_refused_and_never_reaches_a_status_line(server: tuple[GatewayHTTPServer, Log]) -> None:
    http, _ = server
    request = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n HTTP/1.1 200 OK\r\n\r\n"
    answer = exchange(http, request)
    assert statuses(answer) == [400]
    assert answer.count(b"HTTP/1.1") == 1


def test_control_characters_never_reach_the_log_raw(server: tuple[GatewayHTTPServer, Log]) -> None:
    http, log = server
    forged = b'127.0.0.1 - - [01/Jan/2026 00:00:00] "GET /ok HTTP/1.1" 200 -'
    for target in (b"/echo%1b[2J\x1b[31m", b"/echo\x07", b"/x\r\n" + forged, b"/\xe2\x80\xae"):
        exchange(http, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    # A quote would end the quoted request line early and let the rest pose as its status.
    exchange(http, b'GET /a"%20200%20-\\ HTTP/1.1\r\nHost: x\r\n\r\n')
    exchange(http, b'GET /a" HTTP/1.1\r\nHost: x\r\n\r\n')
    text = log.getvalue()
    assert all(ch == "\n" or 0x20 <= ord(ch) < 0x7F for ch in text), repr(text)
    assert "GET /ok" not in text  # no forged line
    assert len(log.lines()) == 6  # one line per request
    assert log.lines()[-1].endswith('"GET /a\\" HTTP/1.1" 200 -')


def test_printable_escapes_what_a_log_line_must_not_hold() -> None:
    assert printable('GET /\x1b[31m "x"\\ \r\n\u202e') == 'GET /\\x1b[31m \\"x\\"\\\\ \\x0d\\x0a\\u202e'


def test_keep_alive_and_pipelining_still_work(server: tuple[GatewayHTTPServer, Log]) -> None:
    http, log = server
    one = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    two = b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n"
    three = b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = exchange(http, one + two + three)
    assert statuses(answer) == [200, 200, 200]
    assert b'"body": "abc"' in answer and b'"body": "def"' in answer
    assert [line.split('"')[1] for line in log.lines()] == ["POST /a HTTP/1.1", "POST /b HTTP/1.1", "GET /c HTTP/1.1"]


def test_expect_100_continue_is_honoured_and_refused_when_too_long(server: tuple[GatewayHTTPServer, Log]) -> None:
    http, _ = server
    ok = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"
    assert statuses(exchange(http, ok)) == [100, 200]
    huge = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\nExpect: 100-continue\r\n\r\n"
    answer = exchange(http, huge)
    assert statuses(answer) == [413]
    assert answer.endswith(b'{"message": "Request Too Long"}')


def test_a_refusal_never_echoes_the_request(server: tuple[GatewayHTTPServer, Log]) -> None:
    http, _ = server
    answer = exchange(http, b"GET /\x1b[31mSECRET HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(answer) == [400]
    assert b"SECRET" not in answer and b"\x1b" not in answer
