"""The body of an S3 GET as a raw file object: every failure an ArtifactError in S3's words.

Counts the bytes taken off the connection (for messages), refuses a short body, and can be
interrupted from another thread (`runtime.s3_object` reads it ahead in one).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
from collections.abc import Callable

from lambdavision.core.errors import ArtifactError
from lambdavision.core.sigv4 import GetRequest
from lambdavision.runtime.settings import S3_TIMEOUT_ENV


class Body(io.RawIOBase):
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


__all__ = ["Body", "describe"]
