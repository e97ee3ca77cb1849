"""The shaped S3 stand-in in front of moto: what it was asked to cost (first-byte latency, bandwidth per
connection, an aggregate cap), measured within 10 %, and S3's answers kept (ranges, If-Match, errors)."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdavision.bench_emulation import preload
from lambdavision.core import s3get
from lambdavision.local.shaped_s3 import DEFAULT_SHAPING, LOOPBACK, MB, ShapedS3, Shaping, byte_range

BUCKET = "shaped"
KEY = "models/a b+ñ.bin"  # encoded in the path exactly as signed


@pytest.fixture
def upload(aws_env: dict[str, str]) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)

    def put(data: bytes, key: str = KEY) -> str:
        return str(client.put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"]).strip('"')

    return put


@pytest.fixture
def stand_in(moto_endpoint: str, request: pytest.FixtureRequest) -> Iterator[ShapedS3]:
    shaping = getattr(request, "param", LOOPBACK)
    with ShapedS3(moto_endpoint, shaping) as server:
        yield server


def signed(server: ShapedS3, env: dict[str, str], key: str = KEY, **extra: str) -> tuple[str, dict[str, str]]:
    request = s3get.build_get(BUCKET, key, {**env, "AWS_ENDPOINT_URL": server.url})
    assert request is not None
    return request.target, {**request.headers, **extra}


def get(server: ShapedS3, env: dict[str, str], key: str = KEY, **extra: str) -> tuple[int, dict[str, str], bytes]:
    target, headers = signed(server, env, key, **extra)
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=30)
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def timed_get(connection: http.client.HTTPConnection, target: str, headers: dict[str, str]) -> tuple[float, float, int]:
    """(seconds to the status line, seconds from it to the body's last byte, body bytes) on a kept-alive connection."""
    sent = time.perf_counter()
    connection.request("GET", target, headers=headers)
    response = connection.getresponse()
    first = time.perf_counter()
    size = 0
    while chunk := response.read(1 << 20):
        size += len(chunk)
    return first - sent, time.perf_counter() - first, size


# --- the shaping ---


@pytest.mark.parametrize("stand_in", [Shaping(latency_s=0.25, bandwidth=None)], indirect=True)
def test_first_byte_latency_is_what_was_asked(stand_in: ShapedS3, upload: Any, aws_env: dict[str, str]) -> None:
    upload(b"x" * 1000)
    target, headers = signed(stand_in, aws_env)
    connection = http.client.HTTPConnection("127.0.0.1", int(stand_in.url.rsplit(":", 1)[1]), timeout=30)
    latencies = [timed_get(connection, target, headers)[0] for _ in range(3)]
    connection.close()
    assert statistics.median(latencies) == pytest.approx(0.25, rel=0.10)
    # Any request pays it, not only object GETs (here a listing, forwarded to moto).
    client = boto3.client("s3", endpoint_url=stand_in.url)
    started = time.perf_counter()
    client.list_objects_v2(Bucket=BUCKET)
    assert time.perf_counter() - started >= 0.25


@pytest.mark.parametrize("stand_in", [Shaping(latency_s=0.0, bandwidth=20 * MB)], indirect=True)
def test_bandwidth_per_connection_is_what_was_asked(stand_in: ShapedS3, upload: Any, aws_env: dict[str, str]) -> None:
    upload(bytes(range(250)) * (6 * MB // 250))
    target, headers = signed(stand_in, aws_env)
    connection = http.client.HTTPConnection("127.0.0.1", int(stand_in.url.rsplit(":", 1)[1]), timeout=30)
    rates = []
    for _ in range(2):  # the same kept-alive connection: each response is paced from its own first byte
        _, seconds, size = timed_get(connection, target, headers)
        assert size == 6 * MB
        rates.append(size / seconds)
    connection.close()
    assert max(rates) == pytest.approx(20 * MB, rel=0.10)
    assert min(rates) == pytest.approx(20 * MB, rel=0.10)


@pytest.mark.parametrize("stand_in", [Shaping(latency_s=0.0, bandwidth=40 * MB, aggregate=20 * MB)], indirect=True)
def test_the_aggregate_cap_is_shared_by_every_connection(
    stand_in: ShapedS3, upload: Any, aws_env: dict[str, str]
) -> None:
    upload(b"\x01" * (3 * MB))
    target, headers = signed(stand_in, aws_env)
    get(stand_in, aws_env)  # the object is in the stand-in's cache: only the shaping is timed below
    port = int(stand_in.url.rsplit(":", 1)[1])
    done: list[float] = []

    def one() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", target, headers=headers)
        assert len(connection.getresponse().read()) == 3 * MB
        done.append(time.perf_counter())
        connection.close()

    threads = [threading.Thread(target=one) for _ in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(done) == 2
    assert 6 * MB / (max(done) - started) == pytest.approx(20 * MB, rel=0.10)


def test_defaults_are_aws_published_figures() -> None:
    assert (DEFAULT_SHAPING.latency_s, DEFAULT_SHAPING.bandwidth, DEFAULT_SHAPING.aggregate) == (0.030, 85 * MB, None)
    assert DEFAULT_SHAPING.describe() == "30 ms to the first byte, 85 MB/s per connection"
    assert LOOPBACK.describe() == "loopback (no shaping)"
    for bad in ({"latency_s": -1.0}, {"bandwidth": 0.0}, {"aggregate": -5.0}):
        with pytest.raises(ValueError):
            Shaping(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loopback"):
        ShapedS3("http://192.0.2.1:9000")


# --- S3's answers, kept ---


def test_ranges_and_if_match_as_s3_answers_them(stand_in: ShapedS3, upload: Any, aws_env: dict[str, str]) -> None:
    data = bytes(range(256)) * 40
    etag = upload(data)
    status, headers, body = get(stand_in, aws_env, Range="bytes=100-299", **{"If-Match": f'"{etag}"'})
    assert (status, body, headers["content-range"]) == (206, data[100:300], f"bytes 100-299/{len(data)}")
    assert headers["etag"].strip('"') == etag
    status, headers, body = get(stand_in, aws_env, Range="bytes=-10")
    assert (status, body) == (206, data[-10:])
    status, headers, body = get(stand_in, aws_env, Range=f"bytes={len(data)}-")
    assert status == 416 and s3get.parse_error(body)[0] == "InvalidRange"
    status, _, body = get(stand_in, aws_env, Range="bytes=0-9", **{"If-Match": '"0123"'})
    assert status == 412 and s3get.parse_error(body)[0] == "PreconditionFailed"
    status, headers, body = get(stand_in, aws_env)
    assert (status, body, headers["accept-ranges"]) == (200, data, "bytes")


def test_a_changed_object_is_served_new(
    stand_in: ShapedS3, upload: Any, aws_env: dict[str, str], tmp_path: Path
) -> None:
    old = upload(b"old" * 1000)
    preload(stand_in, [KEY], tmp_path, bucket=BUCKET)  # what the benchmarks do before measuring
    assert stand_in.object_reads == 1
    assert get(stand_in, aws_env)[2] == b"old" * 1000
    assert get(stand_in, aws_env, Range="bytes=0-9")[2] == b"oldoldoldo"
    assert stand_in.object_reads == 1  # served from its copy, moto only asked for the metadata
    new = upload(b"new" * 1000)
    status, headers, body = get(stand_in, aws_env, **{"If-Match": f'"{old}"'})
    assert status == 412
    status, headers, body = get(stand_in, aws_env)
    assert (status, body, headers["etag"].strip('"')) == (200, b"new" * 1000, new)
    assert stand_in.object_reads == 2


def test_moto_errors_and_other_calls_pass(stand_in: ShapedS3, upload: Any, aws_env: dict[str, str]) -> None:
    upload(b"data")
    status, _, body = get(stand_in, aws_env, key="missing.bin")
    assert status == 404 and s3get.parse_error(body)[0] == "NoSuchKey"
    client = boto3.client("s3", endpoint_url=stand_in.url)  # boto3 (the guide's app) through the stand-in
    client.put_object(Bucket=BUCKET, Key="up.bin", Body=b"uploaded through it")
    assert client.get_object(Bucket=BUCKET, Key="up.bin")["Body"].read() == b"uploaded through it"
    assert client.head_object(Bucket=BUCKET, Key="up.bin")["ContentLength"] == len(b"uploaded through it")


@pytest.mark.parametrize("stand_in", [Shaping(latency_s=0.0, bandwidth=5 * MB)], indirect=True)
def test_a_client_that_hangs_up_mid_body_leaves_the_server_serving(
    stand_in: ShapedS3, upload: Any, aws_env: dict[str, str]
) -> None:
    upload(b"\x02" * (2 * MB))
    target, headers = signed(stand_in, aws_env)
    connection = http.client.HTTPConnection("127.0.0.1", int(stand_in.url.rsplit(":", 1)[1]), timeout=30)
    connection.request("GET", target, headers=headers)
    assert len(connection.getresponse().read(100_000)) == 100_000
    connection.close()  # mid-body
    status, _, body = get(stand_in, aws_env, Range="bytes=0-9")
    assert (status, body) == (206, b"\x02" * 10)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=100-", "416"),
        ("bytes=-0", "416"),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=9-3", None),
    ],
)
def test_range_headers_read_as_s3_reads_them(header: str | None, expected: Any) -> None:
    assert byte_range(header, 100) == expected
