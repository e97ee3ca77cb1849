"""One ranged GET of a part of an S3 object, pinned to the version being read (If-Match: its ETag).

`runtime.s3_ranges` drives them: `open_range` sends the GET and checks the answer (a 206 for the
bytes asked, of the same object); a failure a new connection may get past is `Retry`, an object
replaced meanwhile `ObjectChanged`, anything else an ArtifactError in S3's words.
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Callable

from lambdavision.core.errors import ArtifactError, ObjectChanged
from lambdavision.core.sigv4 import GetRequest
from lambdavision.runtime import s3get
from lambdavision.runtime.s3_body import describe
from lambdavision.runtime.s3_errors import ERROR_BODY_CAP, parse_error
from lambdavision.runtime.settings import S3_TIMEOUT_ENV

CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class Retry(Exception):
    """A part's GET failed in a way a new connection may get past."""


def open_range(
    request: GetRequest,
    etag: str,
    total: int,
    offset: int,
    last: int,
    on_socket: Callable[[socket.socket | None], None],
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """GET bytes offset..last of the object at version `etag`; the open connection and its checked
    answer (close the connection). `on_socket` gets the socket before the answer is awaited, so
    another thread can interrupt the wait."""
    headers = {**request.headers, "Range": f"bytes={offset}-{last}", "If-Match": f'"{etag}"'}
    connection = s3get.connection_for(request)
    try:
        try:
            connection.putrequest("GET", request.target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.putheader("Accept-Encoding", "identity")
            connection.putheader("User-Agent", s3get.USER_AGENT)
            connection.endheaders()
            on_socket(connection.sock)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise Retry(describe_failure(exc, request.timeout)) from exc
        _check(response, request, etag, total, offset, last)
    except BaseException:
        connection.close()
        raise
    return connection, response


def _check(
    response: http.client.HTTPResponse, request: GetRequest, etag_pinned: str, total: int, offset: int, last: int
) -> None:
    """A 206 for exactly the bytes asked, of the same object version; anything else raises."""
    status = response.status
    if status == 206:
        match = CONTENT_RANGE.fullmatch((response.getheader("Content-Range") or "").strip())
        etag = (response.getheader("ETag") or "").strip().strip('"')
        if match is None or int(match.group(1)) != offset or int(match.group(2)) > last:
            got = response.getheader("Content-Range")
            raise ArtifactError(f"{request.uri}: S3 answered a GET of bytes {offset}-{last} with Content-Range {got}")
        if int(match.group(3)) != total or (etag and etag != etag_pinned):
            raise ObjectChanged(
                f"{request.uri}: the object changed while it was read (ETag {etag_pinned}, now {etag or '?'}; "
                f"{total} bytes, now {match.group(3)})"
            )
        return
    body = response.read(ERROR_BODY_CAP) if status >= 300 else b""
    code, message = parse_error(body)
    if status == 412:
        raise ObjectChanged(
            f"{request.uri}: the object changed while it was read (S3 said {code or 412}: "
            f"its ETag is no longer {etag_pinned})"
        )
    if status >= 500:
        raise Retry(f"S3 answered HTTP {status}{f' ({code})' if code else ''}")
    if status == 200:
        raise ArtifactError(f"{request.uri}: the server answered a byte range with the whole object (no range support)")
    raise ArtifactError(
        f"{request.uri}: S3 said {code or status}: {message or response.reason} (bytes {offset}-{last})"
    )


def read_into(response: http.client.HTTPResponse, room: memoryview, timeout: float) -> int:
    """Some bytes of a range's answer into `room` (0 at its end); a failure a new connection may get past is Retry."""
    try:
        return response.readinto(room)
    except (OSError, http.client.HTTPException) as exc:
        raise Retry(describe_failure(exc, timeout)) from exc


def filling(read: Callable[[int], bytes]) -> Callable[[memoryview], int]:
    """A `read(size)` (s3get's first GET body) as a `read_into(room)`."""

    def read_into(room: memoryview) -> int:
        data = read(len(room))
        room[: len(data)] = data
        return len(data)

    return read_into


def describe_failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no data for {timeout:g} s ({S3_TIMEOUT_ENV})"
    return describe(exc)


def transient(exc: ArtifactError) -> bool:
    """Errors of the first GET's body (s3get's words) worth a new connection: cut, stalled, truncated."""
    return "cannot read from S3:" in exc.message


__all__ = ["CONTENT_RANGE", "Retry", "filling", "open_range", "read_into", "transient"]
