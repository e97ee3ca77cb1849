"""One signed S3 GetObject on the standard library: what the Lambda function needs to fetch its model.

Hand-written on purpose: the function only ever sends one signed GET, and boto3 costs a cold start
~100 ms to import, ~80 ms to build a client and ~40 MB of peak memory; botocore's signer alone
(`import botocore.auth`) ~70 ms and ~18 MB. AWS Signature Version 4 for a GET without a body is a
few HMACs. Its output is checked against botocore's `S3SigV4Auth` in the unit tests and against
moto's signature check in the functional ones.

The scope is deliberately narrow, and `build_get` returns None (the caller then uses boto3) when
the environment asks for more: credentials come ONLY from AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (what Lambda sets), and proxies, FIPS or dual-stack
endpoints and S3 Express directory buckets are left to boto3.

- region: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1;
- endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (path-style addressing), else real S3,
  virtual-hosted (`https://{bucket}.s3.{region}.amazonaws.com/{key}`), or path-style for bucket
  names that cannot be a host name label (dots);
- LAMBDAVISION_S3_TIMEOUT (seconds, default 5) bounds the connect and each read; connection
  errors and 5xx answers are retried once, before any byte of the body was handed out. A
  timeout is not retried: a second wait would outlast Lambda's 10 s INIT.
- every failure is an ArtifactError naming the s3:// URI (S3's own Code and Message when it
  answered with an error), never a raw socket or http.client exception.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import io
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import quote, urlsplit

from lambdavision.core.errors import ArtifactError, ConfigError

TIMEOUT_ENV = "LAMBDAVISION_S3_TIMEOUT"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_REGION = "us-east-1"
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()
ERROR_BODY_CAP = 64 * 1024  # S3's error documents are < 1 KB; never read a large body as one
CHUNK_BYTES = 1024 * 1024
RETRY_PAUSE_S = 0.2
USER_AGENT = "lambdavision-s3get/1"

_ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
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


# --- The environment (pure) ----------------------------------------------------------------------


def credentials_from_env(environ: Mapping[str, str]) -> Credentials | None:
    key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        return None
    return Credentials(key_id, secret, environ.get("AWS_SESSION_TOKEN") or None)


def region_from_env(environ: Mapping[str, str]) -> str:
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def endpoint_from_env(environ: Mapping[str, str]) -> str | None:
    """The S3 endpoint the environment sets (as botocore reads it), or None for real S3."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() in _TRUE_WORDS:
        return None
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def timeout_from_env(environ: Mapping[str, str]) -> float:
    text = environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise ConfigError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
    return value


def _needs_boto3(bucket: str, environ: Mapping[str, str]) -> bool:
    """What this GET does not do: proxies, FIPS / dual-stack endpoints, S3 Express buckets."""
    if any(environ.get(name) for name in _PROXY_VARIABLES):
        return True
    for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"):
        if environ.get(name, "").strip().lower() in _TRUE_WORDS:
            return True
    return bucket.endswith("--x-s3")  # directory buckets sign with CreateSession credentials


# --- URLs and the signature (pure) ---------------------------------------------------------------


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


def build_get(bucket: str, key: str, environ: Mapping[str, str], now: dt.datetime | None = None) -> GetRequest | None:
    """A signed GET of s3://bucket/key from the environment; None when the environment has no
    credentials (or wants what only boto3 does), so the caller can fall back to boto3."""
    credentials = credentials_from_env(environ)
    if credentials is None or _needs_boto3(bucket, environ):
        return None
    region = region_from_env(environ)
    url = object_url(bucket, key, region, endpoint_from_env(environ))
    headers = sign_get(url, credentials, region, now or dt.datetime.now(dt.UTC))
    return GetRequest(
        uri=f"s3://{bucket}/{key}",
        url=url,
        region=region,
        headers=headers,
        timeout=timeout_from_env(environ),
        ca_bundle=environ.get("AWS_CA_BUNDLE") or None,  # botocore trusts only it when it is set
    )


# --- The socket work -----------------------------------------------------------------------------


