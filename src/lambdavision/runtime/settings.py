"""Every environment variable the Lambda function reads, parsed once, in one place, one error style.

`Settings.from_env(environ)` is the only reader: the handler, the model source, the S3 reads, the
fetcher and the inference backend take what they need from the `Settings` it returns. A bad value
is a `ConfigError` naming the variable and the value ("NAME must be ..., got 'value'"), raised
before any model is downloaded. An unset variable takes its default.

The function's own:            the platform's (set by Lambda):
  MODEL_URI                      AWS_LAMBDA_RUNTIME_API (inside a runtime: load at INIT)
  MODEL_BUCKET + MODEL_KEY       AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_MEMORY_SIZE
  LAMBDAVISION_CACHE_DIR         LAMBDA_TASK_ROOT (a bundled model), LOG_LEVEL
  LAMBDAVISION_THREADS           AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
  LAMBDAVISION_S3_TIMEOUT        AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL(_S3),
  LAMBDAVISION_S3_CONNECTIONS    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, AWS_CA_BUNDLE,
  LAMBDAVISION_MAX_IMAGE_BYTES   AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT and the
  LAMBDAVISION_MAX_BATCH         *_PROXY variables (which send the S3 read to boto3)
  LAMBDAVISION_CORS_ORIGIN
  LAMBDAVISION_PAGE
  LAMBDAVISION_ALLOW_PRIVATE_URLS, LAMBDAVISION_MAX_FETCH_BYTES,
  LAMBDAVISION_FETCH_TIMEOUT, LAMBDAVISION_FETCH_PORTS (the fetch policy)

(SSL_CERT_FILE / SSL_CERT_DIR are OpenSSL's own: `runtime.fetch` only keys its TLS context on them.)
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lambdavision.core.errors import ConfigError
from lambdavision.core.payload import DEFAULT_MAX_BATCH
from lambdavision.core.sigv4 import Credentials
from lambdavision.core.urlpolicy import (
    ALLOW_PRIVATE_ENV,
    MAX_BYTES_ENV,
    PORTS_ENV,
    TIMEOUT_ENV,
    FetchPolicy,
)

S3_TIMEOUT_ENV = "LAMBDAVISION_S3_TIMEOUT"
S3_CONNECTIONS_ENV = "LAMBDAVISION_S3_CONNECTIONS"
THREADS_ENV = "LAMBDAVISION_THREADS"
CACHE_DIR_ENV = "LAMBDAVISION_CACHE_DIR"
RUNTIME_API_ENV = "AWS_LAMBDA_RUNTIME_API"
DEFAULT_S3_TIMEOUT_S = 5.0
DEFAULT_REGION = "us-east-1"
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}

# Lambda gives one vCPU's worth of CPU per 1,769 MB of memory, up to 6 vCPUs.
MB_PER_VCPU = 1769
MAX_VCPUS = 6
# Parallel ranged GETs of a model on S3: ~9 per vCPU, 2..8 (see runtime.s3_ranges for the figures).
CONNECTIONS_PER_VCPU = 9
MAX_CONNECTIONS = 8

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def in_lambda_runtime(environ: Mapping[str, str]) -> bool:
    """True inside a Lambda runtime (AWS's, or lambdavision's local one): the handler loads at INIT."""
    return bool(environ.get(RUNTIME_API_ENV))


@dataclass(frozen=True)
class S3Settings:
    """How the function reads its model from S3 (the variables botocore would read, and ours)."""

    credentials: Credentials | None = None
    region_name: str | None = None  # AWS_REGION, else AWS_DEFAULT_REGION; None: unset
    endpoint: str | None = None  # AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (path-style)
    timeout: float = DEFAULT_S3_TIMEOUT_S
    connections: int = MAX_CONNECTIONS  # what no memory size gives (1 vCPU)
    ca_bundle: str | None = None
    # A proxy, a FIPS or dual-stack endpoint: what only boto3 does (the lean GET steps aside).
    wants_boto3: bool = False

    @property
    def region(self) -> str:
        return self.region_name or DEFAULT_REGION


@dataclass(frozen=True)
class Settings:
    """The function's settings, read from its environment by `from_env` (the one reader)."""

    model_uri: str | None = None
    model_bucket: str | None = None
    model_key: str | None = None
    task_root: str | None = None
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    threads: int | None = None  # ONNX Runtime's intra-op threads; None: its default
    function_name: str | None = None  # set inside Lambda (and lambdavision's local runtime)
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    max_image_bytes: int = FetchPolicy.max_bytes
    max_batch: int = DEFAULT_MAX_BATCH
    cors_origin: str | None = None
    serve_page: bool = True
    log_level: int = LEVELS["INFO"]
    s3: S3Settings = field(default_factory=S3Settings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Parse every variable; ConfigError naming the first one that is invalid."""
        memory_mb = _memory_mb(environ)
        policy = _fetch_policy(environ)
        return cls(
            model_uri=environ.get("MODEL_URI") or None,
            model_bucket=environ.get("MODEL_BUCKET") or None,
            model_key=environ.get("MODEL_KEY") or None,
            task_root=environ.get("LAMBDA_TASK_ROOT") or None,
            cache_dir=Path(environ[CACHE_DIR_ENV]) if environ.get(CACHE_DIR_ENV) else default_cache_dir(),
            threads=_threads(environ, memory_mb),
            function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME") or None,
            policy=policy,
            max_image_bytes=_whole(environ, "LAMBDAVISION_MAX_IMAGE_BYTES", policy.max_bytes),
            max_batch=_whole(environ, "LAMBDAVISION_MAX_BATCH", DEFAULT_MAX_BATCH),
            cors_origin=environ.get("LAMBDAVISION_CORS_ORIGIN") or None,
            serve_page=environ.get("LAMBDAVISION_PAGE", "1") != "0",
            log_level=LEVELS.get(environ.get("LOG_LEVEL", "INFO").upper(), LEVELS["INFO"]),
            s3=_s3(environ, memory_mb),
        )


def default_cache_dir() -> Path:
    """A folder of this user's in the temp dir (created 0700 when used)."""
    user = f"-{os.getuid()}" if hasattr(os, "getuid") else ""
    return Path(tempfile.gettempdir()) / f"lambdavision-cache{user}"


# --- One error style -----------------------------------------------------------------------------


def _refuse(name: str, what: str, text: str) -> ConfigError:
    return ConfigError(f"{name} must be {what}, got {text!r}")


def _whole(environ: Mapping[str, str], name: str, default: int, *, empty_is_unset: bool = True) -> int:
    minimum = 1
    text = environ.get(name)
    if text is None or (not text and empty_is_unset):
        return default
    try:
        value = int(text)
    except ValueError:
        raise _refuse(name, f"a whole number >= {minimum}", text) from None
    if value < minimum:
        raise _refuse(name, f"a whole number >= {minimum}", text)
    return value


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _refuse(name, "a positive number of seconds", text)
    return value


def _flag(environ: Mapping[str, str], name: str) -> bool:
    text = environ.get(name, "").strip().lower()
    if text not in _TRUE_WORDS | _FALSE_WORDS:
        raise _refuse(name, "1 or 0", environ[name])
    return text in _TRUE_WORDS


def _on(environ: Mapping[str, str], name: str) -> bool:
    """botocore's reading of a boolean variable: true words on, anything else off."""
    return environ.get(name, "").strip().lower() in _TRUE_WORDS


# --- The groups ----------------------------------------------------------------------------------


def _memory_mb(environ: Mapping[str, str]) -> int | None:
    memory = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    return int(memory) if memory.isdigit() and int(memory) > 0 else None


def _threads(environ: Mapping[str, str], memory_mb: int | None) -> int | None:
    """LAMBDAVISION_THREADS, else the vCPUs Lambda gives this memory size (at most this machine's)."""
    if environ.get(THREADS_ENV):
        return _whole(environ, THREADS_ENV, 1)
    if memory_mb is not None:
        vcpus = min(MAX_VCPUS, max(1, math.ceil(memory_mb / MB_PER_VCPU)))
        return min(vcpus, os.cpu_count() or vcpus)
    return None  # ONNX Runtime's default: one thread per physical core


def _fetch_policy(environ: Mapping[str, str]) -> FetchPolicy:
    allow_private = _flag(environ, ALLOW_PRIVATE_ENV)
    max_bytes = FetchPolicy.max_bytes
    if MAX_BYTES_ENV in environ:  # set but empty is refused too
        max_bytes = _whole(environ, MAX_BYTES_ENV, max_bytes, empty_is_unset=False)
    total = _seconds(environ, TIMEOUT_ENV, FetchPolicy.total_timeout)
    return FetchPolicy(
        allow_private=allow_private,
        max_bytes=max_bytes,
        connect_timeout=min(FetchPolicy.connect_timeout, total),
        total_timeout=total,
        ports=_ports(environ[PORTS_ENV]) if environ.get(PORTS_ENV) else None,
    )


def _ports(text: str) -> frozenset[int] | Literal["any"]:
    """`LAMBDAVISION_FETCH_PORTS`: "80,443,8080", or "any"."""
    if text.strip().lower() in ("any", "*"):
        return "any"
    ports: set[int] = set()
    for word in text.replace(" ", ",").split(","):
        if not word:
            continue
        if not word.isdigit() or not 1 <= int(word) <= 65535:
            raise _refuse(PORTS_ENV, "port numbers separated by commas, or 'any'", text)
        ports.add(int(word))
    if not ports:
        raise _refuse(PORTS_ENV, "at least one port (or 'any')", text)
    return frozenset(ports)


def _connections(environ: Mapping[str, str], memory_mb: int | None) -> int:
    """LAMBDAVISION_S3_CONNECTIONS (at most 64), else ~9 per vCPU of the memory size, 2..8."""
    if environ.get(S3_CONNECTIONS_ENV):
        return min(_whole(environ, S3_CONNECTIONS_ENV, 1), 64)
    vcpus = memory_mb / MB_PER_VCPU if memory_mb is not None else 1.0
    return max(2, min(MAX_CONNECTIONS, math.ceil(vcpus * CONNECTIONS_PER_VCPU)))


def _s3(environ: Mapping[str, str], memory_mb: int | None) -> S3Settings:
    key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    credentials = Credentials(key_id, secret, environ.get("AWS_SESSION_TOKEN") or None) if key_id and secret else None
    endpoint = None
    if not _on(environ, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None
    wants_boto3 = any(environ.get(name) for name in _PROXY_VARIABLES) or any(
        _on(environ, name) for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
    )
    return S3Settings(
        credentials=credentials,
        region_name=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
        endpoint=endpoint,
        timeout=_seconds(environ, S3_TIMEOUT_ENV, DEFAULT_S3_TIMEOUT_S),
        connections=_connections(environ, memory_mb),
        ca_bundle=environ.get("AWS_CA_BUNDLE") or None,  # botocore trusts only it when it is set
        wants_boto3=wants_boto3,
    )


__all__ = ["LEVELS", "S3Settings", "Settings", "default_cache_dir", "in_lambda_runtime"]
