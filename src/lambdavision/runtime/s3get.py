"""One signed S3 GetObject on the standard library: what the Lambda function needs to fetch its model.

The request is signed by `core.sigv4` (why hand-written: no boto3 at cold start) and sent here;
its body is a `runtime.s3_body.S3Object`. The scope is deliberately narrow, and `build_get`
returns None (the caller then uses boto3) when the settings ask for more: credentials come ONLY
from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (what Lambda sets), and
proxies, FIPS or dual-stack endpoints and S3 Express directory buckets are left to boto3.

- region, endpoint, timeout and CA bundle come from `runtime.settings.S3Settings`;
- LAMBDAVISION_S3_TIMEOUT (seconds, default 5) bounds the connect and each read; connection
  errors and 5xx answers are retried once, before any byte of the body was handed out. A
  timeout is not retried: a second wait would outlast Lambda's 10 s INIT.
- every failure is an ArtifactError naming the s3:// URI (S3's own Code and Message when it
  answered with an error), never a raw socket or http.client exception.
"""

from __future__ import annotations

import datetime as dt
import http.client
import time
from urllib.parse import urlsplit

from lambdavision.core.errors import ArtifactError, ConfigError
from lambdavision.core.sigv4 import GetRequest, host_header, object_url, sign_get
from lambdavision.runtime.s3_body import describe
from lambdavision.runtime.s3_errors import error_from
from lambdavision.runtime.s3_object import S3Object
from lambdavision.runtime.settings import S3_TIMEOUT_ENV, S3Settings

RETRY_PAUSE_S = 0.2
USER_AGENT = "lambdavision-s3get/1"


def build_get(bucket: str, key: str, s3: S3Settings, now: dt.datetime | None = None) -> GetRequest | None:
    """A signed GET of s3://bucket/key; None when the settings hold no credentials (or want what
    only boto3 does: a proxy, FIPS / dual-stack, an S3 Express bucket), so the caller uses boto3."""
    # Directory buckets (--x-s3) sign with CreateSession credentials: boto3's.
    if s3.credentials is None or s3.wants_boto3 or bucket.endswith("--x-s3"):
        return None
    url = object_url(bucket, key, s3.region, s3.endpoint)
    return GetRequest(
        uri=f"s3://{bucket}/{key}",
        url=url,
        region=s3.region,
        headers=sign_get(url, s3.credentials, s3.region, now or dt.datetime.now(dt.UTC)),
        timeout=s3.timeout,
        ca_bundle=s3.ca_bundle,
    )


def connection_for(request: GetRequest) -> http.client.HTTPConnection:
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    if parts.scheme == "https":
        import ssl  # only an https endpoint needs it

        try:
            context = ssl.create_default_context(cafile=request.ca_bundle)
        except OSError as exc:  # a missing file, or ssl.SSLError (an OSError) for one that holds no certificate
            raise ConfigError(f"AWS_CA_BUNDLE {request.ca_bundle!r} cannot be used as a CA bundle ({exc})") from exc
        return http.client.HTTPSConnection(host, parts.port, timeout=request.timeout, context=context)
    return http.client.HTTPConnection(host, parts.port, timeout=request.timeout)


def _retryable(exc: BaseException) -> bool:
    # RemoteDisconnected is a ConnectionResetError: refused, reset, aborted, closed unanswered.
    return isinstance(exc, ConnectionError)


def open_get(request: GetRequest) -> S3Object:
    """Send the GET; the object once S3 answers 200 (body unread), else ArtifactError."""
    where = host_header(request.url)
    for attempt in (1, 2):
        connection = connection_for(request)
        try:
            connection.putrequest("GET", request.target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.items():
                connection.putheader(name, value)
            connection.putheader("Accept-Encoding", "identity")
            connection.putheader("User-Agent", USER_AGENT)
            connection.endheaders()
            sock = connection.sock
            response = connection.getresponse()
        except TimeoutError as exc:
            connection.close()
            raise ArtifactError(
                f"{request.uri}: cannot read from S3: {where} did not answer within "
                f"{request.timeout:g} s ({S3_TIMEOUT_ENV})"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            if attempt == 1 and _retryable(exc):
                continue
            raise ArtifactError(f"{request.uri}: cannot read from S3 at {where}: {describe(exc)}") from exc
        if response.status in (200, 206):  # 206: the request asked for a Range
            return S3Object(request, connection, response, sock)
        try:
            if response.status >= 500 and attempt == 1:
                time.sleep(RETRY_PAUSE_S)  # S3's 503 SlowDown asks for a pause
                continue
            raise error_from(request, response)
        finally:
            response.close()
            connection.close()
    raise AssertionError("unreachable: the second attempt returns or raises")


def get_object(bucket: str, key: str, s3: S3Settings) -> S3Object | None:
    """GET s3://bucket/key with the settings' credentials; None when they have none (use boto3)."""
    request = build_get(bucket, key, s3)
    return None if request is None else open_get(request)


__all__ = ["GetRequest", "S3Object", "build_get", "connection_for", "get_object", "open_get"]
