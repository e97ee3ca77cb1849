"""A runtime process's output to the log sink, one prefixed line at a time, as CloudWatch gets it."""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import select
import termios
import threading
from collections.abc import Callable
from typing import IO

# CloudWatch Logs' largest event: a longer line is cut into several.
MAX_LOG_LINE_BYTES = 256 * 1024
_READ_CHUNK = 65536


class LogForwarder:
    """Copies the process's output to the log sink, one prefixed line at a time.

    Reads only under a lock, one chunk per lock hold, so `drain()` (called when an answer
    arrives) can guarantee every byte the function wrote before answering is out before the
    REPORT line, and still returns while a background thread of the function keeps printing.
    """

    def __init__(self, stream: IO[bytes], write_line: Callable[[str], None], prefix: Callable[[], str]) -> None:
        self._stream = stream  # owns the descriptor: closed once, through it
        self._fd = stream.fileno()
        self._write_line = write_line
        self._prefix = prefix
        self._lock = threading.Lock()
        self._partial = bytearray()
        self._eof = False
        os.set_blocking(self._fd, False)
        self._thread = threading.Thread(target=self._run, name="lambdavision-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def drain(self) -> None:
        """Forward what is in the pipe now (not what arrives meanwhile), then any partial line."""
        with self._lock:
            remaining = self._pending_bytes()
            while remaining > 0 and not self._eof:
                read = self._read_chunk(min(remaining, _READ_CHUNK))
                if read == 0:
                    break
                remaining -= read
            self._flush_partial()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        poller = select.poll()  # not select.select: descriptors above 1023 are fine
        poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while not self._eof:
            if poller.poll(500):
                with self._lock:  # one chunk per hold: drain() never waits behind a flood
                    self._read_chunk(_READ_CHUNK)
        with self._lock:
            self._flush_partial()
            with contextlib.suppress(OSError):
                self._stream.close()

    def _pending_bytes(self) -> int:
        if self._eof:
            return 0
        try:
            count = array.array("i", [0])
            fcntl.ioctl(self._fd, termios.FIONREAD, count)
        except OSError:
            return 0
        return count[0]

    def _read_chunk(self, size: int) -> int:
        """Read and forward at most `size` bytes; how many were read (0: nothing or end)."""
        if self._eof:
            return 0
        try:
            chunk = os.read(self._fd, size)
        except BlockingIOError:
            return 0
        except OSError:
            self._eof = True
            return 0
        if not chunk:
            self._eof = True
            return 0
        self._take(chunk)
        return len(chunk)

    def _take(self, chunk: bytes) -> None:
        # Newlines are looked for in the new chunk only: a long line costs linear time.
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._append(chunk[start:end])
            self._emit(bytes(self._partial))
            self._partial.clear()
            start = end + 1
        self._append(chunk[start:])

    def _append(self, piece: bytes) -> None:
        """Add to the current line, cutting it at CloudWatch's event size as it grows."""
        self._partial += piece
        while len(self._partial) > MAX_LOG_LINE_BYTES:
            self._emit(bytes(self._partial[:MAX_LOG_LINE_BYTES]))
            del self._partial[:MAX_LOG_LINE_BYTES]

    def _flush_partial(self) -> None:
        if self._partial:
            self._emit(bytes(self._partial))
            self._partial.clear()

    def _emit(self, raw: bytes) -> None:
        # awslambdaric ends the lines of a multi-line error with "\r": split them too.
        prefix = self._prefix()
        for line in raw.decode("utf-8", errors="replace").split("\r"):
            if line:
                self._write_line(f"{prefix} {line}")


__all__ = ["MAX_LOG_LINE_BYTES", "LogForwarder"]
