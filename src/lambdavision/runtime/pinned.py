"""The socket work of a fetch: resolve once, connect only to an address that was checked, and never
wait past one deadline.

The connection goes to an address `core.urlpolicy` checked, never through a second DNS lookup (which
an attacker's DNS server could answer differently); the Host header, TLS SNI and the certificate
check still use the host name. Reads never wait past the fetch's deadline, however slowly a server
trickles. `runtime.fetch` drives it.
"""

from __future__ import annotations

import functools
import http.client
import io
import os
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from dataclasses import dataclass

from lambdavision.core.errors import LambdaVisionError, UpstreamError, UpstreamTimeout
from lambdavision.core.urlpolicy import IPAddress, Target
from lambdavision.runtime.background import in_thread

# host name -> the IP addresses it resolves to (as text). The default asks getaddrinfo.
Resolver = Callable[[str], Sequence[str]]

READ_BUFFER_BYTES = 64 * 1024


def time_left(deadline: float) -> float:
    return deadline - time.monotonic()


def getaddrinfo_resolver(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def resolve(host: str, resolver: Resolver, deadline: float, total_timeout: float) -> Sequence[str]:
    """`resolver(host)` within the deadline; getaddrinfo has no timeout, so it runs in a daemon
    thread that is abandoned if it is still waiting when the deadline passes."""
    answer = in_thread(resolver, host)
    if not wait([answer], timeout=max(time_left(deadline), 0.0)).done:
        raise UpstreamTimeout(f"resolving host {host} took longer than {total_timeout:g} s")
    try:
        return answer.result()
    except LambdaVisionError:
        raise
    except Exception as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UpstreamError(f"could not resolve host {host}: {detail}") from exc


@dataclass
class Pin:
    """Connects to the checked addresses, in order, and owns the socket it opened."""

    target: Target
    addresses: Sequence[IPAddress]
    connect_timeout: float
    deadline: float
    sock: socket.socket | None = None

    def open(self) -> socket.socket:
        failure: OSError | None = None
        for address in self.addresses:
            remaining = time_left(self.deadline)
            if remaining <= 0:
                break
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(min(self.connect_timeout, remaining))
            try:
                sock.connect((str(address), self.target.port))
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(max(time_left(self.deadline), 0.001))  # TLS handshake, request
            self.sock = sock
            return sock
        # One answer whether the port was closed (refused), filtered (timed out) or unreachable:
        # telling them apart would make the fetcher a port scanner.
        raise UpstreamError(f"could not connect to image host {self.target.display}") from failure

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class _DeadlineReader(io.RawIOBase):
    """Socket reads that never wait past the deadline, however slowly the server trickles."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        remaining = time_left(self._deadline)
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client sees as its socket: reads go through a `_DeadlineReader`; closing is left
    to the `Pin` (http.client closes the connection before the body of a close-delimited
    response has been read)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline), READ_BUFFER_BYTES)

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(max(time_left(self._deadline), 0.001))
        self._sock.sendall(data)

    def close(self) -> None:
        pass


class PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, pin: Pin) -> None:
        super().__init__(pin.target.host, pin.target.port, timeout=pin.connect_timeout)
        self._pin = pin

    def connect(self) -> None:
        self.sock = _DeadlineSocket(self._pin.open(), self._pin.deadline)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, pin: Pin, context: ssl.SSLContext) -> None:
        super().__init__(pin.target.host, pin.target.port, timeout=pin.connect_timeout, context=context)
        self._pin = pin
        self._tls = context

    def connect(self) -> None:
        tls = self._tls.wrap_socket(self._pin.open(), server_hostname=self.host)
        self._pin.sock = tls  # the TLS socket now owns the file descriptor
        self.sock = _DeadlineSocket(tls, self._pin.deadline)


@functools.lru_cache(maxsize=4)
def _tls_context_for(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    return ssl.create_default_context()  # OpenSSL reads SSL_CERT_FILE / SSL_CERT_DIR itself


def tls_context() -> ssl.SSLContext:
    """The default verifying context, built once per trust-store setting (it costs ~20 ms).

    The two variables are OpenSSL's, read by it at each context build, not settings of ours (so not
    in `runtime.settings`): they only key the cache, so a changed trust store gets a new context.
    """
    return _tls_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


__all__ = [
    "Pin",
    "PinnedHTTPConnection",
    "PinnedHTTPSConnection",
    "Resolver",
    "getaddrinfo_resolver",
    "resolve",
    "time_left",
    "tls_context",
]
