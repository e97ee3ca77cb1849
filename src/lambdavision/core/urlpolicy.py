"""Where a fetch may go: the address policy, the URL forms and ports accepted, and the fetch limits.

Pure (no sockets): `runtime.fetch` applies it to the URL and to every redirect. A Lambda function that
fetches user-given URLs is a server-side request forgery target: the instance-metadata service
(169.254.169.254, fd00:ec2::254) hands out credentials, and loopback or VPC addresses reach
services that trust their callers. So:

- only http and https, no credentials in the URL, and only ports 80 and 443 unless
  `LAMBDAVISION_FETCH_PORTS` widens them (a fetcher that reaches any port is a port scanner);
- EVERY address a host resolves to is checked (`address_refusal`); IPv4 hidden in IPv6 (mapped,
  NAT64, 6to4) is checked as IPv4.

`FetchPolicy.allow_private` (env `LAMBDAVISION_ALLOW_PRIVATE_URLS=1`, for local testing) opens
loopback, private (RFC 1918), carrier-grade NAT and unique-local addresses, and every port (local
test servers listen anywhere) unless `LAMBDAVISION_FETCH_PORTS` says otherwise. It never opens
link-local, multicast, unspecified or reserved addresses, nor the cloud instance-metadata addresses.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

from lambdavision.core.errors import BadRequest, UpstreamError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 8192
ALLOW_PRIVATE_ENV = "LAMBDAVISION_ALLOW_PRIVATE_URLS"
MAX_BYTES_ENV = "LAMBDAVISION_MAX_FETCH_BYTES"
TIMEOUT_ENV = "LAMBDAVISION_FETCH_TIMEOUT"
PORTS_ENV = "LAMBDAVISION_FETCH_PORTS"
DEFAULT_PORTS = frozenset({80, 443})


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of one fetch. `total_timeout` (seconds) covers every redirect hop together."""

    allow_private: bool = False
    max_bytes: int = 10 * 1024 * 1024
    connect_timeout: float = 3.0
    total_timeout: float = 10.0
    max_redirects: int = 3
    # The ports a URL (or a redirect) may name, or "any"; None: 80 and 443, or any with allow_private.
    ports: frozenset[int] | Literal["any"] | None = None

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {self.max_bytes}")
        for name in ("connect_timeout", "total_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be 0 or more, got {self.max_redirects}")
        if self.ports is not None and not self.ports:
            raise ValueError("ports must name at least one port, or be 'any'")

    @property
    def allowed_ports(self) -> frozenset[int] | None:
        """The ports a fetch may connect to; None for any."""
        if self.ports == "any" or (self.ports is None and self.allow_private):
            return None
        return self.ports or DEFAULT_PORTS

    def check_port(self, target: Target) -> None:
        """BadRequest unless the policy allows the port `target` connects to."""
        allowed_ports = self.allowed_ports
        if allowed_ports is not None and target.port not in allowed_ports:
            allowed = " and ".join(str(port) for port in sorted(allowed_ports))
            raise BadRequest(f"URL refused: port {target.port} is not allowed (only {allowed}; {PORTS_ENV} widens it)")


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


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _valid_label(label: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    return 0 < len(label) <= 63 and set(label) <= allowed


__all__ = [
    "ALLOW_PRIVATE_ENV",
    "DEFAULT_PORTS",
    "MAX_BYTES_ENV",
    "PORTS_ENV",
    "TIMEOUT_ENV",
    "FetchPolicy",
    "IPAddress",
    "Target",
    "address_refusal",
    "check_addresses",
    "is_ip_literal",
    "parse_url",
]
