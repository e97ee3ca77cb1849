"""Fetch an image from a URL without letting the URL reach anything it should not.

A Lambda function that fetches user-given URLs is a server-side request forgery target: the
instance-metadata service (169.254.169.254, fd00:ec2::254) hands out credentials, and loopback or
VPC addresses reach services that trust their callers. So, for the URL and every redirect:

- only http and https, no credentials in the URL;
- the host is resolved once (getaddrinfo, within the deadline) and EVERY address it resolves to is
  checked (`address_refusal`); IPv4 hidden in IPv6 (mapped, NAT64, 6to4) is checked as IPv4;
- the connection goes to an address that was checked, never through a second DNS lookup (which an
  attacker's DNS server could answer differently), while the Host header, TLS SNI and the
  certificate check still use the host name;
- one total deadline covers DNS, connect, headers and body (a server trickling bytes cannot
  stretch it), and the body is read in chunks and refused as soon as it passes the byte cap.

`FetchPolicy.allow_private` (env `LAMBDAVISION_ALLOW_PRIVATE_URLS=1`, for local testing) opens
loopback, private (RFC 1918), carrier-grade NAT and unique-local addresses. It never opens
link-local, multicast, unspecified or reserved addresses, nor the cloud instance-metadata addresses.

Hand-written on http.client on purpose: no well-kept library connects to the exact address it
checked (requests/urllib3 resolve again at connect time), and the core stays stdlib-only.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urljoin, urlsplit

from lambdavision.core.errors import (
    BadRequest,
    LambdaVisionError,
    PayloadTooLarge,
    UpstreamError,
    UpstreamTimeout,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host name -> the IP addresses it resolves to (as text). The default asks getaddrinfo.
Resolver = Callable[[str], Sequence[str]]

CHUNK_BYTES = 64 * 1024
MAX_URL_LENGTH = 8192
USER_AGENT = "lambdavision-fetch/1"
ALLOW_PRIVATE_ENV = "LAMBDAVISION_ALLOW_PRIVATE_URLS"
MAX_BYTES_ENV = "LAMBDAVISION_MAX_FETCH_BYTES"
TIMEOUT_ENV = "LAMBDAVISION_FETCH_TIMEOUT"

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of one fetch. `total_timeout` (seconds) covers every redirect hop together."""

    allow_private: bool = False
    max_bytes: int = 10 * 1024 * 1024
    connect_timeout: float = 3.0
    total_timeout: float = 10.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {self.max_bytes}")
        for name in ("connect_timeout", "total_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be 0 or more, got {self.max_redirects}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FetchPolicy:
        """The policy set by `LAMBDAVISION_*` variables; defaults where a variable is unset."""
        allow_text = environ.get(ALLOW_PRIVATE_ENV, "").strip().lower()
        if allow_text not in _TRUE_WORDS | _FALSE_WORDS:
            raise ValueError(f"{ALLOW_PRIVATE_ENV} must be 1 or 0, got {environ[ALLOW_PRIVATE_ENV]!r}")
        max_bytes = cls.max_bytes
        if (text := environ.get(MAX_BYTES_ENV)) is not None:
            try:
                max_bytes = int(text)
            except ValueError:
                max_bytes = 0
            if max_bytes < 1:
                raise ValueError(f"{MAX_BYTES_ENV} must be a positive whole number of bytes, got {text!r}")
        total = cls.total_timeout
        if (text := environ.get(TIMEOUT_ENV)) is not None:
            try:
                total = float(text)
            except ValueError:
                total = math.nan
            if not (math.isfinite(total) and total > 0):
                raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
        return cls(
            allow_private=allow_text in _TRUE_WORDS,
            max_bytes=max_bytes,
            connect_timeout=min(cls.connect_timeout, total),
            total_timeout=total,
        )


@dataclass(frozen=True)
class Fetched:
    url: str  # final URL after redirects
    content: bytes
    content_type: str | None
    elapsed_ms: float


# --- The address policy (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class _Range:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    phrase: str  # completes "X is ..."
    private: bool  # opened by allow_private


def _ranges(private: bool, phrase: str, *cidrs: str) -> list[_Range]:
    return [_Range(ipaddress.ip_network(cidr), phrase, private) for cidr in cidrs]


# Never opened, whatever the policy: AWS IMDS/ECS/EKS (IPv4 and its fd00:ec2::/32 IPv6 services),
# Alibaba's metadata service inside the CGNAT range.
_METADATA = [
    *_ranges(
        False,
        "a link-local address (cloud instance metadata)",
        "169.254.169.254/32",
        "169.254.170.2/32",
        "169.254.170.23/32",
    ),
    *_ranges(False, "a cloud instance-metadata address", "fd00:ec2::/32", "100.100.100.200/32"),
]

# IANA's special-purpose registries, written out so the answer does not depend on the Python
# version (ipaddress's is_global/is_private changed between patch releases).
_IPV4_RANGES = [
    *_ranges(False, "an unspecified ('this network') address", "0.0.0.0/8"),
    *_ranges(True, "a loopback address", "127.0.0.0/8"),
    *_ranges(True, "a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
    *_ranges(True, "a carrier-grade NAT (shared) address", "100.64.0.0/10"),
    *_ranges(False, "a link-local address", "169.254.0.0/16"),
    *_ranges(False, "a multicast address", "224.0.0.0/4"),
    *_ranges(
        False,
        "a reserved address",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
    ),
]
_IPV6_RANGES = [
    *_ranges(False, "an unspecified address", "::/128"),
    *_ranges(True, "a loopback address", "::1/128"),
    *_ranges(False, "a link-local address", "fe80::/10"),
    *_ranges(False, "a multicast address", "ff00::/8"),
    *_ranges(True, "a unique-local (private) address", "fc00::/7"),
    *_ranges(True, "a local-use NAT64 address", "64:ff9b:1::/48"),
    *_ranges(False, "a Teredo tunnel address", "2001::/32"),
    *_ranges(False, "a reserved address", "2001::/23", "2001:db8::/32", "3fff::/20"),
]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _LOCAL_NAT64:  # the IPv4 address sits in the last 32 bits
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a fetch may not connect to `address` ("a loopback address", ...), or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_refusal(embedded, allow_private=allow_private)
            return None if inner is None else f"an IPv6 form of {embedded}, {inner}"
    for known in _METADATA:
        if address in known.network:
            return known.phrase
    for known in _IPV4_RANGES if address.version == 4 else _IPV6_RANGES:
        if address in known.network:
            return None if known.private and allow_private else known.phrase
    if address.version == 6 and address not in _GLOBAL_UNICAST:
        return "a reserved address (outside IPv6 global unicast)"
    if not address.is_global:  # belt and braces: anything Python knows to be special
        return "a reserved address"
    return None


def check_addresses(host: str, addresses: Sequence[str], *, allow_private: bool) -> list[IPAddress]:
    """Every address `host` resolved to, parsed; BadRequest if any one of them is refused.

    One bad address refuses the host: which address the connection would use is not ours to pick.
    """
    if not addresses:
        raise UpstreamError(f"host {host} resolved to no address")
    parsed: list[IPAddress] = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError as exc:
            raise UpstreamError(f"host {host} resolved to a malformed address {text!r}") from exc
        reason = address_refusal(address, allow_private=allow_private)
        if reason is not None:
            if host == str(address):
                raise BadRequest(f"URL refused: {address} is {reason}{_hint(reason)}")
            raise BadRequest(f"URL refused: {host} resolves to {address}, {reason}{_hint(reason)}")
        if address not in parsed:
            parsed.append(address)
    return parsed


def _hint(reason: str) -> str:
    opened = {known.phrase for known in (*_IPV4_RANGES, *_IPV6_RANGES) if known.private}
    if any(reason.endswith(phrase) for phrase in opened):
        return f" (set {ALLOW_PRIVATE_ENV}=1 to allow it for local testing)"
    return ""


# --- URLs (pure) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked URL: what to resolve, where to connect and what to ask for."""

    url: str
    scheme: str
    host: str  # ASCII (IDNA) host name or IP literal, no brackets
    port: int
    request_target: str  # path + query, percent-encoded

    @property
    def display(self) -> str:
        """host[:port] as a person would name the image host in an error message."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: object) -> Target:
    """Check a URL's form (scheme, host, port, no credentials); BadRequest saying what is wrong."""
    if not isinstance(url, str):
        raise BadRequest(f"URL must be a string, got {type(url).__name__}")
    url = url.strip()
    if not url:
        raise BadRequest("URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise BadRequest("URL contains control characters")
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: valid JSON, not valid text
        raise BadRequest("malformed URL: not valid Unicode text") from None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"malformed URL: {exc}") from exc
    scheme = parts.scheme.lower()
    # "example.com/cat.jpg" has no scheme; "localhost:8080/cat.jpg" parses as scheme "localhost"
    if not scheme or ("://" not in url and scheme not in ("http", "https")):
        raise BadRequest("URL must start with http:// or https://")
    if scheme not in ("http", "https"):
        raise BadRequest(f"URL refused: scheme '{scheme}' is not allowed (only http and https)")
    if "@" in parts.netloc:
        raise BadRequest("URL refused: credentials (user:password@) are not allowed in the URL")
    host = _ascii_host(parts.hostname or "")
    if port is None:
        port = 443 if scheme == "https" else 80
    if port == 0:
        raise BadRequest("malformed URL: port 0")
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        request_target=f"{path}?{query}" if query else path,
    )


def _ascii_host(host: str) -> str:
    if not host:
        raise BadRequest("malformed URL: no host")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise BadRequest(f"malformed URL: host {host!r} is not a valid host name") from exc
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_valid_label(label) for label in labels):
        raise BadRequest(f"malformed URL: host {host!r} is not a valid host name")
    return ascii_host


