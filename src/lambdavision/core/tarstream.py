"""The byte layer under the artifact reader: gunzip with a cap, and tar headers with caps.

Hostile archives attack here before any member is looked at: a gzip bomb, a GNU long name or
PAX record of gigabytes (tarfile reads each into memory whole), or thousands of PAX headers
chained one after the other (tarfile follows them by recursion: 3,000 of them raised a raw
RecursionError after 2 s, each level holding its record). Every such refusal is an ArtifactError.
"""

from __future__ import annotations

import tarfile
import zlib
from typing import Protocol

from lambdavision.core.errors import ArtifactError

_CHUNK = 1024 * 1024
# tar headers (and PAX records) come on top of the members' data; this bounds them in total...
HEADER_SLACK_BYTES = 16 * 1024 * 1024
# ...and each long-name or PAX record alone, which tarfile reads into memory whole...
MAX_HEADER_RECORD_BYTES = 1024 * 1024
# ...and how many extension headers may precede one member (a PAX 'x', a global 'g', GNU 'L'
# and 'K' are all a real archive ever puts there).
MAX_HEADER_CHAIN = 8


class ByteStream(Protocol):
    """What the reader needs of a source: `read(n)` (a file, a socket body, an S3 download)."""

    def read(self, size: int = -1, /) -> bytes: ...


class CappedTarInfo(tarfile.TarInfo):
    """Refuses a GNU long-name/long-link or PAX header record larger than 1 MiB before tarfile reads it."""

    def _proc_gnulong(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        with _Chained(self, tarfile):
            return super()._proc_gnulong(tarfile)  # type: ignore[misc,no-any-return]

    def _proc_pax(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        with _Chained(self, tarfile):
            return super()._proc_pax(tarfile)  # type: ignore[misc,no-any-return]


class _Chained:
    """Counts the extension headers tarfile is following (recursively) for one member."""

    def __init__(self, header: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        if header.size > MAX_HEADER_RECORD_BYTES:
            raise ArtifactError(
                f"a tar header record of {header.size} bytes (over {MAX_HEADER_RECORD_BYTES}); refusing the artifact"
            )
        self._archive = archive

    def __enter__(self) -> None:
        depth = getattr(self._archive, "_lambdavision_chain", 0) + 1
        if depth > MAX_HEADER_CHAIN:
            raise ArtifactError(
                f"more than {MAX_HEADER_CHAIN} extended (PAX or GNU) headers in a row; refusing the artifact"
            )
        self._archive._lambdavision_chain = depth  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        self._archive._lambdavision_chain -= 1  # type: ignore[attr-defined]


class Gunzip:
    """gzip decompression as a file object for tarfile, refusing to yield more than `cap` bytes.

    Written on zlib instead of using gzip.GzipFile because this read is on the cold-start path of
    every model fetched from S3: GzipFile computes the CRC in a second pass and copies each chunk
    twice more through its buffers, ~60 ms of a ResNet-50's 140 ms unpack; zlib checks the gzip
    header, CRC and length itself in the same pass (wbits=31). Concatenated members are read as
    one stream, as gzip does. The cap is the gzip bomb guard.
    """

    _MAGIC = b"\x1f\x8b"

    def __init__(self, raw: ByteStream, cap: int, source: str) -> None:
        self._raw = raw
        self._left = cap
        self._cap = cap
        self._source = source
        self._inflate = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed bytes read but not yet given to zlib
        self._started = False
        self._done = False

    def read(self, size: int = -1) -> bytes:
        want = min(_CHUNK if size < 0 else size, self._left + 1)
        out = b""
        try:
            while not out and not self._done and want > 0:
                out = self._inflate_some(want)
        except zlib.error as exc:  # raised as is, tarfile would call it "not a valid tar archive"
            raise ArtifactError(f"truncated or corrupt gzip data ({exc})") from None
        self._left -= len(out)
        if self._left < 0:
            raise ArtifactError(f"{self._source}: decompresses to more than {self._cap} bytes (limit); refusing it")
        return out

    def _inflate_some(self, want: int) -> bytes:
        if self._inflate.eof and not self._next_member():
            self._done = True
            return b""
        data = self._inflate.unconsumed_tail or self._pending or self._raw.read(_CHUNK)
        self._pending = b""
        if not self._started:
            while 0 < len(data) < len(self._MAGIC) and (more := self._raw.read(_CHUNK)):
                data += more  # a short first read: the magic number needs two bytes
            if not data:
                self._done = True  # an empty file: tarfile says so
                return b""
            self._check_magic(data)
            self._started = True
        if not data:
            raise ArtifactError("truncated or corrupt gzip data (the compressed stream ended inside a member)")
        return self._inflate.decompress(data, want)

    def _next_member(self) -> bool:
        """After a member's end: start the next one (gzip allows concatenation), or tell the end."""
        rest = self._inflate.unused_data.lstrip(b"\0")  # gzip tolerates zero padding after a member
        while not rest:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                return False
            rest = chunk.lstrip(b"\0")
        while len(rest) < len(self._MAGIC) and (more := self._raw.read(_CHUNK)):
            rest += more
        self._check_magic(rest)
        self._inflate = zlib.decompressobj(wbits=31)
        self._pending = rest
        return True

    def _check_magic(self, data: bytes) -> None:
        if data[: len(self._MAGIC)] != self._MAGIC:
            raise ArtifactError(f"not a gzip-compressed tarball (it starts with {data[:2]!r})")


__all__ = ["HEADER_SLACK_BYTES", "MAX_HEADER_CHAIN", "MAX_HEADER_RECORD_BYTES", "ByteStream", "CappedTarInfo", "Gunzip"]
