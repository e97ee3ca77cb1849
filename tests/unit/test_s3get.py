"""core.sigv4 and runtime.s3get, no sockets: the SigV4 signature and URLs are botocore's and boto3's, to the byte."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from lambdavision.core import sigv4
from lambdavision.core.errors import ConfigError
from lambdavision.runtime import s3_errors, s3get
from lambdavision.runtime.settings import Settings

WHEN = dt.datetime(2026, 11, 3, 23, 59, 58)  # naive = UTC, as botocore's clock gives it
KEYS = [
    "model.tar.gz",
    "fastai-models/lesson1/model.tar.gz",
    "with space/and  two spaces.tar.gz",
    "unicode/ñandú/모델.tar.gz",
    "plus+sign/a+b=c&d.tar.gz",
    "deep/nested/path/with~tilde/50%/model.tar.gz",
    "trailing/slash/",
    "dots/./and/../are/kept",
    "x//double//slashes",
]
CREDENTIALS = [
    sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    sigv4.Credentials("ASIAEXAMPLE", "secret/with+chars", "FwoGZXIvYXdzE//////////wEaDN+token=="),
]
URLS = [
    ("my-models", "eu-west-1", None),  # virtual-hosted, https
    ("my.dotted.bucket", "eu-west-2", None),  # path-style, https (boto3 uses the global host in us-east-1)
    ("models", "us-west-2", "http://127.0.0.1:5000"),  # an endpoint: path-style, a port
    ("models", "ap-south-1", "https://s3.internal.example:8443/prefix/"),
]


def botocore_signed(url: str, credentials: sigv4.Credentials, region: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: WHEN)
    request = AWSRequest(method="GET", url=url, headers={})
    auth = botocore.auth.S3SigV4Auth(
        BotocoreCredentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
        "s3",
        region,
    )
    auth.add_auth(request)
    return request, auth


@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["keys", "session-token"])
@pytest.mark.parametrize(("bucket", "region", "endpoint"), URLS, ids=["virtual", "dotted", "endpoint", "prefix"])
@pytest.mark.parametrize("key", KEYS)
def test_signature_and_headers_equal_botocores(
    key: str,
    bucket: str,
    region: str,
    endpoint: str | None,
    credentials: sigv4.Credentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = sigv4.object_url(bucket, key, region, endpoint)
    ours = sigv4.sign_get(url, credentials, region, WHEN)
    request, auth = botocore_signed(url, credentials, region, monkeypatch)
    theirs = {name.lower(): value for name, value in request.headers.items()}
    theirs["host"] = auth.headers_to_sign(request)["host"]
    assert ours == theirs
    assert ours["x-amz-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert ("x-amz-security-token" in ours) == (credentials.session_token is not None)


def test_an_aware_time_is_converted_to_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    url = sigv4.object_url("my-models", "m.tar.gz", "eu-west-1")
    paris = dt.timezone(dt.timedelta(hours=1))
    aware = WHEN.replace(tzinfo=dt.UTC).astimezone(paris)  # the next day, local time
    assert sigv4.sign_get(url, CREDENTIALS[0], "eu-west-1", aware) == sigv4.sign_get(
        url, CREDENTIALS[0], "eu-west-1", WHEN
    )


def boto3_get_url(bucket: str, key: str, region: str, endpoint: str | None) -> str:
    """The URL boto3's own client would GET (the request is stopped before it is sent)."""
    client = boto3.client(
        "s3", region_name=region, endpoint_url=endpoint, aws_access_key_id="a", aws_secret_access_key="b"
    )
    seen: list[str | None] = []

    def stop(request: AWSRequest, **_: Any) -> None:
        seen.append(request.url)
        raise _Stopped

    client.meta.events.register("before-send", stop)
    with pytest.raises(_Stopped):
        client.get_object(Bucket=bucket, Key=key)
    assert seen[0] is not None
    return seen[0]


class _Stopped(Exception):
    pass


@pytest.mark.parametrize(
    ("bucket", "region", "endpoint"),
    [*URLS[:3], ("models", "eu-central-1", "http://localhost:4566"), ("cn-models", "cn-north-1", None)],
)
def test_urls_equal_boto3s(bucket: str, region: str, endpoint: str | None) -> None:
    for key in KEYS[:6]:
        assert sigv4.object_url(bucket, key, region, endpoint) == boto3_get_url(bucket, key, region, endpoint)


def test_url_styles() -> None:
    assert sigv4.object_url("b-1", "a b/c", "eu-west-1") == "https://b-1.s3.eu-west-1.amazonaws.com/a%20b/c"
    assert sigv4.object_url("b.1", "k", "eu-west-1") == "https://s3.eu-west-1.amazonaws.com/b.1/k"
    assert sigv4.object_url("b", "k", "us-east-1", "http://[::1]:9000/") == "http://[::1]:9000/b/k"
    assert sigv4.host_header("http://[::1]:9000/b/k") == "[::1]:9000"
    assert sigv4.host_header("https://HOST.example:443/b/k") == "host.example"
    assert sigv4.host_header("http://127.0.0.1:80/b/k") == "127.0.0.1"
    for bad in ("ftp://host/", "127.0.0.1:5000", "http://host:port/", "http://host/?q=1"):
        with pytest.raises(ConfigError, match="endpoint URL"):
            sigv4.object_url("b", "k", "us-east-1", bad)


