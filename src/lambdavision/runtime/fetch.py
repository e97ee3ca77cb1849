"""Fetch an image from a URL without letting the URL reach anything it should not.

Where a fetch may go is `core.urlpolicy` (schemes, ports, the address policy); this module
applies it to the URL and to every redirect, and `runtime.pinned` does the socket work:

- the host is resolved once (getaddrinfo, within the deadline) and EVERY address it resolves to is
  checked; the connection goes to an address that was checked, never through a second DNS lookup
  (which an attacker's DNS server could answer differently), while the Host header, TLS SNI and
  the certificate check still use the host name;
- one total deadline covers DNS, connect, headers and body (a server trickling bytes cannot
  stretch it), and the body is read in chunks and refused as soon as it passes the byte cap;
- errors say what failed and the status code an image host answered, never bytes it sent (a
  banner, a reason phrase) and never whether a port was closed or filtered: the fetcher must not
  be a port scanner or a banner grabber. URLs in messages are redacted (`core.redact`).

Hand-written on http.client on purpose: no well-kept library connects to the exact address it
checked (requests/urllib3 resolve again at connect time), and the core stays stdlib-only.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin

from lambdavision.core.errors import (
    BadRequest,
    InternalError,
    LambdaVisionError,
    PayloadTooLarge,
    UpstreamError,
    UpstreamTimeout,
)
from lambdavision.core.redact import redact_url
from lambdavision.core.urlpolicy import (
    FetchPolicy,
    Target,
    address_refusal,
    check_addresses,
    is_ip_literal,
    parse_url,
)
from lambdavision.runtime.pinned import (
    Pin,
    PinnedHTTPConnection,
    PinnedHTTPSConnection,
    Resolver,
    getaddrinfo_resolver,
    resolve,
    time_left,
    tls_context,
)

CHUNK_BYTES = 64 * 1024
USER_AGENT = "lambdavision-fetch/1"

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Fetched:
    url: str  # final URL after redirects
    content: bytes
    content_type: str | None
    elapsed_ms: float


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


@dataclass(frozen=True)
class _Answer:
    location: str | None = None  # set for a redirect
    content: bytes = b""
    content_type: str | None = None


def _get(target: Target, policy: FetchPolicy, deadline: float, resolver: Resolver) -> _Answer:
    """One GET of one URL: resolve, check, connect to the checked address, read with the caps."""
    policy.check_port(target)
    if is_ip_literal(target.host):
        names: Sequence[str] = [target.host]
    else:
        names = resolve(target.host, resolver, deadline, policy.total_timeout)
    addresses = check_addresses(target.host, names, allow_private=policy.allow_private)
    pin = Pin(target, addresses, policy.connect_timeout, deadline)
    connection: http.client.HTTPConnection = (
        PinnedHTTPSConnection(pin, tls_context()) if target.scheme == "https" else PinnedHTTPConnection(pin)
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
    except ssl.SSLCertVerificationError as exc:  # OpenSSL's words about the certificate, not the host's bytes
        raise UpstreamError(
            f"image host {target.display} failed the TLS certificate check: {exc.verify_message}"
        ) from exc
    except ssl.SSLError as exc:
        raise UpstreamError(f"the TLS handshake with image host {target.display} failed") from exc
    except http.client.HTTPException as exc:
        # Never the exception's text: BadStatusLine carries what the port sent (an SSH banner...).
        if time_left(deadline) <= 0:
            raise _timeout(target, policy) from exc
        raise UpstreamError(f"image host {target.display} did not answer with valid HTTP") from exc
    except OSError as exc:
        if time_left(deadline) <= 0:
            raise _timeout(target, policy) from exc
        raise UpstreamError(f"the connection to image host {target.display} failed") from exc
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
    if not 200 <= status < 300:  # the status code only: the reason phrase is the host's own words
        raise UpstreamError(f"image host {target.display} answered HTTP {status}")
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


def _timeout(target: Target, policy: FetchPolicy) -> UpstreamTimeout:
    return UpstreamTimeout(f"image host {target.display} did not answer within {policy.total_timeout:g} s")


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
            answer = _get(target, policy, deadline, resolver or getaddrinfo_resolver)
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
            raise UpstreamError(f"redirect loop at {redact_url(target.url)}")
        visited.add(target.url)
    raise UpstreamError(f"too many redirects (more than {policy.max_redirects}) from {redact_url(url)}")


def _refused_redirect(url: str, refusal: BadRequest) -> BadRequest:
    detail = refusal.message.removeprefix("URL refused: ")
    return BadRequest(f"URL refused: redirected to {redact_url(url)}, but {detail}")


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
            error = InternalError(f"internal error while fetching {redact_url(url)}: {type(exc).__name__}")
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
