"""The thin HTTP shell around `LocalGateway`: bytes in, `HttpRequest`; `HttpResponse`, bytes out.

HTTP/1.1 is parsed by h11 (a small, strict, well-kept parser of RFC 9112) rather than by hand:
strict Content-Length digits and chunk-size hex, no control characters in the request line, one
Content-Length. On top of it this shell refuses what h11 tolerates but API Gateway would not:
Transfer-Encoding together with Content-Length (a request-smuggling shape; the connection is then
closed, so nothing pipelined behind it is served) and obs-fold header continuations. A refused
request gets a short JSON error that never echoes its bytes, and the connection is closed.

One thread per connection (daemon threads, so a stuck client never keeps the process alive),
keep-alive, `TCP_NODELAY` on every accepted socket (without it a small answer waits for Nagle's
delayed ACK), and a per-connection socket timeout so a client that stops sending mid-request is
dropped instead of holding its thread forever. One log line per request, in the format SAM CLI's
server prints, with every control or non-ASCII character escaped (nothing a client sends can
forge a log line or move the terminal's cursor).
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import sys
import threading
import time
from http import HTTPStatus
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

import h11

from lambdavision.local.gateway import LocalGateway
from lambdavision.local.http_messages import MAX_REQUEST_BODY_BYTES, HttpRequest, HttpResponse, request_too_long

DEFAULT_CLIENT_TIMEOUT_S = 60.0

# An oversized body is read and thrown away (up to this much) before answering 413, so the
# client reads our answer instead of a connection reset; past it the connection is closed.
_MAX_DISCARD_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 256 * 1024
_MAX_HEAD_BYTES = 64 * 1024  # request line + headers (h11 answers 431 past it)
_OBS_FOLD = re.compile(rb"\n[ \t]")  # a header line that starts with whitespace continues the previous one
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class _Closed(Exception):
    """The client went away (or stayed silent past the timeout): drop the connection."""


class _Refused(Exception):
    """The request is malformed: answer `status` with `reason` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class GatewayHTTPServer(socketserver.ThreadingTCPServer):
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
        self.client_timeout_s = client_timeout_s
        super().__init__(address, _Connection)

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
            self.log_line(f"{client_address[0]} - connection dropped: {printable(repr(exc))}")
            return
        super().handle_error(request, client_address)

    def log_line(self, line: str) -> None:
        with self.log_lock:
            self.log_stream.write(line if line.endswith("\n") else line + "\n")
            self.log_stream.flush()


