"""S3 as a Lambda function meets it, on loopback: a stand-in in front of moto that shapes each connection.

moto answers at memory speed, so on loopback a model download looks free. This stand-in listens
on 127.0.0.1 and gives every response what S3 over a real network costs:

- a first-byte latency: the status line leaves `latency_s` after the request arrived (moto's own
  time is part of it, as S3's is of its latency; a slower moto is not slowed further);
- a bandwidth per connection: the body is paced at `bandwidth` bytes/s from its first byte;
- optionally an aggregate cap shared by every connection (`aggregate`, bytes/s).

The defaults are AWS's published figures (`DEFAULT_SHAPING`; the README cites them): first-byte
latencies of small GETs "often in the tens of milliseconds", and one concurrent request per
85-90 MB/s of throughput (so ~85 MB/s per connection).

Object GETs (path-style `/bucket/key`, no query) are served here, from moto's bytes: moto answers a
ranged GET by reading the whole object first (~60 ms per range of a 100 MB object), which real S3
does not, so parallel ranged GETs through moto would measure moto. Each GET first asks moto for
the object's metadata (a HEAD with the caller's own headers: moto's answer, an error included,
decides), then serves the current version's bytes from a cache keyed by ETag, with S3's `Range`
(206, `Content-Range`; 416 `InvalidRange`) and `If-Match` (412 `PreconditionFailed`) semantics.
Every other request (uploads, listings, conditional GETs) is forwarded to moto as it came.
Hand-written: no stdlib or listed library shapes HTTP responses per connection.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MB = 1_000_000
# AWS, "Performance design patterns for Amazon S3" and "Timeouts and retries for latency-sensitive applications".
DEFAULT_LATENCY_S = 0.030
DEFAULT_BANDWIDTH = 85 * MB
CHUNK_BYTES = 64 * 1024  # paced in 64 KiB steps: 0.8 ms each at 85 MB/s
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect"})
_CONDITIONS = ("if-none-match", "if-modified-since", "if-unmodified-since")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Shaping:
    """What each response costs: first-byte latency (s); bandwidth per connection and in all (B/s; None: unlimited)."""

    latency_s: float = DEFAULT_LATENCY_S
    bandwidth: float | None = DEFAULT_BANDWIDTH
    aggregate: float | None = None

    def __post_init__(self) -> None:
        if not self.latency_s >= 0:
            raise ValueError(f"latency must be >= 0 s, got {self.latency_s}")
        for name in ("bandwidth", "aggregate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 bytes/s (or None for unlimited), got {value}")

    @property
    def shaped(self) -> bool:
        return self.latency_s > 0 or self.bandwidth is not None or self.aggregate is not None

    def describe(self) -> str:
        if not self.shaped:
            return "loopback (no shaping)"
        parts = [f"{self.latency_s * 1000:g} ms to the first byte"]
        parts.append(
            "unlimited per connection" if self.bandwidth is None else f"{self.bandwidth / MB:g} MB/s per connection"
        )
        if self.aggregate is not None:
            parts.append(f"{self.aggregate / MB:g} MB/s in all")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, float | None]:
        return {
            "latency_ms": self.latency_s * 1000,
            "bandwidth_mb_s": _mb(self.bandwidth),
            "aggregate_mb_s": _mb(self.aggregate),
        }


DEFAULT_SHAPING = Shaping()
LOOPBACK = Shaping(latency_s=0.0, bandwidth=None, aggregate=None)


def _mb(value: float | None) -> float | None:
    return None if value is None else value / MB


class _Pacer:
    """When the next bytes may leave: per transfer (its own rate) and shared (the aggregate cap)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = 0.0

    def reserve(self, size: int) -> float:
        """The time at which `size` more bytes may be sent under the shared cap (booked now)."""
        if self.rate is None:
            return 0.0
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + size / self.rate
            return start


@dataclass
class _Object:
    etag: str
    body: bytes
    headers: list[tuple[str, str]]


