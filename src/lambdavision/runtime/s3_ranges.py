"""A model on S3 read the way S3 is fast: parallel byte-range GETs, fed in order to the streaming unpack.

S3 gives each connection roughly 85-90 MB/s and recommends concurrent byte-range GETs of 8-16 MB
for large objects (AWS, "Performance design patterns for Amazon S3"). So:

- the first GET asks for the first 8 MiB (`FIRST_BYTES`); an object no larger comes whole in that
  one GET, read as before (`runtime.s3get`), and so does the answer of a server that ignores ranges;
- for a larger object, its 206 answer gives the size and ETag, and the rest is cut into parts
  (`plan`): as many connections as the unpack can use at this vCPU share, ~9 per vCPU (it digests
  ~750 MB/s per vCPU less what the imports beside it take; a connection brings 50-65 MB/s once
  its first-byte latency is paid on each 4-8 MiB part), 2 to 8
  (`LAMBDAVISION_S3_CONNECTIONS` overrides; 1 reads the object in one GET); parts of 32 MiB /
  connections (4 MiB at 8 connections, at most 8 MiB), smaller when the object has fewer than
  that per connection;
- parts are fetched by background threads, at most `connections` at once and only from the
  first read on (a cache hit downloads nothing more), and handed to the reader strictly in
  order. The parts ahead of the reader are what makes the connections parallel, so they are
  held in memory: at most the first 8 MiB + 32 MiB. A reader that stops early (before a .pth)
  closes them all: what it leaves unread is at most those 32 MiB, the rest is never asked for;
- each part is retried on its own from where it stopped (connection failure, 5xx, a stall past
  LAMBDAVISION_S3_TIMEOUT, a short answer), up to `ATTEMPTS` times, with `If-Match: <ETag>`: an
  object replaced meanwhile answers 412 (or another ETag or size) and the read fails with
  `ObjectChanged` — the caller starts over on the new version — never mixing two versions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import mmap
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

from lambdavision.core.errors import ArtifactError, ObjectChanged
from lambdavision.core.sigv4 import GetRequest
from lambdavision.runtime import s3get
from lambdavision.runtime.range_get import CONTENT_RANGE, Retry, filling, open_range, read_into, transient
from lambdavision.runtime.s3_object import S3Object

MIB = 1024 * 1024
FIRST_BYTES = 8 * MIB  # AWS's typical range size; an object up to this size keeps one GET
PART_BYTES = 8 * MIB  # the largest part
WINDOW_BYTES = 32 * MIB  # parts in flight ahead of the reader, together: its memory bound
MIN_PART_BYTES = 1 * MIB
BLOCK = 1 * MIB
ATTEMPTS = 3


def plan(total: int, connections: int, first: int = FIRST_BYTES) -> list[tuple[int, int]]:
    """[start, end) of each part of a `total`-byte object whose first `first` bytes come first."""
    if total <= first:
        return [(0, total)]
    connections = max(1, connections)
    cap = min(PART_BYTES, max(MIN_PART_BYTES, WINDOW_BYTES // connections))
    share = math.ceil((total - first) / connections)
    size = max(MIN_PART_BYTES, min(cap, -(-share // (64 * 1024)) * 64 * 1024))
    return [(0, first), *[(start, min(start + size, total)) for start in range(first, total, size)]]


def open_object(request: GetRequest, connections: int) -> S3Object | RangedObject:
    """GET the object's first bytes; the object itself (one GET) if that was all, else a RangedObject.

    `connections` is `S3Settings.connections`: LAMBDAVISION_S3_CONNECTIONS, else ~9 per vCPU, 2..8.
    """
    if connections == 1:
        return s3get.open_get(request)
    ranged = dataclasses.replace(request, headers={**request.headers, "Range": f"bytes=0-{FIRST_BYTES - 1}"})
    try:
        first = s3get.open_get(ranged)
    except ArtifactError as exc:
        if " S3 said InvalidRange:" not in exc.message:
            raise
        return s3get.open_get(request)  # an empty object has no byte 0: S3 answers 416 to any range
    match = CONTENT_RANGE.fullmatch((first.content_range or "").strip())
    if match is None or not first.etag or int(match.group(3)) <= FIRST_BYTES:
        return first  # the whole object (or a server without ranges, or no ETag to pin a version)
    return RangedObject(request, first, int(match.group(3)), plan(int(match.group(3)), connections), connections)


@dataclasses.dataclass(eq=False)
class _Part:
    """One range: its bytes land in an anonymous memory map, handed to the next part once read.

    Not in bytes objects: glibc keeps the freed blocks of the fetch threads' malloc arenas, and a
    ResNet-50's download then left ~20 MB more resident for the environment's whole life; the maps
    go back to the OS the moment they are closed, with the object. Reused, they fault no new pages.
    """

    start: int
    end: int
    buffer: mmap.mmap | None = None
    received: int = 0  # bytes taken off the network into `buffer`
    consumed: int = 0  # bytes handed to the reader
    error: BaseException | None = None
    finished: bool = False
    sock: socket.socket | None = None

    @property
    def size(self) -> int:
        return self.end - self.start


def _unmap(buffer: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):  # a fetch that outlived close() still writes to it
        buffer.close()


class RangedObject:
    """An object read by parallel ranged GETs; the same surface as `S3Object` (`stream.read`).

    Threads and a condition, not concurrent.futures: the reader takes a part's bytes while they
    arrive (a Future holds only a finished result), and a worker waits on the reader's position
    (the window), which a pool's queue cannot express.
    """

    def __init__(
        self, request: GetRequest, first: S3Object, total: int, parts: list[tuple[int, int]], window: int
    ) -> None:
        self.uri = self.name = first.uri
        self.etag = first.etag
        self.last_modified = first.last_modified
        self.content_length = total
        self.stream = self
        self._request = request
        self._first = first
        self._parts = [_Part(start, end) for start, end in parts]
        self._window = window
        self._head = 0  # the part the reader is at
        self._next = 0  # the next part a worker takes
        self._threads: list[threading.Thread] = []
        self._spare: list[mmap.mmap] = []  # maps of parts read, for the next parts
        self._cond = threading.Condition()
        self._stopping = False
        self._closed = False

    # -- the reader's side --

    @property
    def bytes_read(self) -> int:
        """Bytes taken off the network so far, every part together."""
        return sum(part.received for part in self._parts)

    @property
    def closed(self) -> bool:
        return self._closed

    def read(self, size: int = -1) -> bytes:
        if self._closed:
            raise ValueError(f"{self.uri}: read of a closed S3 body")
        with self._cond:
            self._launch()
            while self._head < len(self._parts):
                part = self._parts[self._head]
                while part.consumed == part.received and not part.finished:
                    self._cond.wait()
                if part.consumed < part.received and part.buffer is not None:
                    return self._take(part, size)
                if part.error is not None:
                    raise part.error
                if part.received != part.size:  # only a closed object stops a fetch short
                    raise ValueError(f"{self.uri}: read of a closed S3 body")
                if part.buffer is not None:
                    self._spare.append(part.buffer)
                    part.buffer = None
                self._head += 1
                self._cond.notify_all()  # a worker may take the part the window now allows
            return b""

    def _take(self, part: _Part, size: int) -> bytes:
        """A copy of what has arrived (at most `size`, else a block): the map is reused no further."""
        assert part.buffer is not None
        count = part.received - part.consumed
        count = min(count, size) if size >= 0 else min(count, BLOCK)
        data = part.buffer[part.consumed : part.consumed + count]
        part.consumed += count
        return data

    def _launch(self) -> None:
        """On the first read: start the workers from a thread of their own (Thread.start waits for
        each new thread to run: under a fraction of a CPU, ~5 ms apiece the reader need not wait)."""
        if not self._threads:
            launcher = threading.Thread(target=self._start_workers, name="lambdavision-s3-ranges", daemon=True)
            self._threads.append(launcher)
            launcher.start()

    def _start_workers(self) -> None:
        for number in range(min(self._window, len(self._parts))):
            worker = threading.Thread(target=self._work, name=f"lambdavision-s3-range-{number}", daemon=True)
            with self._cond:
                if self._stopping:
                    return
                self._threads.append(worker)
            worker.start()

    def _work(self) -> None:
        """Fetch parts in order, at most `window` ahead of the reader, until none are left."""
        while True:
            with self._cond:
                while not self._stopping and len(self._parts) > self._next >= self._head + self._window:
                    self._cond.wait()
                if self._stopping or self._next >= len(self._parts):
                    return
                index, self._next = self._next, self._next + 1
                part = self._parts[index]
                fits = [m for m in self._spare if len(m) >= part.size]
                if fits:
                    self._spare.remove(fits[0])
                part.buffer = fits[0] if fits else None
            if part.buffer is None:
                part.buffer = mmap.mmap(-1, part.size)
            self._fetch(part, self._first if index == 0 else None)

    def close(self) -> None:
        """Stop every fetch (waking those waiting on a socket) and let their threads end."""
        with self._cond:
            self._stopping = self._closed = True
            self._cond.notify_all()
            parts = list(self._parts)
        for part in parts:
            if part.sock is not None:
                with contextlib.suppress(OSError):
                    part.sock.shutdown(socket.SHUT_RDWR)
        self._first.close()
        with self._cond:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        with self._cond:
            maps = [*self._spare, *(part.buffer for part in parts if part.buffer is not None)]
            self._spare.clear()
            for part in parts:
                part.buffer = None
        for buffer in maps:
            _unmap(buffer)

    def __enter__(self) -> RangedObject:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- the fetchers' side --

    def _fetch(self, part: _Part, first: S3Object | None) -> None:
        failures = 0
        try:
            while part.received < part.size and not self._stopping:
                try:
                    if first is not None:  # part 0 arrives on the first GET's own answer
                        source, first = first, None
                        self._pump(part, filling(source.stream.read))
                    else:
                        self._fetch_once(part)
                except (Retry, ArtifactError) as exc:
                    if isinstance(exc, ObjectChanged) or (isinstance(exc, ArtifactError) and not transient(exc)):
                        raise
                    failures += 1
                    if failures >= ATTEMPTS:
                        what = exc.message if isinstance(exc, ArtifactError) else str(exc)
                        raise ArtifactError(
                            f"{self.uri}: cannot read bytes {part.start + part.received}-{part.end - 1} from S3 "
                            f"after {ATTEMPTS} attempts: {what}"
                        ) from exc
                    time.sleep(s3get.RETRY_PAUSE_S * failures)
        except BaseException as exc:  # handed to the reader, in order
            with self._cond:
                part.error = exc
        finally:
            with self._cond:
                part.finished = True
                self._cond.notify_all()

    def _fetch_once(self, part: _Part) -> None:
        offset, last = part.start + part.received, part.end - 1
        try:
            connection, response = open_range(
                self._request, self.etag, self.content_length, offset, last, lambda sock: setattr(part, "sock", sock)
            )
            try:
                self._pump(part, lambda view: read_into(response, view, self._request.timeout))
            finally:
                connection.close()
        finally:
            part.sock = None

    def _pump(self, part: _Part, read_into: Callable[[memoryview], int]) -> None:
        """Fill the part's map from `read_into`, waking the reader after each piece."""
        assert part.buffer is not None
        with memoryview(part.buffer) as view:
            while part.received < part.size:
                if self._stopping:
                    return
                with view[part.received : min(part.size, part.received + BLOCK)] as room:
                    count = read_into(room)
                if not count:
                    raise Retry(f"the answer ended after {part.received} of the part's {part.size} bytes")
                with self._cond:
                    part.received += count
                    self._cond.notify_all()


__all__ = ["FIRST_BYTES", "ObjectChanged", "RangedObject", "open_object", "plan"]
