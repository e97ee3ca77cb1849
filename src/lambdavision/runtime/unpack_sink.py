"""Where an unpacked model's big members go: files in the serving folder, hashed as they are written.

`core.artifact_scan` hands the ONNX graph and its weights to a `MemberSink`; this is the one that
writes files. A write failure (disk full, read-only) is a CacheWriteError, so the model source
can fall back to memory.
"""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from lambdavision.core.errors import CacheWriteError


class FolderSink:
    """Streams members into `folder`, each hashed and written by a worker a few MiB behind the reader.

    Hashing and writing run in a second thread while the caller's reads (the download, gunzip and
    tar parsing) go on: sha256, file writes, zlib and socket reads all release the GIL, so on two
    cores a 100 MB model unpacks in about the time of the slower half instead of the sum: 129 -> ~80 ms
    from memory. Read from the benchmarks' shaped S3 by ranged GETs (`benchmarks/threads_ab.py MODEL`,
    102 MB ResNet-50): a median 492 ms with the thread against 531 ms inline on a quiet machine (9 runs),
    with the 2 cores busy 1,223 against 1,424 and 1,127 against 1,205 ms, once 783 against 690 (5 runs).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / name

    def open(self, name: str, source: str) -> HashingWriter:
        target = self.folder / name
        try:
            out = open(target, "wb")  # noqa: SIM115 - closed by the writer; write errors must be told apart
        except OSError as exc:
            raise CacheWriteError(f"{source}: cannot write {target} ({exc})") from exc
        return HashingWriter(out, f"{source}: cannot write {target}")


def folder_sink(onnx_dir: Path | None) -> FolderSink | None:
    return None if onnx_dir is None else FolderSink(onnx_dir)


class HashingWriter:
    """Hashes and writes the chunks it is given, in order, on one worker thread."""

    _DEPTH = 4  # chunks in flight: bounds the extra memory to a few MiB

    def __init__(self, out: IO[bytes], what: str) -> None:
        self._out = out
        self._what = what
        self._digest = hashlib.sha256()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambdavision-unpack")
        self._pending: deque[Future[None]] = deque()

    def put(self, chunk: bytes) -> None:
        if len(self._pending) >= self._DEPTH:
            self._wait(self._pending.popleft())
        self._pending.append(self._worker.submit(self._write, chunk))

    def close(self) -> None:
        """Wait for the writes and close the file; CacheWriteError if one failed."""
        failure: BaseException | None = None
        for pending in self._pending:
            failure = failure or pending.exception()
        self._pending.clear()
        self._worker.shutdown(wait=True)
        try:
            self._out.close()
        except OSError as exc:
            failure = failure or exc
        if failure is not None:
            raise CacheWriteError(f"{self._what} ({failure})") from failure

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def _write(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._out.write(chunk)

    def _wait(self, pending: Future[None]) -> None:
        try:
            pending.result()
        except OSError as exc:
            raise CacheWriteError(f"{self._what} ({exc})") from exc


__all__ = ["FolderSink", "HashingWriter", "folder_sink"]
