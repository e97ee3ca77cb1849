"""AWS Signature Version 4 for one S3 GetObject, and the URL it goes to: pure (no sockets, no env).

Hand-written on purpose: the Lambda function only ever sends one signed GET, and boto3 costs a cold
start ~100 ms to import, ~80 ms to build a client and ~40 MB of peak memory; botocore's signer
alone (`import botocore.auth`) ~70 ms and ~18 MB. SigV4 for a GET without a body is a few HMACs.
The output is checked against botocore's `S3SigV4Auth` in the unit tests and against moto's
signature check in the functional ones. `runtime.s3get` sends the request.

- endpoint: path-style under a configured endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), else
  real S3, virtual-hosted (`https://{bucket}.s3.{region}.amazonaws.com/{key}`), or path-style for
  bucket names that cannot be a host name label (dots).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from lambdavision.core.errors import ConfigError

EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()

_ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# A bucket name that can be a host name label (no dots, lower case): virtual-hosted addressing.
_DNS_LABEL_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


@dataclass(frozen=True)
class GetRequest:
    """A signed GET of one object, ready to send (and to send again: a retry reuses it)."""

    uri: str  # s3://bucket/key, for messages
    url: str
    region: str
    headers: Mapping[str, str]
    timeout: float
    ca_bundle: str | None = None

    @property
    def target(self) -> str:
        """The request target (path): kept percent-encoded exactly as it was signed."""
        parts = urlsplit(self.url)
        return parts.path


def encode_key(key: str) -> str:
    """A key as SigV4 and S3 want it in the path: each segment percent-encoded (UTF-8), '/' kept."""
    return quote(key, safe="/~")


def object_url(bucket: str, key: str, region: str, endpoint: str | None = None) -> str:
    """The URL of an object: path-style under `endpoint`, else real S3 (virtual-hosted if it can)."""
    if endpoint is not None:
        parts = urlsplit(endpoint)
        try:
            parts.port  # noqa: B018 -- raises ValueError for a malformed port
        except ValueError:
            raise ConfigError(f"the S3 endpoint URL {endpoint!r} has a malformed port") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(f"the S3 endpoint URL must be http(s)://host[:port][/path], got {endpoint!r}")
        base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        return f"{base}/{quote(bucket, safe='')}/{encode_key(key)}"
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    if _DNS_LABEL_BUCKET.fullmatch(bucket):
        return f"https://{bucket}.s3.{region}.{domain}/{encode_key(key)}"
    return f"https://s3.{region}.{domain}/{quote(bucket, safe='')}/{encode_key(key)}"


def host_header(url: str) -> str:
    """The Host header (and signed host): lower-case host, port only when not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sign_get(url: str, credentials: Credentials, region: str, when: dt.datetime) -> dict[str, str]:
    """The headers of a SigV4-signed S3 GET of `url` (no query, no body) at time `when` (UTC).

    `url`'s path must already be encoded as it goes on the wire (`object_url` does that): S3's
    canonical URI is that path as is, without the normalisation other services apply.
    """
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)  # a naive `when` is taken as UTC already
    amz_date = when.strftime(_AMZ_DATE_FORMAT)
    day = amz_date[:8]
    signed = {
        "host": host_header(url),
        "x-amz-content-sha256": EMPTY_PAYLOAD_SHA256,
        "x-amz-date": amz_date,
    }
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
    signed_names = ";".join(names)
    canonical_request = "\n".join(
        ["GET", urlsplit(url).path or "/", "", canonical_headers, signed_names, EMPTY_PAYLOAD_SHA256]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        [_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(f"AWS4{credentials.secret_access_key}".encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    authorization = (
        f"{_ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return {**signed, "authorization": authorization}


__all__ = [
    "EMPTY_PAYLOAD_SHA256",
    "Credentials",
    "GetRequest",
    "encode_key",
    "host_header",
    "object_url",
    "sign_get",
]
