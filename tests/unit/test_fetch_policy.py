"""The fetch policy without a network: addresses, URL forms, environment, the streaming cap."""

from __future__ import annotations

import ipaddress

import pytest

from lambdavision.core.errors import BadRequest, ConfigError, PayloadTooLarge, UpstreamError
from lambdavision.runtime.fetch import (
    CHUNK_BYTES,
    FetchPolicy,
    address_refusal,
    check_addresses,
    fetch,
    parse_url,
    read_capped,
)
from lambdavision.runtime.settings import Settings

# (address, phrase it is refused with by default, still refused with allow_private?)
REFUSED = [
    ("0.0.0.0", "unspecified", True),
    ("0.1.2.3", "unspecified", True),
    ("127.0.0.1", "loopback", False),
    ("127.255.255.254", "loopback", False),
    ("10.1.2.3", "private", False),
    ("172.16.0.1", "private", False),
    ("172.31.255.255", "private", False),
    ("192.168.1.1", "private", False),
    ("100.64.0.1", "carrier-grade NAT", False),
    ("100.127.255.254", "carrier-grade NAT", False),
    ("169.254.1.1", "link-local", True),
    ("169.254.169.254", "link-local", True),
    ("169.254.170.2", "metadata", True),
    ("100.100.100.200", "metadata", True),
    ("224.0.0.1", "multicast", True),
    ("239.255.255.250", "multicast", True),
    ("240.0.0.1", "reserved", True),
    ("255.255.255.255", "reserved", True),
    ("192.0.2.10", "reserved", True),
    ("198.18.0.1", "reserved", True),
    ("203.0.113.7", "reserved", True),
    ("::", "unspecified", True),
    ("::1", "loopback", False),
    ("fe80::1", "link-local", True),
    ("fe80::1%2", "link-local", True),
    ("ff02::1", "multicast", True),
    ("fc00::1", "unique-local", False),
    ("fd12:3456::1", "unique-local", False),
    ("fd00:ec2::254", "metadata", True),
    ("fd00:ec2::23", "metadata", True),
    ("2001:db8::1", "reserved", True),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo", True),
    ("100::1", "reserved", True),
    ("fec0::1", "reserved", True),
    ("::127.0.0.1", "reserved", True),  # deprecated IPv4-compatible form
    # IPv4 hidden in IPv6: mapped, NAT64 and 6to4 forms are judged as the IPv4 address
    ("::ffff:127.0.0.1", "loopback", False),
    ("::ffff:10.0.0.1", "private", False),
    ("::ffff:169.254.169.254", "link-local", True),
    ("::ffff:100.64.0.1", "carrier-grade NAT", False),
    ("::ffff:0.0.0.0", "unspecified", True),
    ("64:ff9b::7f00:1", "loopback", False),
    ("64:ff9b::a9fe:a9fe", "link-local", True),
    ("64:ff9b:1::a00:1", "an IPv6 form of 10.0.0.1", False),
    ("64:ff9b:1::a9fe:a9fe", "169.254.169.254", True),  # local-use NAT64 never opens the metadata address
    ("2002:7f00:1::1", "loopback", False),
    ("2002:a9fe:a9fe::", "link-local", True),
    ("2002:c0a8:101::1", "private", False),
]

ALLOWED = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",  # just outside 172.16.0.0/12
    "100.128.0.1",  # just outside 100.64.0.0/10
    "2606:2800::1",
    "2a00:1450:4001:82a::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34, as DNS64 answers in an IPv6-only VPC
    "2002:5db8:d822::1",
]


@pytest.mark.parametrize(("text", "phrase", "always"), REFUSED)
def test_special_addresses_are_refused(text: str, phrase: str, always: bool) -> None:
    address = ipaddress.ip_address(text)
    reason = address_refusal(address, allow_private=False)
    assert reason is not None and phrase in reason
    opened = address_refusal(address, allow_private=True)
    if always:
        assert opened is not None and phrase in opened
    else:
        assert opened is None


@pytest.mark.parametrize("text", ALLOWED)
def test_public_addresses_are_allowed(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert address_refusal(address, allow_private=False) is None
    assert address_refusal(address, allow_private=True) is None


def test_mapped_form_names_the_ipv4_address() -> None:
    reason = address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allow_private=False)
    assert reason == "an IPv6 form of 127.0.0.1, a loopback address"


def test_every_resolved_address_is_checked() -> None:
    with pytest.raises(BadRequest) as caught:
        check_addresses("images.example", ["93.184.216.34", "10.0.0.5"], allow_private=False)
    assert caught.value.status == 400
    assert "images.example resolves to 10.0.0.5, a private address" in caught.value.message
    assert "LAMBDAVISION_ALLOW_PRIVATE_URLS=1" in caught.value.message


def test_checked_addresses_are_parsed_and_deduplicated() -> None:
    addresses = check_addresses("h", ["93.184.216.34", "2606:2800::1", "93.184.216.34"], allow_private=False)
    assert addresses == [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("2606:2800::1")]


def test_a_literal_address_is_named_once() -> None:
    with pytest.raises(BadRequest) as caught:
        check_addresses("169.254.169.254", ["169.254.169.254"], allow_private=True)
    message = caught.value.message
    assert message == "URL refused: 169.254.169.254 is a link-local address (cloud instance metadata)"