class ShapedS3:
    """The stand-in: `with ShapedS3(moto_url, shaping) as s3: s3.url` (an http://127.0.0.1:PORT endpoint)."""

    def __init__(self, upstream: str, shaping: Shaping = DEFAULT_SHAPING, *, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the stand-in fronts a loopback http:// server (moto), not {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.shaping = shaping
        self.aggregate = _Pacer(shaping.aggregate)
        self._cache: dict[str, _Object] = {}
        self._cache_lock = threading.Lock()
        self.requests = 0
        self.bytes_sent = 0
        self.object_reads = 0  # whole objects read from moto into the cache
        self._counter_lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._server = _Server(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="shaped-s3", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ShapedS3:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ShapedS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, sent: int) -> None:
        with self._counter_lock:
            self.bytes_sent += sent

    # -- talking to moto --

    def upstream_call(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders(body)
            response = connection.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        finally:
            connection.close()

    def current(
        self, target: str, headers: Mapping[str, str]
    ) -> _Object | tuple[int, str, list[tuple[str, str]], bytes]:
        """The object's current version (cached by ETag), or moto's answer when it is not a 200."""
        plain = {k: v for k, v in headers.items() if k.lower() not in ("range", "if-match", "content-length")}
        status, _reason, head_headers, _ = self.upstream_call("HEAD", target, plain, None)
        etag = _header(head_headers, "etag")
        with self._cache_lock:
            cached = self._cache.get(target)
        if status == 200 and etag and cached is not None and cached.etag == etag:
            return cached
        answer = self.upstream_call("GET", target, plain, None)
        self.object_reads += 1
        status, _reason, got_headers, body = answer
        if status != 200 or not _header(got_headers, "etag"):
            return answer
        kept = [(k, v) for k, v in got_headers if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
        fresh = _Object(_header(got_headers, "etag") or "", body, kept)
        with self._cache_lock:
            self._cache[target] = fresh
        return fresh


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _bare(etag: str) -> str:
    return etag.strip().removeprefix("W/").strip('"')


def _error_xml(code: str, message: str, **extra: str) -> bytes:
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"{fields}<RequestId>shaped-s3</RequestId></Error>"
    ).encode()


def byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """S3's reading of a Range header: (first, last) inclusive, None for the whole object, "416" if unsatisfiable."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:  # several ranges or a malformed header: S3 sends the whole object
        return None
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        if first >= size:
            return "416"
        last = min(int(last_text), size - 1) if last_text else size - 1
        return None if last < first else (first, last)
    if last_text:  # the last N bytes
        count = int(last_text)
        return "416" if count == 0 else (max(0, size - count), size - 1)
    return None


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # parallel ranged GETs open many connections at once: no SYN drops

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hangs up mid-body (a reader that stopped early) is no error here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stand_in: ShapedS3
    server_version = "AmazonS3"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        arrived, method = time.monotonic(), self.command
        with self.stand_in._counter_lock:
            self.stand_in.requests += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        path_parts = self.path.split("?", 1)[0].strip("/").split("/", 1)
        is_object_get = (
            method == "GET" and "?" not in self.path and len(path_parts) == 2 and path_parts[1] != ""
            and not any(k.lower() in _CONDITIONS for k in headers)
        )  # fmt: skip
        if is_object_get:
            found = self.stand_in.current(self.path, headers)
            if isinstance(found, _Object):
                self._send_object(found, arrived)
                return
            status, reason, answer_headers, data = found
        else:
            status, reason, answer_headers, data = self.stand_in.upstream_call(method, self.path, headers, body)
        kept = [(k, v) for k, v in answer_headers if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
        self._send(
            status, reason, kept, data, arrived, head=method == "HEAD", length=_header(answer_headers, "content-length")
        )

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _serve

    def _send_object(self, obj: _Object, arrived: float) -> None:
        if_match = self.headers.get("If-Match")
        if if_match is not None and _bare(if_match) != _bare(obj.etag) and if_match.strip() != "*":
            body = _error_xml(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                Condition="If-Match",
            )
            self._send(412, "Precondition Failed", [("Content-Type", "application/xml")], body, arrived)
            return
        size = len(obj.body)
        wanted = byte_range(self.headers.get("Range"), size)
        if wanted == "416":
            body = _error_xml(
                "InvalidRange",
                "The requested range is not satisfiable",
                RangeRequested=self.headers.get("Range", ""),
                ActualObjectSize=str(size),
            )
            self._send(
                416,
                "Requested Range Not Satisfiable",
                [("Content-Type", "application/xml"), ("Content-Range", f"bytes */{size}")],
                body,
                arrived,
            )
            return
        headers = list(obj.headers)
        if not any(k.lower() == "accept-ranges" for k, _ in headers):
            headers.append(("Accept-Ranges", "bytes"))
        if isinstance(wanted, tuple):
            first, last = wanted
            headers = [(k, v) for k, v in headers if not k.lower().startswith("x-amz-checksum-")]
            headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
            self._send(206, "Partial Content", headers, memoryview(obj.body)[first : last + 1], arrived)
            return
        self._send(200, "OK", headers, memoryview(obj.body), arrived)

    def _send(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        body: bytes | memoryview,
        arrived: float,
        *,
        head: bool = False,
        length: str | None = None,
    ) -> None:
        shaping = self.stand_in.shaping
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", length if head and length is not None else str(len(body)))
        _sleep_until(arrived + shaping.latency_s)
        self.end_headers()  # the first byte leaves now
        if not head:
            sent = 0
            try:
                for chunk in self._paced(memoryview(body)):
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except OSError:  # the client went away (closed a range it no longer needs)
                self.close_connection = True
            self.stand_in.count(sent)

    def _paced(self, body: memoryview) -> Iterator[memoryview]:
        """The body in chunks, each released when both the connection's rate and the aggregate allow."""
        shaping = self.stand_in.shaping
        if shaping.bandwidth is None and shaping.aggregate is None:
            yield body
            return
        started, sent = time.monotonic(), 0
        while sent < len(body):
            chunk = body[sent : sent + CHUNK_BYTES]
            # A chunk leaves when its last byte is due: the body takes exactly size / bandwidth.
            due = started + (sent + len(chunk)) / shaping.bandwidth if shaping.bandwidth is not None else 0.0
            _sleep_until(max(due, self.stand_in.aggregate.reserve(len(chunk))))
            yield chunk
            sent += len(chunk)


def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        time.sleep(delay)


__all__ = [
    "DEFAULT_BANDWIDTH",
    "DEFAULT_LATENCY_S",
    "DEFAULT_SHAPING",
    "LOOPBACK",
    "MB",
    "ShapedS3",
    "Shaping",
    "byte_range",
]