class _Body(io.RawIOBase):
    """The response body: socket failures and a short body become ArtifactError naming the URI."""

    def __init__(
        self,
        request: GetRequest,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        sock: socket.socket | None,
    ):
        super().__init__()
        self._request = request
        self._connection = connection
        self._response = response
        # Kept from before getresponse(): with `Connection: close` http.client drops connection.sock,
        # and interrupt() still has to reach the socket the body is read from.
        self._sock = sock
        self.length = response.length  # None when chunked or close-delimited
        self.bytes_read = 0

    @property
    def name(self) -> str:
        return self._request.uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        # read1: what has arrived, without waiting to fill the buffer (the count stays exact).
        data = self._take(self._response.read1, len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def fetch(self, size: int) -> bytes:
        """Up to `size` bytes, waiting for all of them unless the body ends first; b"" at its end."""
        parts: list[bytes] = []
        got = 0
        while got < size:
            data = self._take(self._response.read1, size - got)  # counted piece by piece, for errors
            if not data:
                break
            parts.append(data)
            got += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _take(self, read: Callable[[int], bytes], size: int) -> bytes:
        uri = self._request.uri
        try:
            data = read(size)
        except TimeoutError as exc:
            raise ArtifactError(
                f"{uri}: cannot read from S3: no data for {self._request.timeout:g} s after "
                f"{self.bytes_read} of {self._of()} bytes ({TIMEOUT_ENV})"
            ) from exc
        except http.client.IncompleteRead as exc:
            raise ArtifactError(f"{uri}: cannot read from S3: the body is truncated ({exc})") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ArtifactError(
                f"{uri}: cannot read from S3: the connection failed after {self.bytes_read} of "
                f"{self._of()} bytes ({_describe(exc)})"
            ) from exc
        self.bytes_read += len(data)
        if not data and size > 0 and self.length is not None and self.bytes_read < self.length:
            raise ArtifactError(
                f"{uri}: cannot read from S3: the body is truncated: the connection closed after "
                f"{self.bytes_read} of {self.length} bytes"
            )
        return data

    def interrupt(self) -> None:
        """Wake a read blocked in another thread (it then fails) before the connection is closed."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def _of(self) -> str:
        return "?" if self.length is None else str(self.length)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._connection.close()
        super().close()


class _ReadAhead:
    """The body as a file object whose `read` is served by a thread reading 1 MiB blocks ahead.

    The download then overlaps what the caller does with each block (gunzip, tar, hashing): the
    thread spends its time in socket reads, which release the GIL. It starts on the first read,
    so a body never read (a cache hit) is never downloaded, and it keeps at most `DEPTH` blocks
    ahead. A failure in the thread is raised by the read that reaches it, in the body's words.
    """

    DEPTH = 4

    def __init__(self, body: _Body) -> None:
        self._body = body
        self.name = body.name
        self._blocks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=self.DEPTH)
        self._current = b""
        self._offset = 0
        self._ended = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self, size: int = -1) -> bytes:
        if self._stopping.is_set():
            raise ValueError(f"{self.name}: read of a closed S3 body")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lambdavision-s3-read", daemon=True)
            self._thread.start()
        if self._offset >= len(self._current) and not self._next_block():
            return b""
        if size < 0 or size >= len(self._current) - self._offset:
            data = self._current[self._offset :] if self._offset else self._current  # no copy if whole
            self._current, self._offset = b"", 0
            return data
        data = self._current[self._offset : self._offset + size]
        self._offset += size
        return data

    def _next_block(self) -> bool:
        if self._ended:
            return False
        block = self._blocks.get()
        if isinstance(block, BaseException):
            self._ended = True
            raise block
        if not block:
            self._ended = True
            return False
        self._current, self._offset = block, 0
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                block = self._body.fetch(CHUNK_BYTES)
            except BaseException as exc:  # handed to the reader by read()
                self._put(exc)
                return
            self._put(block)
            if not block:
                return

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stopping.is_set():
            try:
                self._blocks.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Stop the thread (waking it if it waits on the socket) and let it finish."""
        if self._thread is None:
            return
        self._stopping.set()
        self._body.interrupt()
        self._thread.join()
        self._thread = None


class S3Object:
    """An S3 object being read: `stream` (file-like, `read(n)`), its ETag and length. Close it."""

    def __init__(
        self,
        request: GetRequest,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        sock: socket.socket | None = None,
    ):
        self.uri = request.uri
        self.etag = (response.getheader("ETag") or "").strip().strip('"')
        self.last_modified = response.getheader("Last-Modified")
        self.content_range = response.getheader("Content-Range")  # when a Range was asked (206)
        self._body = _Body(request, connection, response, sock)
        self.content_length = self._body.length
        self.stream = _ReadAhead(self._body)

    @property
    def bytes_read(self) -> int:
        """Body bytes taken off the connection so far."""
        return self._body.bytes_read

    @property
    def closed(self) -> bool:
        return self._body.closed

    def close(self) -> None:
        """Close without reading the rest: the connection is dropped, the body never downloaded."""
        self.stream.close()
        self._body.close()

    def __enter__(self) -> S3Object:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _connection(request: GetRequest) -> http.client.HTTPConnection:
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, http.client.HTTPException):
        return f"malformed response ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    # RemoteDisconnected is a ConnectionResetError: refused, reset, aborted, closed unanswered.
    return isinstance(exc, ConnectionError)


