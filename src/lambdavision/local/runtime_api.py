"""The Lambda Runtime API that AWS's client (`awslambdaric`) talks to, for one environment.

`RuntimeApiCore` holds the state without a socket: the event waiting for `/next`, and what the
runtime posted back (`/response`, `/error`, `/init/error`). `RuntimeApiServer` is the thin HTTP
shell on 127.0.0.1 around it. One server per execution environment, so a late post from a killed
process can never be mistaken for the answer of its replacement.

Facts of the client this honours: `/next` answers `Content-Type: application/json` (otherwise the
handler receives bytes) and an absolute epoch-ms `Lambda-Runtime-Deadline-Ms`; every POST is
answered 202 (`/init/error` insists); accepted sockets get TCP_NODELAY (without it each warm call
pays ~90 ms of Nagle + delayed-ACK).
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lambdavision.local.report import MAX_RESPONSE_BYTES

API_PREFIX = "/2018-06-01/runtime"
# Bodies above this are counted, not kept: the pool only needs to know they were too large.
MAX_KEPT_BODY_BYTES = MAX_RESPONSE_BYTES + 64 * 1024
_READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class PendingEvent:
    request_id: str
    body: bytes
    timeout_ms: int  # the deadline header is computed from it when the runtime picks it up
    function_arn: str
    trace_id: str


@dataclass(frozen=True)
class Outcome:
    """What the runtime posted: kind is "response", "error" or "init_error"."""

    kind: str
    request_id: str | None
    body: bytes  # b"" when the body was over MAX_KEPT_BODY_BYTES
    size: int
    error_type: str | None
    at: float  # clock() when it arrived


class RuntimeApiCore:
    """One environment's side of the Runtime API: a one-event mailbox and the posts back."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Condition()
        self._queued: PendingEvent | None = None
        self._outcomes: dict[str | None, Outcome] = {}
        self._picked_up: dict[str, float] = {}
        self._closed = False
        self.first_next_at: float | None = None  # end of init: the runtime asked for work

    # -- the pool's side --

    def submit(self, event: PendingEvent) -> None:
        with self._lock:
            if self._queued is not None:
                raise RuntimeError("an event is already waiting for this environment")
            self._queued = event
            self._lock.notify_all()

    def picked_up_at(self, request_id: str) -> float | None:
        with self._lock:
            return self._picked_up.get(request_id)

    def outcome(self, request_id: str) -> Outcome | None:
        """The answer to `request_id`, or the init error if init failed."""
        with self._lock:
            return self._outcomes.get(request_id) or self._outcomes.get(None)

    def wait(self, request_id: str | None, timeout: float) -> None:
        """Sleep until something happens for `request_id` (or init), at most `timeout` seconds."""
        with self._lock:
            if request_id in self._outcomes or None in self._outcomes:
                return
            self._lock.wait(timeout)

    def wait_initialised(self, timeout: float) -> None:
        with self._lock:
            if self.first_next_at is None and None not in self._outcomes:
                self._lock.wait(timeout)

    @property
    def init_error(self) -> Outcome | None:
        with self._lock:
            return self._outcomes.get(None)

    def forget(self, request_id: str) -> None:
        with self._lock:
            self._outcomes.pop(request_id, None)
            self._picked_up.pop(request_id, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    # -- the runtime's side --

    def next_event(self, timeout: float | None = None) -> PendingEvent | None:
        """Block until an event is submitted; None once closed (or after `timeout`)."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._lock:
            if self.first_next_at is None:
                self.first_next_at = self._clock()
                self._lock.notify_all()
            while self._queued is None and not self._closed:
                remaining = None if deadline is None else deadline - self._clock()
                if remaining is not None and remaining <= 0:
                    return None
                self._lock.wait(remaining)
            if self._closed:
                return None
            event, self._queued = self._queued, None
            assert event is not None
            self._picked_up[event.request_id] = self._clock()
            return event

    def post(self, kind: str, request_id: str | None, body: bytes, size: int, error_type: str | None) -> None:
        with self._lock:
            key = None if kind == "init_error" else request_id
            if key is not None and key not in self._picked_up:
                return  # not an invocation this environment is running: ignore, still 202
            self._outcomes.setdefault(key, Outcome(kind, request_id, body, size, error_type, self._clock()))
            self._lock.notify_all()


_NEXT = re.compile(rf"^{API_PREFIX}/invocation/next$")
_RESPONSE = re.compile(rf"^{API_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")
_INIT_ERROR = re.compile(rf"^{API_PREFIX}/init/error$")


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connection
    server: _RuntimeApiHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per call would drown the function's own logs."""

    def do_GET(self) -> None:
        if not _NEXT.match(self.path.split("?", 1)[0]):
            self._answer(404, b'{"errorMessage":"not found","errorType":"InvalidRequest"}')
            return
        event = self.server.core.next_event()
        if event is None:  # the environment is being shut down
            self._answer(410, b'{"errorMessage":"environment closed","errorType":"Gone"}', close=True)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(event.body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", event.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + event.timeout_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", event.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", event.trace_id)
        self.end_headers()
        self.wfile.write(event.body)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body, size = self._read_body()
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        response = _RESPONSE.match(path)
        if response:
            kind = response.group("kind")
            self.server.core.post(kind, response.group("id"), body, size, error_type if kind == "error" else None)
        elif _INIT_ERROR.match(path):
            self.server.core.post("init_error", None, body, size, error_type)
        self._answer(202, b'{"status":"OK"}')

    def _answer(self, status: int, body: bytes, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> tuple[bytes, int]:
        """(kept body, full size): Content-Length or chunked; over the cap it is counted only."""
        kept = bytearray()
        size = 0

        def take(count: int) -> None:
            nonlocal size
            while count > 0:
                chunk = self.rfile.read(min(count, _READ_CHUNK))
                if not chunk:
                    raise ConnectionError("runtime closed the connection mid-body")
                count -= len(chunk)
                size += len(chunk)
                if len(kept) + len(chunk) <= MAX_KEPT_BODY_BYTES:
                    kept.extend(chunk)

        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024)
                chunk_size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if chunk_size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                take(chunk_size)
                self.rfile.readline(8)  # CRLF after each chunk
        else:
            take(int(self.headers.get("Content-Length") or 0))
        return (bytes(kept) if size <= MAX_KEPT_BODY_BYTES else b""), size


class _RuntimeApiHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, core: RuntimeApiCore) -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.core = core

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        # Without it, each small write waits for the peer's delayed ACK: ~40-90 ms per call.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A killed runtime drops its connection mid-call: expected, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class RuntimeApiServer:
    """The HTTP shell: serves one `RuntimeApiCore` on a free loopback port."""

    def __init__(self, core: RuntimeApiCore) -> None:
        self.core = core
        self._server = _RuntimeApiHttpServer(core)
        # A short poll interval: shutdown() waits for it, and environments are replaced often.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="lambdavision-runtime-api", daemon=True
        )
        self._closed = False

    @property
    def address(self) -> str:
        """`host:port`, the form AWS_LAMBDA_RUNTIME_API takes (no scheme)."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.core.close()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RuntimeApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
