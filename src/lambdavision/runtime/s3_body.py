"""The body of an S3 GET as a file object: errors in S3's words, blocks read ahead, closable early.

`runtime.s3get` opens the GET; `S3Object` is what it hands back: `stream.read(n)`, the ETag and the
length, and `close()` that drops the connection without reading the rest (a cache hit, or a reader
that stops before the TorchScript copy).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from lambdavision.core.errors import ArtifactError
from lambdavision.core.sigv4 import GetRequest
from lambdavision.runtime.settings import S3_TIMEOUT_ENV

CHUNK_BYTES = 1024 * 1024


class _Body(io.RawIOBase):
    """The response body: socket failures and a short body become ArtifactError naming the URI."""

    def __init__(
        self,
        request: GetRequest,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        sock: socket.socket | None,
    ):
        super().__init__()
        self._request = request
        self._connection = connection
        self._response = response
        # Kept from before getresponse(): with `Connection: close` http.client drops connection.sock,
        # and interrupt() still has to reach the socket the body is read from.
        self._sock = sock
        self.length = response.length  # None when chunked or close-delimited
        self.bytes_read = 0

    @property
    def name(self) -> str:
        return self._request.uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        # read1: what has arrived, without waiting to fill the buffer (the count stays exact).
        data = self._take(self._response.read1, len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def fetch(self, size: int) -> bytes:
        """Up to `size` bytes, waiting for all of them unless the body ends first; b"" at its end."""
        parts: list[bytes] = []
        got = 0
        while got < size:
            data = self._take(self._response.read1, size - got)  # counted piece by piece, for errors
            if not data:
                break
            parts.append(data)
            got += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _take(self, read: Callable[[int], bytes], size: int) -> bytes:
        uri = self._request.uri
        try:
            data = read(size)
        except TimeoutError as exc:
            raise ArtifactError(
                f"{uri}: cannot read from S3: no data for {self._request.timeout:g} s after "
                f"{self.bytes_read} of {self._of()} bytes ({S3_TIMEOUT_ENV})"
            ) from exc
        except http.client.IncompleteRead as exc:
            raise ArtifactError(f"{uri}: cannot read from S3: the body is truncated ({exc})") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ArtifactError(
                f"{uri}: cannot read from S3: the connection failed after {self.bytes_read} of "
                f"{self._of()} bytes ({describe(exc)})"
            ) from exc
        self.bytes_read += len(data)
        if not data and size > 0 and self.length is not None and self.bytes_read < self.length:
            raise ArtifactError(
                f"{uri}: cannot read from S3: the body is truncated: the connection closed after "
                f"{self.bytes_read} of {self.length} bytes"
            )
        return data

    def interrupt(self) -> None:
        """Wake a read blocked in another thread (it then fails) before the connection is closed."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def _of(self) -> str:
        return "?" if self.length is None else str(self.length)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._connection.close()
        super().close()


class _ReadAhead:
    """The body as a file object whose `read` is served by blocks fetched ahead in another thread.

    The download then overlaps what the caller does with each block (gunzip, tar, hashing): the
    fetching thread spends its time in socket reads, which release the GIL. Fetches start on the
    first read, so a body never read (a cache hit) is never downloaded, and at most `DEPTH` 1 MiB
    blocks are in flight. One worker runs the fetches, so blocks come in order; a fetch's failure
    is raised by the read that reaches it, in the body's words.
    """

    DEPTH = 4

    def __init__(self, body: _Body) -> None:
        self._body = body
        self.name = body.name
        self._ahead: deque[Future[bytes]] = deque()
        self._worker: ThreadPoolExecutor | None = None
        self._current = b""
        self._offset = 0
        self._ended = False
        self._closed = False

    def read(self, size: int = -1) -> bytes:
        if self._closed:
            raise ValueError(f"{self.name}: read of a closed S3 body")
        if self._offset >= len(self._current) and not self._next_block():
            return b""
        if size < 0 or size >= len(self._current) - self._offset:
            data = self._current[self._offset :] if self._offset else self._current  # no copy if whole
            self._current, self._offset = b"", 0
            return data
        data = self._current[self._offset : self._offset + size]
        self._offset += size
        return data

    def _next_block(self) -> bool:
        if self._ended:
            return False
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambdavision-s3-read")
        while len(self._ahead) < self.DEPTH:
            self._ahead.append(self._worker.submit(self._body.fetch, CHUNK_BYTES))
        try:
            block = self._ahead.popleft().result()
        except BaseException:
            self._ended = True
            raise
        if not block:
            self._ended = True
            return False
        self._current, self._offset = block, 0
        return True

    def close(self) -> None:
        """Stop fetching (waking a fetch that waits on the socket) and let the worker finish."""
        self._closed = True
        if self._worker is None:
            return
        for pending in self._ahead:
            pending.cancel()
        self._ahead.clear()
        self._body.interrupt()
        self._worker.shutdown(wait=True)
        self._worker = None


class S3Object:
    """An S3 object being read: `stream` (file-like, `read(n)`), its ETag and length. Close it."""

    def __init__(
        self,
        request: GetRequest,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        sock: socket.socket | None = None,
    ):
        self.uri = request.uri
        self.etag = (response.getheader("ETag") or "").strip().strip('"')
        self.last_modified = response.getheader("Last-Modified")
        self.content_range = response.getheader("Content-Range")  # when a Range was asked (206)
        self._body = _Body(request, connection, response, sock)
        self.content_length = self._body.length
        self.stream = _ReadAhead(self._body)

    @property
    def bytes_read(self) -> int:
        """Body bytes taken off the connection so far."""
        return self._body.bytes_read

    @property
    def closed(self) -> bool:
        return self._body.closed

    def close(self) -> None:
        """Close without reading the rest: the connection is dropped, the body never downloaded."""
        self.stream.close()
        self._body.close()

    def __enter__(self) -> S3Object:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, http.client.HTTPException):
        return f"malformed response ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


__all__ = ["CHUNK_BYTES", "S3Object", "describe"]