def test_a_host_without_addresses_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        check_addresses("h", [], allow_private=False)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/cat.jpg", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://example.com/", "scheme 'gopher'"),
        ("example.com/cat.jpg", "http:// or https://"),
        ("localhost:8080/cat.jpg", "http:// or https://"),
        ("", "empty"),
        ("   ", "empty"),
        ("http://user:secret@example.com/cat.jpg", "credentials"),
        ("http://user@example.com/cat.jpg", "credentials"),
        ("http:///cat.jpg", "no host"),
        ("http://example.com:99999/", "malformed URL"),
        ("http://example.com:port/", "malformed URL"),
        ("http://example.com:0/", "port 0"),
        ("http://[::1/", "malformed URL"),
        ("http://exa mple.com/", "not a valid host name"),
        ("http://example.com/a\r\nHost: evil", "control characters"),
        ("http://" + "a" * 64 + ".com/", "not a valid host name"),
        ("http://example.com/" + "a" * 9000, "longer than"),
    ],
)
def test_malformed_or_forbidden_urls_are_bad_requests(url: str, words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_url(url)
    assert words in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize("url", [None, 42, b"http://example.com/", ["http://example.com/"]])
def test_a_url_that_is_not_text_is_a_bad_request(url: object) -> None:
    with pytest.raises(BadRequest, match="must be a string"):
        parse_url(url)


def test_fetch_refuses_a_bad_scheme_before_any_network() -> None:
    with pytest.raises(BadRequest, match="scheme 'file'"):
        fetch("file:///etc/passwd", FetchPolicy())


def test_parsed_url_parts() -> None:
    target = parse_url("HTTPS://Bücher.example:8443/a b/ç.jpg?x=1 2#frag")
    assert target.scheme == "https"
    assert target.host == "xn--bcher-kva.example"
    assert target.port == 8443
    assert target.request_target == "/a%20b/%C3%A7.jpg?x=1%202"
    assert target.display == "xn--bcher-kva.example:8443"
    assert parse_url("http://[::1]/").display == "[::1]"
    assert parse_url("http://example.com").request_target == "/"
    assert parse_url("http://example.com:80/x").display == "example.com"


def test_the_documented_defaults() -> None:
    # README and SECURITY.md: 10 MB (API Gateway's own payload limit), 3 redirects, ports 80 and
    # 443, private and loopback refused; a 10 s deadline with a 3 s connect.
    for policy in (FetchPolicy(), Settings.from_env({}).policy):
        assert policy.max_bytes == 10_485_760
        assert (policy.max_redirects, policy.allow_private, policy.allowed_ports) == (3, False, {80, 443})
        assert (policy.connect_timeout, policy.total_timeout) == (3.0, 10.0)


def test_policy_from_environment() -> None:
    policy = Settings.from_env(
        {
            "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1",
            "LAMBDAVISION_MAX_FETCH_BYTES": "2048",
            "LAMBDAVISION_FETCH_TIMEOUT": "1.5",
        }
    ).policy
    assert policy == FetchPolicy(
        allow_private=True, max_bytes=2048, connect_timeout=1.5, total_timeout=1.5, max_redirects=3
    )
    assert Settings.from_env({"LAMBDAVISION_ALLOW_PRIVATE_URLS": "0"}).policy.allow_private is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAMBDAVISION_ALLOW_PRIVATE_URLS", "maybe"),
        ("LAMBDAVISION_MAX_FETCH_BYTES", "ten"),
        ("LAMBDAVISION_MAX_FETCH_BYTES", "0"),
        ("LAMBDAVISION_MAX_FETCH_BYTES", "-5"),
        ("LAMBDAVISION_MAX_FETCH_BYTES", "1.5"),
        ("LAMBDAVISION_FETCH_TIMEOUT", "soon"),
        ("LAMBDAVISION_FETCH_TIMEOUT", "0"),
        ("LAMBDAVISION_FETCH_TIMEOUT", "-1"),
        ("LAMBDAVISION_FETCH_TIMEOUT", "inf"),
        ("LAMBDAVISION_FETCH_TIMEOUT", "nan"),
    ],
)
def test_a_bad_environment_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert name in str(caught.value) and repr(value) in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [{"max_bytes": 0}, {"connect_timeout": 0.0}, {"total_timeout": -1.0}, {"max_redirects": -1}],
)
def test_a_nonsense_policy_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FetchPolicy(**fields)  # type: ignore[arg-type]


class EndlessStream:
    """A body that never ends; counts what was taken from it."""

    def __init__(self) -> None:
        self.taken = 0

    def read1(self, n: int, /) -> bytes:
        self.taken += n
        return b"\xff" * n


class FiniteStream:
    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.step = step

    def read1(self, n: int, /) -> bytes:
        piece, self.data = self.data[: min(n, self.step)], self.data[min(n, self.step) :]
        return piece


def test_the_cap_stops_an_endless_body_within_one_chunk() -> None:
    stream = EndlessStream()
    with pytest.raises(PayloadTooLarge) as caught:
        read_capped(stream, 100_000, "images.example")
    assert caught.value.status == 413
    assert 100_000 < stream.taken <= 100_000 + CHUNK_BYTES
    assert "images.example" in caught.value.message and "100000-byte limit" in caught.value.message


@pytest.mark.parametrize("size", [0, 1, 999, 1000])
def test_a_body_up_to_the_cap_is_read_whole(size: int) -> None:
    data = bytes(range(256)) * 4
    assert read_capped(FiniteStream(data[:size], step=7), 1000, "h") == data[:size]


def test_one_byte_over_the_cap_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        read_capped(FiniteStream(b"x" * 1001, step=300), 1000, "h")
