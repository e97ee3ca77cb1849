"""The thin HTTP shell around `LocalGateway`: bytes in, `HttpRequest`; `HttpResponse`, bytes out.

One thread per connection (daemon threads, so a stuck client never keeps the process alive),
HTTP/1.1 keep-alive, `TCP_NODELAY` on every accepted socket (without it a small answer waits
for Nagle's delayed ACK), and a per-connection socket timeout so a client that stops sending
mid-request is dropped instead of holding its thread forever. One log line per request on the
log stream, in the format SAM CLI's server prints.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from lambdavision.local.gateway import (
    MAX_REQUEST_BODY_BYTES,
    HttpRequest,
    HttpResponse,
    LocalGateway,
    request_too_long,
)

DEFAULT_CLIENT_TIMEOUT_S = 60.0

# An oversized body is read and thrown away (up to this much) before answering 413, so the
# client reads our answer instead of a connection reset; past it the connection is closed.
_MAX_DISCARD_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 256 * 1024


class BadBody(Exception):
    """The request's framing (Content-Length / chunked encoding) cannot be read."""


class GatewayHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that hands every request to one `LocalGateway`."""

    daemon_threads = True
    allow_reuse_address = True
    # The default of 5 drops connections when many clients connect at once.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        gateway: LocalGateway,
        *,
        log_stream: TextIO | None = None,
        client_timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S,
    ) -> None:
        self.gateway = gateway
        self.log_stream = log_stream if log_stream is not None else sys.stderr
        self.log_lock = threading.Lock()
        handler = type("BoundGatewayRequestHandler", (GatewayRequestHandler,), {"timeout": client_timeout_s})
        super().__init__(address, handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        if ":" in host_text:
            host_text = f"[{host_text}]"
        return f"http://{host_text}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished or stalled is routine: one line, not a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            self.log_line(f"{client_address[0]} - connection dropped: {exc!r}")
            return
        super().handle_error(request, client_address)

    def log_line(self, line: str) -> None:
        with self.log_lock:
            self.log_stream.write(line if line.endswith("\n") else line + "\n")
            self.log_stream.flush()


class GatewayRequestHandler(BaseHTTPRequestHandler):
    """Converts one HTTP exchange to and from the gateway's dataclasses."""

    server: GatewayHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive
    # An unparseable request line is answered with a status line and headers, not HTTP/0.9's bare body.
    default_request_version = "HTTP/1.0"
    disable_nagle_algorithm = True  # TCP_NODELAY on the accepted socket
    server_version = "lambdavision"

    def version_string(self) -> str:
        return self.server_version

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except BadBody as exc:
            self.close_connection = True
            self.send_error(400, str(exc))
            return
        except TimeoutError:
            self.close_connection = True
            return
        if body is None:
            self._write(request_too_long())
            return
        split = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=split.path or "/",
            query=parse_qsl(split.query, keep_blank_values=True),
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        self._write(self.server.gateway.handle(request))

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is over API Gateway's 10 MB limit."""
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding:
            if encoding != "chunked":
                raise BadBody(f"unsupported Transfer-Encoding: {encoding}")
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        if len(self.headers.get_all("Content-Length") or []) > 1:
            raise BadBody("more than one Content-Length header")
        try:
            length = int(length_text.strip())
        except ValueError:
            raise BadBody(f"bad Content-Length: {length_text!r}") from None
        if length < 0:
            raise BadBody(f"bad Content-Length: {length_text!r}")
        if length > MAX_REQUEST_BODY_BYTES:
            self._discard(length)
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            raise BadBody("the body is shorter than its Content-Length")
        return body

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadBody("bad chunk size") from None
            if size < 0:
                raise BadBody("bad chunk size")
            if size == 0:
                break
            total += size
            if total > MAX_REQUEST_BODY_BYTES:
                self.close_connection = True
                return None
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.read(2) != b"\r\n":
                raise BadBody("truncated chunk")
            parts.append(chunk)
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(parts)

    def _discard(self, length: int) -> None:
        if length > _MAX_DISCARD_BYTES:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_READ_CHUNK, remaining))
            if not chunk:
                self.close_connection = True
                return
            remaining -= len(chunk)

    def handle_expect_100(self) -> bool:
        # Refuse an oversized upload before the client sends it.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_REQUEST_BODY_BYTES:
            self.close_connection = True
            self._write(request_too_long())
            return False
        return super().handle_expect_100()

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    # Every method goes through the gateway, which answers 403 for those no route declares.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # The base class formats `127.0.0.1 - - [time] "POST /path HTTP/1.1" 200 -`, as SAM does.
        self.server.log_line(f"{self.address_string()} - - [{self.log_date_time_string()}] {format % args}")


__all__ = ["DEFAULT_CLIENT_TIMEOUT_S", "GatewayHTTPServer", "GatewayRequestHandler"]