def _valid_label(label: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    return 0 < len(label) <= 63 and set(label) <= allowed


# --- Reading with a cap (pure over any stream) -----------------------------------------------------


class SupportsRead1(Protocol):
    def read1(self, n: int, /) -> bytes: ...


def read_capped(stream: SupportsRead1, limit: int, source: str) -> bytes:
    """All of `stream`, or PayloadTooLarge once it passes `limit` (never reading a chunk past it)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read1(CHUNK_BYTES):
        chunks.append(chunk)  # joined once at the end: growing a bytearray re-copied it (1.4 ms per 2.7 MB)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"image at {source} is larger than the {limit}-byte limit")
    return b"".join(chunks)


# --- The socket work -----------------------------------------------------------------------------


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def _getaddrinfo_resolver(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _resolve(host: str, resolver: Resolver, deadline: float, total_timeout: float) -> Sequence[str]:
    """`resolver(host)` within the deadline; getaddrinfo has no timeout, so it runs in a thread
    that is abandoned (daemon) if it is still waiting when the deadline passes."""
    answer: list[Sequence[str]] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            answer.append(resolver(host))
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"resolve {host}", daemon=True).start()
    if not done.wait(max(_remaining(deadline), 0.0)):
        raise UpstreamTimeout(f"resolving host {host} took longer than {total_timeout:g} s")
    if failure:
        exc = failure[0]
        if isinstance(exc, LambdaVisionError):
            raise exc
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UpstreamError(f"could not resolve host {host}: {detail}") from exc
    return answer[0]


@dataclass
class _Pin:
    """Connects to the checked addresses, in order, and owns the socket it opened."""

    target: Target
    addresses: Sequence[IPAddress]
    connect_timeout: float
    deadline: float
    sock: socket.socket | None = None

    def open(self) -> socket.socket:
        failure: OSError | None = None
        for address in self.addresses:
            remaining = _remaining(self.deadline)
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
            sock.settimeout(max(_remaining(self.deadline), 0.001))  # TLS handshake, request
            self.sock = sock
            return sock
        if failure is None or isinstance(failure, TimeoutError):
            raise UpstreamTimeout(
                f"could not connect to image host {self.target.display} in time "
                f"(connect timeout {self.connect_timeout:g} s)"
            ) from failure
        raise failure

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
        remaining = _remaining(self._deadline)
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client sees as its socket: reads go through a `_DeadlineReader`; closing is left
    to the `_Pin` (http.client closes the connection before the body of a close-delimited
    response has been read)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline), CHUNK_BYTES)

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(max(_remaining(self._deadline), 0.001))
        self._sock.sendall(data)

    def close(self) -> None:
        pass


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, pin: _Pin) -> None:
        super().__init__(pin.target.host, pin.target.port, timeout=pin.connect_timeout)
        self._pin = pin

    def connect(self) -> None:
        self.sock = _DeadlineSocket(self._pin.open(), self._pin.deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, pin: _Pin, context: ssl.SSLContext) -> None:
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


def _tls_context() -> ssl.SSLContext:
    """The default verifying context, built once per trust-store setting (it costs ~20 ms)."""
    return _tls_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@dataclass(frozen=True)
class _Answer:
    location: str | None = None  # set for a redirect
    content: bytes = b""
    content_type: str | None = None


def _get(target: Target, policy: FetchPolicy, deadline: float, resolver: Resolver) -> _Answer:
    """One GET of one URL: resolve, check, connect to the checked address, read with the caps."""
    if _is_ip_literal(target.host):
        names: Sequence[str] = [target.host]
    else:
        names = _resolve(target.host, resolver, deadline, policy.total_timeout)
    addresses = check_addresses(target.host, names, allow_private=policy.allow_private)
    pin = _Pin(target, addresses, policy.connect_timeout, deadline)
    connection: http.client.HTTPConnection = (
        _PinnedHTTPSConnection(pin, _tls_context()) if target.scheme == "https" else _PinnedHTTPConnection(pin)
    )
    try:
        connection.putrequest("GET", target.request_target, skip_accept_encoding=True)
        connection.putheader("Accept", "image/*, */*;q=0.5")
        connection.putheader("Accept-Encoding", "identity")
        connection.putheader("User-Agent", USER_AGENT)
        connection.putheader("Connection", "close")
        connection.endheaders()
        response = connection.getresponse()
        return _read_answer(target, policy, response)
    except TimeoutError as exc:
        raise _timeout(target, policy) from exc
    except ssl.SSLCertVerificationError as exc:
        raise UpstreamError(
            f"image host {target.display} failed the TLS certificate check: {exc.verify_message}"
        ) from exc
    except ConnectionRefusedError as exc:
        raise UpstreamError(f"image host {target.display} refused the connection") from exc
    except (OSError, http.client.HTTPException) as exc:
        if _remaining(deadline) <= 0:
            raise _timeout(target, policy) from exc
        raise UpstreamError(f"fetching from image host {target.display} failed: {_describe(exc)}") from exc
    finally:
        connection.close()
        pin.close()


def _read_answer(target: Target, policy: FetchPolicy, response: http.client.HTTPResponse) -> _Answer:
    status = response.status
    if status in _REDIRECT_STATUSES:
        location = response.getheader("Location")
        if not location:
            raise UpstreamError(f"image host {target.display} answered HTTP {status} without a Location")
        return _Answer(location=location)
    if not 200 <= status < 300:
        reason = response.reason[:100]  # the server's words, kept short
        raise UpstreamError(f"image host {target.display} answered HTTP {status} {reason}".rstrip())
    declared = response.length
    if declared is not None and declared > policy.max_bytes:
        raise PayloadTooLarge(
            f"image at {target.display} declares {declared} bytes, over the {policy.max_bytes}-byte limit"
        )
    content = read_capped(response, policy.max_bytes, target.display)
    if declared is not None and len(content) < declared:
        raise UpstreamError(
            f"image host {target.display} closed the connection after {len(content)} of {declared} bytes"
        )
    return _Answer(content=content, content_type=response.getheader("Content-Type"))


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _timeout(target: Target, policy: FetchPolicy) -> UpstreamTimeout:
    return UpstreamTimeout(f"image host {target.display} did not answer within {policy.total_timeout:g} s")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.HTTPException):
        return f"malformed response ({type(exc).__name__}: {exc})" if str(exc) else "malformed response"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# --- The public entry points ---------------------------------------------------------------------


def fetch(url: str, policy: FetchPolicy, *, resolver: Resolver | None = None) -> Fetched:
    """GET `url` under `policy`, following up to `policy.max_redirects` checked redirects.

    Raises BadRequest (refused URL), PayloadTooLarge, UpstreamError or UpstreamTimeout — never a
    raw socket, TLS or http.client exception. `resolver` replaces getaddrinfo (tests).
    """
    started = time.monotonic()
    deadline = started + policy.total_timeout
    target = parse_url(url)
    visited = {target.url}
    for hop in range(policy.max_redirects + 1):
        try:
            answer = _get(target, policy, deadline, resolver or _getaddrinfo_resolver)
        except BadRequest as exc:
            if hop == 0:
                raise
            raise _refused_redirect(target.url, exc) from exc
        if answer.location is None:
            return Fetched(
                url=target.url,
                content=answer.content,
                content_type=answer.content_type,
                elapsed_ms=(time.monotonic() - started) * 1000.0,
            )
        if hop == policy.max_redirects:
            break
        try:
            next_url = urljoin(target.url, answer.location)
        except ValueError:
            raise UpstreamError(f"image host {target.host} sent a malformed redirect Location") from None
        try:
            target = parse_url(next_url)
        except BadRequest as exc:
            raise _refused_redirect(next_url, exc) from exc
        if target.url in visited:
            raise UpstreamError(f"redirect loop at {target.url}")
        visited.add(target.url)
    raise UpstreamError(f"too many redirects (more than {policy.max_redirects}) from {url}")


def _refused_redirect(url: str, refusal: BadRequest) -> BadRequest:
    detail = refusal.message.removeprefix("URL refused: ")
    return BadRequest(f"URL refused: redirected to {url}, but {detail}")


def fetch_many(urls: Sequence[str], policy: FetchPolicy, max_workers: int = 8) -> list[Fetched | LambdaVisionError]:
    """Fetch concurrently; results in input order, each failure its own error object (not raised)."""
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, got {max_workers}")
    if not urls:
        return []

    def one(url: str) -> Fetched | LambdaVisionError:
        try:
            return fetch(url, policy)
        except LambdaVisionError as exc:
            return exc
        except Exception as exc:  # a bug; one image must not fail the batch
            error = LambdaVisionError(f"internal error while fetching {url!r}: {type(exc).__name__}")
            error.__cause__ = exc
            return error

    with ThreadPoolExecutor(max_workers=min(max_workers, len(urls)), thread_name_prefix="fetch") as pool:
        return list(pool.map(one, urls))


__all__ = [
    "CHUNK_BYTES",
    "FetchPolicy",
    "Fetched",
    "Resolver",
    "Target",
    "address_refusal",
    "check_addresses",
    "fetch",
    "fetch_many",
    "parse_url",
    "read_capped",
]
