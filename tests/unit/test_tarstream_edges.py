"""tarstream.Gunzip at its edges: what mutation testing (`make mutate`) found unpinned.

The gunzip under the artifact reader yields at most what it is asked for, exactly up to its cap
(and refuses the byte after it), reads concatenated gzip members with zero padding between them
whatever the source's read boundaries, and pulls from its source only in bounded reads, only as
far as it needs.
"""

from __future__ import annotations

import gzip

import pytest

from lambdavision.core.errors import ArtifactError
from lambdavision.core.tarstream import Gunzip

DATA = bytes(range(256)) * 40  # 10,240 bytes
MIB = 1024 * 1024


class Pieces:
    """A source that hands out the given pieces, one per read, and records the sizes asked for."""

    def __init__(self, *pieces: bytes) -> None:
        self._pieces = list(pieces)
        self.sizes: list[int] = []

    def read(self, size: int = -1, /) -> bytes:
        self.sizes.append(size)
        if not self._pieces:
            return b""
        piece = self._pieces.pop(0)
        if piece == b"BOOM":
            raise AssertionError("read past what was needed")
        return piece


def read_all(gunzip: Gunzip, size: int = -1) -> bytes:
    out = b""
    while chunk := gunzip.read(size):
        out += chunk
    return out


def test_a_read_returns_at_most_the_size_asked_and_all_of_it_in_the_end() -> None:
    """Rule: read(n) gives 1..n bytes until the end; read() a chunk; read(0) nothing; then b'' for good."""
    gunzip = Gunzip(Pieces(gzip.compress(DATA)), cap=len(DATA), source="s")
    assert gunzip.read(0) == b""
    assert gunzip.read(1) == DATA[:1]
    assert gunzip.read(2) == DATA[1:3]
    assert gunzip.read() == DATA[3:]
    assert gunzip.read() == b""
    assert gunzip.read(5) == b""


def test_exactly_the_cap_is_read_and_the_byte_after_it_refused() -> None:
    """Rule: the gzip bomb cap lets through `cap` bytes, however they are read, and not one more."""
    for size in (-1, 7, 1000):
        assert read_all(Gunzip(Pieces(gzip.compress(DATA)), cap=len(DATA), source="s"), size) == DATA
    gunzip = Gunzip(Pieces(gzip.compress(DATA)), cap=len(DATA) - 1, source="model.tar.gz")
    with pytest.raises(ArtifactError) as caught:
        read_all(gunzip, 7)
    assert caught.value.message == (
        f"model.tar.gz: decompresses to more than {len(DATA) - 1} bytes (limit); refusing it"
    )


def test_small_reads_cannot_walk_past_the_cap() -> None:
    """Rule: the cap counts every byte handed out, over all reads."""
    gunzip = Gunzip(Pieces(gzip.compress(DATA)), cap=100, source="s")
    out = b""
    with pytest.raises(ArtifactError, match="more than 100 bytes"):
        while chunk := gunzip.read(4):
            out += chunk
    assert len(out) <= 100


def test_concatenated_members_are_one_stream_whatever_the_read_boundaries() -> None:
    """Rule: gzip members follow each other (zero padding allowed), as gzip reads them."""
    first, second = gzip.compress(b"first "), gzip.compress(b"second")
    assert second.endswith(b"\0")  # its length field: what an rstrip of the padding would eat
    cases = [
        (first, second),  # the second member starts a new read
        (first, b"\0" * 10, second),  # padding in a read of its own
        (first, second[:1], second[1:]),  # the magic number split across reads
        (first + b"\0\0", second),
    ]
    for pieces in cases:
        assert read_all(Gunzip(Pieces(*pieces), cap=100, source="s")) == b"first second", pieces


def test_the_source_is_read_in_bounded_reads_and_no_further_than_needed() -> None:
    """Rule: never read(-1)/read(None) a source (an S3 body would come whole into memory); no read-ahead."""
    first, second = gzip.compress(b"first "), gzip.compress(b"second")
    source = Pieces(first, second, b"BOOM")
    gunzip = Gunzip(source, cap=100, source="s")
    out = b""
    while len(out) < len(b"first second"):
        out += gunzip.read(len(b"first second") - len(out))
    assert out == b"first second"
    assert all(isinstance(n, int) and 0 < n <= MIB for n in source.sizes), source.sizes
    split = Pieces(first, second[:1], second[1:])  # the next member's magic number split across reads
    assert read_all(Gunzip(split, cap=100, source="s")) == b"first second"
    assert all(isinstance(n, int) and 0 < n <= MIB for n in split.sizes), split.sizes


def test_an_empty_source_is_an_empty_stream_and_garbage_is_refused() -> None:
    """Rule: an empty file yields nothing (tarfile then says so); a non-gzip start is refused by name."""
    assert Gunzip(Pieces(), cap=10, source="s").read() == b""
    with pytest.raises(ArtifactError, match=r"not a gzip-compressed tarball \(it starts with b'PK'\)"):
        Gunzip(Pieces(b"PK\3\4"), cap=10, source="s").read()
