"""An S3 object being read: `stream.read(n)` served by blocks fetched ahead, its ETag and length.

`runtime.s3get.open_get` hands one back; `close()` drops the connection without reading the rest
(a cache hit, or a reader that stops before the TorchScript copy).
"""

from __future__ import annotations

import http.client
import socket
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from lambdavision.core.sigv4 import GetRequest
from lambdavision.runtime.s3_body import Body

CHUNK_BYTES = 1024 * 1024


class _ReadAhead:
    """The body as a file object whose `read` is served by blocks fetched ahead in another thread.

    The download then overlaps what the caller does with each block (gunzip, tar, hashing): the
    fetching thread spends its time in socket reads, which release the GIL. Fetches start on the
    first read, so a body never read (a cache hit) is never downloaded, and at most `DEPTH` 1 MiB
    blocks are in flight. One worker runs the fetches, so blocks come in order; a fetch's failure
    is raised by the read that reaches it, in the body's words.

    Measured (`benchmarks/threads_ab.py MODEL --runs N`: a 102 MB ResNet-50 artifact by one GET from the
    benchmarks' shaped S3, 30 ms to the first byte, 85 MB/s): on a quiet machine it buys nothing, the
    read being bandwidth-bound (1,240 ms with it and without, 9 runs); with the 2 cores busy it bought
    22-590 ms (medians 1,257 / 1,279, 1,257 / 1,359 and 1,482 / 2,074 ms, 5 runs each), the unpack then
    competing for CPU as it does in the function beside its imports. Kept for that; one GET serves objects up to 8 MiB
    and LAMBDAVISION_S3_CONNECTIONS=1 only (larger ones: `runtime.s3_ranges`).
    """

    DEPTH = 4

    def __init__(self, body: Body) -> None:
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
        self._body = Body(request, connection, response, sock)
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


__all__ = ["CHUNK_BYTES", "S3Object"]
