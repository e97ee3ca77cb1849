"""Properties of `local start-api` on a socket, as API Gateway would answer.

- Raw malformed HTTP (bad request lines, huge or broken headers, lying Content-Lengths, binary
  junk) gets a status API Gateway itself gives to malformed requests (400, 413, 414, 431, 501,
  505) or a closed connection; never a 5xx of the integration (500, 502, 504) and never an answer
  that is not HTTP; a well-formed request right after is still served.
- A well-formed request gets what API Gateway REST's route table says: 200 from the echo function
  for a route the template declares (method and path), 403 `Missing Authentication Token` for any
  other; the expectation comes from the template's routes listed below, not from the gateway.
"""

from __future__ import annotations

import collections
import io
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

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


# What API Gateway answers a request it cannot parse or will not take, before any integration runs.
MALFORMED_STATUSES = {400, 413, 414, 431, 501, 505}


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    return int(answer.split(b" ", 2)[1])


def port_of(api: LocalApi) -> int:
    return int(api.url.rstrip("/").rsplit(":", 1)[1])


def test_malformed_http_never_takes_the_server_down(api: LocalApi) -> None:
    port = port_of(api)
    counter = Counter()
    seen: collections.Counter[int] = collections.Counter()

    @FUZZ_SETTINGS
    @given(requests)
    def target(data: bytes) -> None:
        counter.tick()
        answer = send_raw(port, data)
        if answer:
            status = status_of(answer)
            seen[status] += 1
            # A request that happens to be well formed reaches a route (200) or none (403).
            assert status in MALFORMED_STATUSES | {200, 403}, answer[:300]
        if counter.cases % 25 == 0:
            assert good_request(api.url) == 200

    run_budget("gateway", target, counter)
    print(f"statuses: {dict(sorted(seen.items()))}")
    assert good_request(api.url) == 200


# The template's routes (tests/functions/gateway_app/template.yaml), as API Gateway REST matches
# them: one trailing slash does not count.
def routed(method: str, path: str) -> bool:
    # A trailing slash reaches the same route: API Gateway answers /foo/ with /foo's method (sam-cli #1495).
    trimmed = path[:-1] if path.endswith("/") and path != "/" else path
    segments = trimmed.split("/")[1:]
    if segments[0] == "echo":
        return len(segments) >= 2 and all(segments[1:])  # ANY /echo/{proxy+}
    if method == "POST" and trimmed in ("/invocations", "/sleepy"):
        return True
    return method == "GET" and len(segments) == 2 and segments[0] == "items" and segments[1] != ""


segment = st.text(alphabet="abcXYZ019-_~ %é", min_size=1, max_size=8).map(lambda s: quote(s, safe=""))
paths = st.one_of(
    st.sampled_from(["/", "/invocations", "/invocations/", "/echo", "/echo/", "/items", "/items/", "/sleepy", "/nope"]),
    st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    st.tuples(st.sampled_from(["echo", "items", "invocations"]), st.lists(segment, min_size=1, max_size=3)).map(
        lambda t: "/" + "/".join([t[0], *t[1]])
    ),
)
header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda name: name not in ("content-length", "transfer-encoding", "connection", "expect", "host")
)
well_formed = st.builds(
    lambda method, path, query, headers, body: (method, path, query, headers, body),
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    paths,
    st.lists(st.tuples(segment, segment), max_size=3).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
    st.dictionaries(header_names, st.text(alphabet="abc xyz/;=,.-", max_size=20).map(str.strip), max_size=4),
    st.binary(max_size=200),
)


def test_well_formed_requests_get_what_the_route_table_says(api: LocalApi) -> None:
    port = port_of(api)
    counter = Counter()
    seen: collections.Counter[tuple[bool, int]] = collections.Counter()

    @FUZZ_SETTINGS
    @given(well_formed)
    def target(request: tuple[str, str, str, dict[str, str], bytes]) -> None:
        counter.tick()
        method, path, query, headers, body = request
        target_line = path + (f"?{query}" if query else "")
        head = f"{method} {target_line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        answer = send_raw(port, head.encode() + body)
        status = status_of(answer)
        seen[(routed(method, path), status)] += 1
        if routed(method, path):
            assert status == 200, answer[:300]
            echoed = json.loads(answer.partition(b"\r\n\r\n")[2])
            # The proxy event's path is percent-decoded, as API Gateway's is.
            assert (echoed["httpMethod"], echoed["path"].rstrip("/")) == (method, unquote(path).rstrip("/"))
        else:
            assert status == 403, answer[:300]
            assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"message": "Missing Authentication Token"}

    run_budget("gateway-routes", target, counter)
    print(f"(routed, status): {dict(seen)}")
