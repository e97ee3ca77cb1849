"""Property: raw malformed HTTP on a socket never takes `local start-api` down.

Bad request lines, huge or broken headers, lying Content-Lengths, binary junk: each gets an error
answer or a closed connection, and a well-formed request right after is still served.
"""

from __future__ import annotations

import io
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdavision.cfn import load_app as load_template
from lambdavision.local.api_server import LocalApi
from tests.fuzz.budget import FUZZ_SETTINGS, Counter, run_budget

APP = Path(__file__).parent.parent / "functions" / "gateway_app"


@pytest.fixture(scope="module")
def api() -> Iterator[LocalApi]:
    with LocalApi(
        load_template(APP / "template.yaml"),
        env_file=APP / "env.json",
        port=0,
        log_stream=io.StringIO(),
        client_timeout_s=1.0,
        concurrency=1,
        warm=True,
    ) as local:
        yield local


tokens = st.sampled_from(
    [
        b"GET",
        b"POST",
        b"PUT",
        b"BREW",
        b"",
        b" ",
        b"/",
        b"/invocations",
        b"/echo",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/9.9",
        b"\r\n",
        b"\n",
        b"\x00",
        b":",
        b"Content-Length:",
        b"Transfer-Encoding: chunked",
        b"Content-Length: -1",
        b"Content-Length: 99999999999",
        b"Host: x",
        b"0\r\n\r\n",
        b"zz\r\n",
        b"%",
        b"?a=%zz",
    ]
)
requests = st.one_of(
    st.binary(max_size=300),
    st.lists(tokens, max_size=14).map(b" ".join),
    st.lists(tokens, max_size=14).map(b"".join),
    st.builds(
        lambda method, path, headers, body: method + b" " + path + b" HTTP/1.1\r\n" + headers + b"\r\n" + body,
        tokens,
        st.sampled_from([b"/echo", b"/nope", b"/" * 3000, b"/echo?" + b"a=1&" * 500]),
        st.lists(tokens, max_size=6).map(lambda t: b"\r\n".join(t) + b"\r\n"),
        st.binary(max_size=100),
    ),
    st.just(b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n"),
    st.just(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
)


def send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the server may hang up mid-send on garbage: that is fine
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
        return b"".join(chunks)


def good_request(url: str) -> int:
    request = urllib.request.Request(
        url.rstrip("/") + "/echo/fuzz", data=b'{"ok": 1}', headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        json.loads(response.read())
        return int(response.status)


def test_malformed_http_never_takes_the_server_down(api: LocalApi) -> None:
    port = int(api.url.rstrip("/").rsplit(":", 1)[1])
    counter = Counter()

    @FUZZ_SETTINGS
    @given(requests)
    def target(data: bytes) -> None:
        counter.tick()
        answer = send_raw(port, data)
        if answer:
            assert answer.startswith(b"HTTP/1."), answer[:80]
            status = int(answer.split(b" ", 2)[1])
            assert 100 <= status < 600
            assert status != 500, answer[:300]
        if counter.cases % 25 == 0:
            assert good_request(api.url) == 200

    run_budget("gateway", target, counter)
    assert good_request(api.url) == 200
