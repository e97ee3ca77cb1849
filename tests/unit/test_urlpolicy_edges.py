"""The URL policy at its edges: the boundaries, words and messages mutation testing found unpinned.

Each test here killed mutants of core/urlpolicy.py that the rest of the suite let live (`make
mutate`): an https URL sent to port 80, a pre-encoded path encoded twice, a host name with its
final dot refused, an IP literal looked up in DNS, a policy word read in capitals...
"""

from __future__ import annotations

import ipaddress

import pytest

from lambdavision.core.errors import BadRequest, ConfigError, UpstreamError
from lambdavision.core.urlpolicy import (
    MAX_URL_LENGTH,
    FetchPolicy,
    address_refusal,
    check_addresses,
    parse_url,
)
from lambdavision.runtime.fetch import fetch
from lambdavision.runtime.settings import Settings


def test_the_smallest_policy_values_are_valid_and_the_refusals_say_why() -> None:
    assert FetchPolicy(max_bytes=1, max_redirects=0).max_bytes == 1
    for fields, message in [
        ({"max_bytes": 0}, "max_bytes must be at least 1, got 0"),
        ({"connect_timeout": 0.0}, "connect_timeout must be a positive number of seconds, got 0.0"),
        ({"total_timeout": float("inf")}, "total_timeout must be a positive number of seconds, got inf"),
        ({"max_redirects": -1}, "max_redirects must be 0 or more, got -1"),
        ({"ports": frozenset()}, "ports must name at least one port, or be 'any'"),
    ]:
        with pytest.raises(ValueError) as caught:
            FetchPolicy(**fields)  # type: ignore[arg-type]
        assert str(caught.value) == message


@pytest.mark.parametrize(("text", "allowed"), [("True", True), (" ON ", True), ("Yes", True), ("OFF", False)])
def test_the_switch_takes_its_words_in_any_case(text: str, allowed: bool) -> None:
    assert Settings.from_env({"LAMBDAVISION_ALLOW_PRIVATE_URLS": text}).policy.allow_private is allowed


def test_the_smallest_settings_are_valid() -> None:
    policy = Settings.from_env({"LAMBDAVISION_MAX_FETCH_BYTES": "1", "LAMBDAVISION_FETCH_TIMEOUT": "0.5"}).policy
    assert (policy.max_bytes, policy.total_timeout, policy.connect_timeout) == (1, 0.5, 0.5)
    assert Settings.from_env({"LAMBDAVISION_FETCH_PORTS": "*"}).policy.allowed_ports is None
    assert Settings.from_env({"LAMBDAVISION_FETCH_PORTS": "1,65535"}).policy.allowed_ports == {1, 65535}
    for bad in ("0", "65536"):
        with pytest.raises(ConfigError, match="LAMBDAVISION_FETCH_PORTS must be port numbers"):
            Settings.from_env({"LAMBDAVISION_FETCH_PORTS": bad})


def test_each_scheme_gets_its_own_default_port() -> None:
    assert (parse_url("https://example.com/x.jpg").port, parse_url("http://example.com/x.jpg").port) == (443, 80)
    assert parse_url("HTTPS://example.com/x.jpg").port == 443


def test_percent_encoded_paths_and_queries_are_sent_as_given() -> None:
    url = "http://example.com/a%20b/c@d:e;f=g,h!$&'()*+-._~/%E2%82%AC?q=%2F&r=/x?y:z@w!$'()*+,;"
    assert parse_url(url).request_target == url.removeprefix("http://example.com")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "URL is empty"),
        ("http://example.com/\x7f.jpg", "URL contains control characters"),
        ("http://example.com/\ud800.jpg", "malformed URL: not valid Unicode text"),
        ("http://user:pw@example.com/", "URL refused: credentials (user:password@) are not allowed in the URL"),
        ("http://example.com:0/x.jpg", "malformed URL: port 0"),
        ("http:///x.jpg", "malformed URL: no host"),
        ("example.com/cat.jpg", "URL must start with http:// or https://"),
        ("http://" + "a" * (MAX_URL_LENGTH - 6), f"URL is longer than {MAX_URL_LENGTH} characters"),
    ],
)
def test_refusals_say_exactly_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_url(url)
    assert caught.value.message == message


def test_a_url_of_the_longest_length_is_accepted() -> None:
    url = "http://example.com/" + "a" * (MAX_URL_LENGTH - len("http://example.com/"))
    assert len(url) == MAX_URL_LENGTH and parse_url(url).host == "example.com"


def test_a_url_that_is_not_text_names_its_type() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_url(5)
    assert caught.value.message == "URL must be a string, got int"


def test_host_names_at_their_limits() -> None:
    assert parse_url("http://example.com./x.jpg").host == "example.com."  # the root's dot: a valid name
    longest_label = "a" * 63
    assert parse_url(f"http://{longest_label}.example/").host == f"{longest_label}.example"
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    assert parse_url(f"http://{longest}/").host == longest
    every_character = "abcdefghijklmnopqrstuvwxyz0123456789-_"  # a label may use all of them at once
    assert parse_url(f"http://{every_character}.example/").host == f"{every_character}.example"
    for host in ("a" * 64 + ".example", longest + "e", "a..b.example", ".a.example"):
        with pytest.raises(BadRequest, match="is not a valid host name"):
            parse_url(f"http://{host}/")


def test_an_ip_literal_is_checked_without_a_lookup() -> None:
    def no_lookup(host: str) -> list[str]:
        raise AssertionError(f"{host} was looked up")

    with pytest.raises(BadRequest, match=r"URL refused: 10\.0\.0\.1 is a private address"):
        fetch("http://10.0.0.1/x.jpg", FetchPolicy(), resolver=no_lookup)


def test_reserved_ipv6_outside_global_unicast_is_named() -> None:
    phrase = address_refusal(ipaddress.ip_address("4000::1"), allow_private=True)
    assert phrase == "a reserved address (outside IPv6 global unicast)"


def test_a_scoped_link_local_address_is_refused_not_malformed() -> None:
    with pytest.raises(BadRequest, match=r"resolves to fe80::1, a link-local address"):
        check_addresses("printer.example", ["fe80::1%eth0"], allow_private=True)


def test_resolution_failures_say_what_came_back() -> None:
    with pytest.raises(UpstreamError) as nothing:
        check_addresses("ghost.example", [], allow_private=False)
    assert nothing.value.message == "host ghost.example resolved to no address"
    with pytest.raises(UpstreamError) as garbage:
        check_addresses("odd.example", ["not-an-ip"], allow_private=False)
    assert garbage.value.message == "host odd.example resolved to a malformed address 'not-an-ip'"