def open_get(request: GetRequest) -> S3Object:
    """Send the GET; the object once S3 answers 200 (body unread), else ArtifactError."""
    where = host_header(request.url)
    for attempt in (1, 2):
        connection = _connection(request)
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
                f"{request.timeout:g} s ({TIMEOUT_ENV})"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            if attempt == 1 and _retryable(exc):
                continue
            raise ArtifactError(f"{request.uri}: cannot read from S3 at {where}: {_describe(exc)}") from exc
        if response.status in (200, 206):  # 206: the request asked for a Range
            return S3Object(request, connection, response, sock)
        try:
            if response.status >= 500 and attempt == 1:
                time.sleep(RETRY_PAUSE_S)  # S3's 503 SlowDown asks for a pause
                continue
            raise _error_from(request, response)
        finally:
            response.close()
            connection.close()
    raise AssertionError("unreachable: the second attempt returns or raises")


def get_object(bucket: str, key: str, environ: Mapping[str, str]) -> S3Object | None:
    """GET s3://bucket/key with the environment's credentials; None when it has none (use boto3)."""
    request = build_get(bucket, key, environ)
    return None if request is None else open_get(request)


# --- S3's error answers --------------------------------------------------------------------------


def _error_from(request: GetRequest, response: http.client.HTTPResponse) -> ArtifactError:
    try:
        body = response.read(ERROR_BODY_CAP)
    except (OSError, http.client.HTTPException):
        body = b""
    code, message = parse_error(body)
    if code:
        text = f"{request.uri}: S3 said {code}: {message or response.reason}"
    else:
        text = f"{request.uri}: S3 answered HTTP {response.status} {_one_line(response.reason)}".rstrip()
    bucket_region = response.getheader("x-amz-bucket-region")
    if bucket_region and bucket_region != request.region:
        text += f" (the bucket is in {bucket_region}, not {request.region}: set AWS_REGION)"
    return ArtifactError(text)


def parse_error(body: bytes) -> tuple[str | None, str | None]:
    """S3's <Error><Code>..</Code><Message>..</Message></Error>: (code, message), None if absent."""
    if not body.lstrip().startswith(b"<"):
        return None, None
    import xml.etree.ElementTree as ElementTree  # only an error answer needs it

    try:
        root = ElementTree.fromstring(body[:ERROR_BODY_CAP])
    except ElementTree.ParseError:
        return None, None
    found: dict[str, str] = {}
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]  # with or without a namespace
        if name in ("Code", "Message") and name not in found and element.text:
            found[name] = _one_line(element.text)
    return found.get("Code"), found.get("Message")


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


__all__ = [
    "TIMEOUT_ENV",
    "Credentials",
    "GetRequest",
    "S3Object",
    "build_get",
    "credentials_from_env",
    "encode_key",
    "endpoint_from_env",
    "get_object",
    "host_header",
    "object_url",
    "open_get",
    "parse_error",
    "region_from_env",
    "sign_get",
    "timeout_from_env",
]
