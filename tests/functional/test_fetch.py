"""`lambdavision.runtime.fetch` against real servers on 127.0.0.1 (HTTP, HTTPS and raw TCP)."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lambdavision.core.errors import (
    BadRequest,
    LambdaVisionError,
    PayloadTooLarge,
    UpstreamError,
    UpstreamTimeout,
)
from lambdavision.runtime.fetch import Fetched, FetchPolicy, fetch, fetch_many
from lambdavision.runtime.settings import Settings
from tests.fixtures.image_server import PNG_BYTES, ImageServer, RawServer
from tests.fixtures.tls import make_ca

LOCAL = FetchPolicy(allow_private=True, connect_timeout=1.0, total_timeout=1.0)
# The deployed address policy; every port, so the loopback test servers' own ports reach the address checks.
STRICT = FetchPolicy(allow_private=False, connect_timeout=1.0, total_timeout=1.0, ports="any")


def port_of(server: ImageServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def refused(url: str, policy: FetchPolicy = LOCAL) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        fetch(url, policy)
    assert caught.value.status == 400
    return caught.value


# --- Good answers ---------------------------------------------------------------------------------


def test_an_image_is_fetched(image_server: ImageServer) -> None:
    body = os.urandom(50_000)
    url = image_server.add("/cat.jpg", body, content_type="image/jpeg")
    fetched = fetch(url, LOCAL)
    assert fetched.content == body
    assert fetched.content_type == "image/jpeg"
    assert fetched.url == url
    assert isinstance(fetched.elapsed_ms, float)


def test_a_body_of_exactly_the_cap_is_accepted(image_server: ImageServer) -> None:
    url = image_server.add("/exact.jpg", b"y" * 4096)
    policy = FetchPolicy(allow_private=True, max_bytes=4096, total_timeout=1.0)
    assert fetch(url, policy).content == b"y" * 4096


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-content-length"])
def test_the_default_cap_is_10_mib(image_server: ImageServer, announced: bool) -> None:
    # The policy a deployed function builds from its environment, loopback allowed for the test.
    policy = Settings.from_env({"LAMBDAVISION_ALLOW_PRIVATE_URLS": "1"}).policy
    headers = None if announced else {"Content-Length": ""}
    exact = image_server.add("/exact.jpg", b"y" * 10_485_760, headers=headers)
    assert len(fetch(exact, policy).content) == 10_485_760
    over = image_server.add("/over.jpg", b"y" * 10_485_761, headers=headers)
    with pytest.raises(PayloadTooLarge, match="10485760-byte limit") as caught:
        fetch(over, policy)
    assert caught.value.status == 413


def test_a_body_without_content_length_is_read_to_the_end(image_server: ImageServer) -> None:
    # HTTP/1.0 without Content-Length (the fixture leaves out a header given as ""): the body
    # ends when the server closes the connection.
    url = image_server.add("/nolength.png", PNG_BYTES, headers={"Content-Length": ""})
    assert fetch(url, LOCAL).content == PNG_BYTES


def test_the_request_names_the_host_and_asks_for_identity(image_server: ImageServer) -> None:
    fetch(image_server.url_for("/png"), LOCAL)
    (request,) = image_server.requests
    assert request.headers["Host"] == f"127.0.0.1:{port_of(image_server)}"
    assert request.headers["Accept-Encoding"] == "identity"


# --- Loopback through a host name, and the pinned address -----------------------------------------


def test_a_host_name_resolving_to_loopback_is_refused(image_server: ImageServer) -> None:
    error = refused(f"http://localhost:{port_of(image_server)}/png", STRICT)
    assert "localhost resolves to 127.0.0.1, a loopback address" in error.message
    assert image_server.requests == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "127.1", "[::ffff:127.0.0.1]"])
def test_other_spellings_of_loopback_are_refused(image_server: ImageServer, host: str) -> None:
    error = refused(f"http://{host}:{port_of(image_server)}/png", STRICT)
    assert "loopback" in error.message
    assert image_server.requests == []


def test_loopback_is_allowed_by_the_environment_switch(image_server: ImageServer, allow_private_urls: None) -> None:
    policy = Settings.from_env(os.environ).policy
    assert policy.allow_private
    fetched = fetch(f"http://localhost:{port_of(image_server)}/png", policy)
    assert fetched.content == PNG_BYTES
    assert image_server.requests[0].headers["Host"] == f"localhost:{port_of(image_server)}"


def test_the_connection_goes_to_the_checked_address_under_the_host_name(image_server: ImageServer) -> None:
    # The resolver is asked once; the connection uses its answer, the Host header the name.
    asked: list[str] = []

    def resolver(host: str) -> Sequence[str]:
        asked.append(host)
        return ["127.0.0.1"]

    fetched = fetch(f"http://images.example:{port_of(image_server)}/png", LOCAL, resolver=resolver)
    assert fetched.content == PNG_BYTES
    assert asked == ["images.example"]
    assert image_server.requests[0].headers["Host"] == f"images.example:{port_of(image_server)}"


def test_one_private_address_among_public_ones_refuses_the_host(image_server: ImageServer) -> None:
    def resolver(host: str) -> Sequence[str]:
        return ["93.184.216.34", "2606:2800::1", "127.0.0.1"]

    with pytest.raises(BadRequest, match=r"images\.example resolves to 127\.0\.0\.1"):
        fetch(f"http://images.example:{port_of(image_server)}/png", STRICT, resolver=resolver)


def test_a_failed_lookup_is_an_upstream_error() -> None:
    def resolver(host: str) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UpstreamError) as caught:
        fetch("http://no-such-host.example/cat.jpg", STRICT, resolver=resolver)
    assert caught.value.status == 502
    assert "could not resolve host no-such-host.example" in caught.value.message


def test_a_lookup_that_hangs_is_cut_by_the_deadline() -> None:
    release = threading.Event()

    def resolver(host: str) -> Sequence[str]:
        release.wait(10)
        return ["93.184.216.34"]

    try:
        with pytest.raises(UpstreamTimeout, match=r"resolving host slow-dns\.example"):
            fetch("http://slow-dns.example/", FetchPolicy(total_timeout=0.3), resolver=resolver)
    finally:
        release.set()


# --- Schemes and redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/cat.jpg", "file:///etc/passwd"])
def test_other_schemes_are_refused(url: str) -> None:
    assert "only http and https" in refused(url).message


def test_redirects_are_followed_to_the_final_url(image_server: ImageServer) -> None:
    fetched = fetch(image_server.url_for("/redirect-chain?n=3"), LOCAL)
    assert fetched.content == PNG_BYTES
    assert fetched.url == image_server.url_for("/redirect-chain?n=0")


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_every_redirect_status_is_followed(image_server: ImageServer, status: int) -> None:
    fetched = fetch(image_server.url_for(f"/redirect?to=/png&status={status}"), LOCAL)
    assert fetched.content == PNG_BYTES


def test_a_fourth_redirect_is_too_many(image_server: ImageServer) -> None:
    with pytest.raises(UpstreamError, match="too many redirects") as caught:
        fetch(image_server.url_for("/redirect-chain?n=4"), LOCAL)
    assert caught.value.status == 502
    assert len(image_server.requests) == 4


def test_a_redirect_loop_is_an_upstream_error(image_server: ImageServer) -> None:
    with pytest.raises(UpstreamError, match="redirect loop") as caught:
        fetch(image_server.url_for("/redirect-loop"), LOCAL)
    assert caught.value.status == 502


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 is a cloud instance-metadata address"),
        ("http://[::ffff:169.254.169.254]/", "IPv6 form of 169.254.169.254"),
        ("ftp://127.0.0.1/cat.jpg", "scheme 'ftp'"),
        ("http://user:pw@127.0.0.1/", "credentials"),
    ],
)
def test_a_redirect_to_a_forbidden_place_is_refused_even_with_private_allowed(
    image_server: ImageServer, target: str, words: str
) -> None:
    error = refused(image_server.url_for(f"/redirect?to={target}"), LOCAL)
    assert "redirected to" in error.message and words in error.message


def test_a_redirect_without_location_is_an_upstream_error(image_server: ImageServer) -> None:
    url = image_server.add("/bad-redirect", b"", status=302)
    with pytest.raises(UpstreamError, match="without a Location"):
        fetch(url, LOCAL)


# --- Statuses, refusals and broken answers ---------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500, 503])
def test_an_error_status_is_an_upstream_error_naming_host_and_status(image_server: ImageServer, status: int) -> None:
    with pytest.raises(UpstreamError) as caught:
        fetch(image_server.url_for(f"/status/{status}"), LOCAL)
    assert caught.value.status == 502
    assert f"127.0.0.1:{port_of(image_server)} answered HTTP {status}" in caught.value.message


def test_a_closed_port_is_an_upstream_error(closed_port: int) -> None:
    with pytest.raises(UpstreamError, match="could not connect to image host") as caught:
        fetch(f"http://127.0.0.1:{closed_port}/cat.jpg", LOCAL)
    assert caught.value.status == 502


def test_a_body_shorter_than_announced_is_an_upstream_error(image_server: ImageServer) -> None:
    url = image_server.add("/short.jpg", b"x" * 10, headers={"Content-Length": "100"})
    with pytest.raises(UpstreamError, match="after 10 of 100 bytes"):
        fetch(url, LOCAL)


def test_https_to_a_plain_http_server_is_an_upstream_error(image_server: ImageServer) -> None:
    with pytest.raises(UpstreamError) as caught:
        fetch(f"https://127.0.0.1:{port_of(image_server)}/png", LOCAL)
    assert caught.value.status == 502


def test_a_response_that_is_not_http_is_an_upstream_error(
    raw_server: RawServer,
) -> None:
    port = raw_server(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    with pytest.raises(UpstreamError, match="did not answer with valid HTTP"):
        fetch(f"http://127.0.0.1:{port}/cat.jpg", LOCAL)


def test_a_connection_closed_without_answer_is_an_upstream_error(
    raw_server: RawServer,
) -> None:
    port = raw_server(lambda conn: None)
    with pytest.raises(UpstreamError):
        fetch(f"http://127.0.0.1:{port}/cat.jpg", LOCAL)


def _chunked(conn: socket.socket, pieces: Sequence[bytes]) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
    for piece in pieces:
        conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
    conn.sendall(b"0\r\n\r\n")


def test_a_chunked_body_is_reassembled(raw_server: RawServer) -> None:
    pieces = [PNG_BYTES[:10], PNG_BYTES[10:50], PNG_BYTES[50:]]
    port = raw_server(lambda conn: _chunked(conn, pieces))
    fetched = fetch(f"http://127.0.0.1:{port}/img.png", LOCAL)
    assert fetched.content == PNG_BYTES
    assert fetched.content_type == "image/png"


def test_a_chunked_body_over_the_cap_is_refused(
    raw_server: RawServer,
) -> None:
    port = raw_server(lambda conn: _chunked(conn, [b"z" * 30_000] * 5))
    policy = FetchPolicy(allow_private=True, max_bytes=100_000, total_timeout=2.0)
    with pytest.raises(PayloadTooLarge):
        fetch(f"http://127.0.0.1:{port}/img.png", policy)


# --- Time ------------------------------------------------------------------------------------------

FAST = FetchPolicy(allow_private=True, connect_timeout=0.5, total_timeout=0.5)


def test_a_slow_server_is_a_timeout(image_server: ImageServer) -> None:
    with pytest.raises(UpstreamTimeout) as caught:
        fetch(image_server.url_for("/slow?seconds=5"), FAST)
    assert caught.value.status == 504
    assert "did not answer within 0.5 s" in caught.value.message


def test_a_trickling_body_is_cut_by_the_total_deadline(image_server: ImageServer) -> None:
    # Each byte arrives well within any per-read timeout; only the total deadline stops it.
    with pytest.raises(UpstreamTimeout):
        fetch(image_server.url_for("/trickle?bytes=1000&delay=0.05"), FAST)


def test_trickling_headers_are_cut_by_the_total_deadline(
    raw_server: RawServer,
) -> None:
    stop = threading.Event()

    def trickle_headers(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        while not stop.wait(0.02):
            conn.sendall(b"a")

    port = raw_server(trickle_headers)
    try:
        with pytest.raises(UpstreamTimeout):
            fetch(f"http://127.0.0.1:{port}/cat.jpg", FAST)
    finally:
        stop.set()


def test_a_deadline_covers_all_redirect_hops_together(image_server: ImageServer) -> None:
    # Two hops of 0.6 s each: either alone fits in 1 s, together they do not.
    policy = FetchPolicy(allow_private=True, connect_timeout=1.0, total_timeout=1.0)
    with pytest.raises(UpstreamTimeout):
        fetch(image_server.url_for("/slow?seconds=0.6&to=/slow%3Fseconds%3D0.6"), policy)


# --- Size ------------------------------------------------------------------------------------------

SMALL = FetchPolicy(allow_private=True, max_bytes=100_000, total_timeout=5.0)


def test_an_endless_body_is_refused_at_the_cap(image_server: ImageServer) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        fetch(image_server.url_for("/huge"), SMALL)
    assert caught.value.status == 413
    assert "100000-byte limit" in caught.value.message


def test_a_large_announced_body_is_refused_before_reading(image_server: ImageServer) -> None:
    # The body is 10 bytes but claims 50 MB: reading it would end in "closed after 10 bytes".
    url = image_server.add("/liar.jpg", b"x" * 10, headers={"Content-Length": "50000000"})
    with pytest.raises(PayloadTooLarge, match="declares 50000000 bytes"):
        fetch(url, SMALL)


def test_a_large_real_body_is_refused(image_server: ImageServer) -> None:
    url = image_server.add("/big.jpg", os.urandom(200_000))
    with pytest.raises(PayloadTooLarge):
        fetch(url, SMALL)


# --- Many ------------------------------------------------------------------------------------------


def test_fetch_many_keeps_order_and_isolates_failures(image_server: ImageServer) -> None:
    first = image_server.add("/first.jpg", b"first")
    last = image_server.add("/last.jpg", b"last")
    urls = [
        first,
        image_server.url_for("/status/404"),
        "ftp://127.0.0.1/x.jpg",
        image_server.url_for("/redirect-chain?n=2"),
        image_server.url_for("/huge"),
        image_server.url_for("/slow?seconds=5"),
        last,
    ]
    policy = FetchPolicy(allow_private=True, max_bytes=100_000, connect_timeout=1.0, total_timeout=1.0)
    results = fetch_many(urls, policy, max_workers=4)
    kinds = [type(result) for result in results]
    assert kinds == [Fetched, UpstreamError, BadRequest, Fetched, PayloadTooLarge, UpstreamTimeout, Fetched]
    assert isinstance(results[0], Fetched) and results[0].content == b"first"
    assert isinstance(results[3], Fetched) and results[3].content == PNG_BYTES
    assert isinstance(results[6], Fetched) and results[6].content == b"last"
    assert all(isinstance(result, (Fetched, LambdaVisionError)) for result in results)


def test_fetch_many_of_nothing_is_nothing() -> None:
    assert fetch_many([], LOCAL) == []


# --- HTTPS: the pinned address with the host name's certificate -------------------------------------


def test_https_checks_the_certificate_against_the_host_name(https_server: int) -> None:
    # The certificate names only "localhost": the connection goes to the checked 127.0.0.1 while
    # SNI and the certificate check use the name, so the name passes and the bare address fails.
    fetched = fetch(f"https://localhost:{https_server}/png", LOCAL)
    assert fetched.content == PNG_BYTES
    with pytest.raises(UpstreamError, match="TLS certificate check") as caught:
        fetch(f"https://127.0.0.1:{https_server}/png", LOCAL)
    assert caught.value.status == 502


def test_https_with_an_untrusted_certificate_is_refused(https_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(UpstreamError, match="TLS certificate check"):
        fetch(f"https://localhost:{https_server}/png", LOCAL)


# --- Servers only these tests use -------------------------------------------------------------------


class _PngHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG_BYTES)))
        self.end_headers()
        self.wfile.write(PNG_BYTES)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 with a certificate for "localhost" only, trusted through
    SSL_CERT_FILE (its CA) for the test. Yields its port."""
    authority = make_ca(tmp_path, "test CA")
    cert_path, key_path = authority.issue(tmp_path, ["localhost"])
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.cert_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PngHandler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