def printable(text: str) -> str:
    """`text` safe for a one-line log: control, non-ASCII, quote and backslash characters escaped."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


class _Connection(socketserver.BaseRequestHandler):
    """One client connection: h11 parses, the gateway answers, until either side closes."""

    server: GatewayHTTPServer
    request: socket.socket

    def setup(self) -> None:
        self.request.settimeout(self.server.client_timeout_s)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)
        self.head = bytearray()  # the raw bytes of the request being read, until its headers end

    def handle(self) -> None:
        try:
            while self._serve_one():
                self.h11.start_next_cycle()
                self.head = bytearray(self.h11.trailing_data[0])
        except _Closed:
            pass
        except _Refused as refused:
            self._refuse(refused.status, refused.reason)

    # ---- one request ----

    def _serve_one(self) -> bool:
        """Read one request, answer it; True if the connection stays open for another."""
        try:
            event = self._next_event()
        except h11.RemoteProtocolError as exc:
            raise _Refused(exc.error_status_hint, "malformed request") from None
        if isinstance(event, h11.ConnectionClosed):
            return False
        assert isinstance(event, h11.Request)
        self._check_framing(event)
        method = event.method.decode("ascii")
        target = event.target.decode("ascii")
        request_line = f"{method} {target} HTTP/{event.http_version.decode('ascii')}"
        length = _content_length(event)
        if length is not None and length > MAX_REQUEST_BODY_BYTES:
            return self._too_long(request_line, discard=length)
        if self.h11.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[]))
        body = self._read_body(MAX_REQUEST_BODY_BYTES)
        if body is None:  # a chunked body past the limit: its end is unknown, so close
            return self._too_long(request_line, discard=None)
        split = urlsplit(target)
        request = HttpRequest(
            method=method,
            path=split.path or "/",
            query=parse_qsl(split.query, keep_blank_values=True),
            headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers.raw_items()],
            body=body,
            source_ip=str(self.client_address[0]),
        )
        response = self.server.gateway.handle(request)
        self._respond(response, head_only=method == "HEAD")
        self._log(request_line, response.status)
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def _check_framing(self, event: h11.Request) -> None:
        names = {name for name, _ in event.headers}
        if b"transfer-encoding" in names and b"content-length" in names:
            raise _Refused(400, "Transfer-Encoding and Content-Length together")
        end = _HEAD_END.search(self.head)
        if _OBS_FOLD.search(self.head[: end.start() if end else len(self.head)]):
            raise _Refused(400, "folded (obs-fold) header line")

    def _too_long(self, request_line: str, discard: int | None) -> bool:
        """413 as API Gateway words it; keep the connection only if the body could be read past."""
        keep = discard is not None and discard <= _MAX_DISCARD_BYTES and not self.h11.they_are_waiting_for_100_continue
        if keep:
            self._read_body(None)
        self._respond(request_too_long(), head_only=False, close=not keep)
        self._log(request_line, 413)
        return keep and self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    # ---- reading ----

    def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = self.request.recv(_READ_CHUNK)
            except (TimeoutError, ConnectionError, OSError):
                raise _Closed() from None
            if len(self.head) <= _MAX_HEAD_BYTES and self.h11.their_state is h11.IDLE:
                self.head += data
            self.h11.receive_data(data)

    def _read_body(self, limit: int | None) -> bytes | None:
        """The body, or None once it passes `limit` (None: read and drop all of it)."""
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                event = self._next_event()
            except h11.RemoteProtocolError as exc:
                raise _Refused(exc.error_status_hint, "malformed body") from None
            if isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            if not isinstance(event, h11.Data):
                raise _Closed()  # the client closed the connection mid-body
            size += len(event.data)
            if limit is not None:
                if size > limit:
                    return None
                parts.append(bytes(event.data))

    # ---- writing ----

    def _respond(self, response: HttpResponse, *, head_only: bool, close: bool = False) -> None:
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        headers += [(b"Server", b"lambdavision"), (b"Date", _http_date().encode())]
        no_body = response.status in (204, 304)
        if not no_body:
            headers.append((b"Content-Length", str(len(response.body)).encode()))
        if close:
            headers.append((b"Connection", b"close"))
        self._send(h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status)))
        if response.body and not head_only and not no_body:
            self._send(h11.Data(data=response.body))
        self._send(h11.EndOfMessage())

    def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            try:
                self.request.sendall(data)
            except OSError:
                raise _Closed() from None

    def _refuse(self, status: int, reason: str) -> None:
        """A fixed answer to a malformed request (never its bytes), then the connection closes.

        Written directly: h11 will not send a response to a request it could not parse.
        """
        body = json.dumps({"message": f"{_reason(status).decode()}: {reason}"}).encode()
        head = (
            f"HTTP/1.1 {status} {_reason(status).decode()}\r\nServer: lambdavision\r\nDate: {_http_date()}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            self.request.sendall(head.encode("ascii") + body)
        except OSError:
            return
        self._log("<malformed request>", status)

    def _log(self, request_line: str, status: int) -> None:
        # `127.0.0.1 - - [time] "POST /path HTTP/1.1" 200 -`, as SAM CLI's server prints it.
        stamp = time.strftime("%d/%b/%Y %H:%M:%S")
        self.server.log_line(f'{self.client_address[0]} - - [{stamp}] "{printable(request_line)}" {status} -')


def _content_length(event: h11.Request) -> int | None:
    for name, value in event.headers:
        if name == b"content-length":
            return int(value)  # h11 checked it: digits only, one value
    return None


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _http_date() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


__all__ = ["DEFAULT_CLIENT_TIMEOUT_S", "GatewayHTTPServer", "printable"]
