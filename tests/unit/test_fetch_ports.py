"""The fetch port policy and its settings (issue 14.3), and URL redaction (14.2), without a network."""

from __future__ import annotations

import logging

import pytest

from lambdavision.core.errors import ConfigError
from lambdavision.core.redact import RedactingFilter, redact_text, redact_url
from lambdavision.core.urlpolicy import DEFAULT_PORTS, FetchPolicy, parse_url
from lambdavision.runtime.app import App
from lambdavision.runtime.settings import Settings


@pytest.mark.parametrize(
    ("environ", "ports"),
    [
        ({}, DEFAULT_PORTS),
        ({"LAMBDAVISION_FETCH_PORTS": "80, 443,8080"}, frozenset({80, 443, 8080})),
        ({"LAMBDAVISION_FETCH_PORTS": "any"}, None),
        ({"LAMBDAVISION_FETCH_PORTS": ""}, DEFAULT_PORTS),
        ({"LAMBDAVISION_ALLOW_PRIVATE_URLS": "1"}, None),  # local testing: test servers listen anywhere
        ({"LAMBDAVISION_ALLOW_PRIVATE_URLS": "1", "LAMBDAVISION_FETCH_PORTS": "443"}, frozenset({443})),
    ],
)
def test_the_ports_a_fetch_may_reach(environ: dict[str, str], ports: frozenset[int] | None) -> None:
    assert Settings.from_env(environ).policy.allowed_ports == ports


@pytest.mark.parametrize("text", ["http", "0", "65536", "80;443", ",", "-1"])
def test_a_bad_ports_setting_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="LAMBDAVISION_FETCH_PORTS"):
        Settings.from_env({"LAMBDAVISION_FETCH_PORTS": text})


def test_a_bad_ports_setting_stops_the_function_in_one_line() -> None:
    with pytest.raises(ConfigError, match="LAMBDAVISION_FETCH_PORTS"):
        App.from_env({"LAMBDAVISION_FETCH_PORTS": "ssh"})


def test_check_port() -> None:
    FetchPolicy().check_port(parse_url("https://example.com/"))
    FetchPolicy(ports="any").check_port(parse_url("http://example.com:22/"))
    with pytest.raises(Exception, match="port 22 is not allowed"):
        FetchPolicy().check_port(parse_url("http://example.com:22/"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://bucket.s3.amazonaws.com/cat.jpg?X-Amz-Signature=abc",
            "https://bucket.s3.amazonaws.com/cat.jpg?[redacted]",
        ),
        ("http://u:p@host:8080/a/b#frag", "http://host:8080/a/b?[redacted]"),
        ("http://[::1]:80/x?q", "http://[::1]:80/x?[redacted]"),
        ("https://example.com/plain.png", "https://example.com/plain.png"),
        ("http://[bad/x?secret", "<a malformed URL>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_finds_every_url() -> None:
    text = 'redirected to "https://a.example/x?sig=1" from http://b.example/y?t=2, then s3://c/k?v=3.'
    assert redact_text(text) == (
        'redirected to "https://a.example/x?[redacted]" from http://b.example/y?[redacted], then s3://c/k?[redacted].'
    )


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks() -> None:
    logger = logging.getLogger("lambdavision.test-redact")
    logger.addFilter(RedactingFilter())
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.propagate = False
    try:
        raise ValueError("fetching https://h.example/p?token=SECRET failed")
    except ValueError:
        logger.exception("while serving %s", "http://h.example/q?key=SECRET")
    formatted = logging.Formatter().format(records[0])
    assert "SECRET" not in formatted
    assert "http://h.example/q?[redacted]" in formatted and "https://h.example/p?[redacted]" in formatted


def test_an_empty_port_set_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one port"):
        FetchPolicy(ports=frozenset())