ENV = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-1"}


def test_build_get_reads_only_the_environment_it_is_given() -> None:
    request = s3get.build_get("my-models", "k/m.tar.gz", Settings.from_env(ENV).s3, now=WHEN)
    assert request is not None
    assert (request.uri, request.url, request.region, request.timeout) == (
        "s3://my-models/k/m.tar.gz",
        "https://my-models.s3.eu-west-1.amazonaws.com/k/m.tar.gz",
        "eu-west-1",
        5.0,
    )
    assert request.target == "/k/m.tar.gz"
    assert request.headers == sigv4.sign_get(request.url, sigv4.Credentials("AKID", "secret"), "eu-west-1", WHEN)
    with_token = s3get.build_get("b", "k", Settings.from_env({**ENV, "AWS_SESSION_TOKEN": "tok"}).s3, now=WHEN)
    assert with_token is not None and with_token.headers["x-amz-security-token"] == "tok"


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ({}, "https://bkt.s3.eu-west-1.amazonaws.com/k"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "sa-east-1"}, "https://bkt.s3.sa-east-1.amazonaws.com/k"),
        ({"AWS_REGION": ""}, "https://bkt.s3.us-east-1.amazonaws.com/k"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "http://127.0.0.1:1/bkt/k"),
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:2"},
            "http://127.0.0.1:2/bkt/k",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
            "https://bkt.s3.eu-west-1.amazonaws.com/k",
        ),
    ],
)
def test_region_and_endpoint_from_the_environment(extra: dict[str, str], url: str) -> None:
    request = s3get.build_get("bkt", "k", Settings.from_env({**ENV, **extra}).s3)
    assert request is not None and request.url == url


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"AWS_ACCESS_KEY_ID": "AKID"},
        {"AWS_SECRET_ACCESS_KEY": "secret"},
        {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "secret"},
        {"AWS_PROFILE": "dev", "AWS_REGION": "eu-west-1"},  # profiles and config files are boto3's
    ],
)
def test_no_credentials_in_the_environment_gives_none(env: dict[str, str]) -> None:
    assert s3get.build_get("b", "k", Settings.from_env(env).s3) is None
    assert s3get.get_object("b", "k", Settings.from_env(env).s3) is None


@pytest.mark.parametrize(
    ("bucket", "extra"),
    [
        ("b", {"HTTPS_PROXY": "http://proxy:3128"}),
        ("b", {"http_proxy": "http://proxy:3128"}),
        ("b", {"AWS_USE_FIPS_ENDPOINT": "true"}),
        ("b", {"AWS_USE_DUALSTACK_ENDPOINT": "1"}),
        ("fast--usw2-az1--x-s3", {}),
    ],
)
def test_what_only_boto3_does_gives_none(bucket: str, extra: dict[str, str]) -> None:
    assert s3get.build_get(bucket, "k", Settings.from_env({**ENV, **extra}).s3) is None


@pytest.mark.parametrize("text", ["0", "-1", "soon", "inf", "nan", ""])
def test_a_bad_timeout_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="LAMBDAVISION_S3_TIMEOUT must be a positive number of seconds"):
        s3get.build_get("b", "k", Settings.from_env({**ENV, "LAMBDAVISION_S3_TIMEOUT": text}).s3)


def test_timeout_from_the_environment() -> None:
    assert Settings.from_env({"LAMBDAVISION_S3_TIMEOUT": "0.25"}).s3.timeout == 0.25
    assert Settings.from_env({}).s3.timeout == 5.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
            b"<Message>The specified key does not exist.</Message><Key>k</Key></Error>",
            ("NoSuchKey", "The specified key does not exist."),
        ),
        (
            b'<Error xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Code>AccessDenied</Code>'
            b"<Message>Access\n   Denied</Message></Error>",
            ("AccessDenied", "Access Denied"),
        ),
        (b"<Error><Code>SlowDown</Code></Error>", ("SlowDown", None)),
        (b"<html><body>Bad Gateway</body></html>", (None, None)),
        (b"<Error><Code>Unclosed", (None, None)),
        (b"", (None, None)),
        (b"not xml at all", (None, None)),
        (b"<Error><Code>X</Code><Message>" + b"m" * 1000 + b"</Message></Error>", ("X", "m" * 297 + "...")),
    ],
)
def test_parse_error(body: bytes, expected: tuple[str | None, str | None]) -> None:
    assert s3_errors.parse_error(body) == expected
