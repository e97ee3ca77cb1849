"""A large model read by parallel ranged GETs: in order, with bounded memory, each range retried on its
own, an object replaced between ranges read again at its new version — and never a corrupt model.

A scripted loopback server of this file's own plays S3 (ranges, ETag, If-Match) and its failures
(a reset, a 503, a stall, a short range, a cut connection, a replaced object, a lying server);
moto behind the shaped stand-in plays the whole path once, end to end.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from lambdavision import model_source, s3_ranges
from lambdavision.core import s3get
from lambdavision.core.artifact import write_artifact
from lambdavision.core.errors import ArtifactError, ConfigError
from lambdavision.loader import load_classifier
from lambdavision.local.shaped_s3 import LOOPBACK, ShapedS3
from tests.fixtures.colour import COLOUR_PREP, COLOURS, colour_image, colour_onnx

MIB = 1024 * 1024
BUCKET, KEY = "models", "big/model.tar.gz"
URI = f"s3://{BUCKET}/{KEY}"
PTH_BYTES = 64 * MIB


def big_artifact(path: Path, classes: list[str], seed: int) -> Path:
    """The colour model with 20 MiB of weights beside it (ONNX Runtime ignores a data file its graph
    never names) and a 64 MiB .pth last: ~88 MB, of which the server needs the first ~21."""
    rng = np.random.default_rng(seed)
    write_artifact(
        path,
        classes=classes,
        preprocessing=COLOUR_PREP,
        onnx=colour_onnx(len(classes)),
        onnx_data=rng.integers(0, 256, 20 * MIB, dtype=np.uint8).tobytes(),
        torchscript=b"\x00pth" * (PTH_BYTES // 4),
    )
    return path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    folder = tmp_path_factory.mktemp("big")
    one = big_artifact(folder / "one.tar.gz", list(COLOURS), 1).read_bytes()
    two = big_artifact(folder / "two.tar.gz", ["cyan", "magenta", "yellow"], 2).read_bytes()
    return one, two


# --- a scripted S3 -------------------------------------------------------------------------------

Fault = Callable[[socket.socket, int, int], bool]  # (conn, first, last) -> True when it answered


@dataclass
class RangeS3:
    """Serves `body` with S3's Range / ETag / If-Match answers; `faults[n]` plays, once, the first GET of a
    range starting at byte n (the parts are fetched in parallel: their order of arrival varies)."""

    url: str
    body: bytes
    etag: str
    faults: dict[int, Fault] = field(default_factory=dict)
    requests: list[tuple[int, int, str | None]] = field(default_factory=list)  # (first, last, If-Match)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def replace(self, body: bytes) -> None:
        self.body, self.etag = body, hashlib.md5(body).hexdigest()


def _head(conn: socket.socket) -> dict[str, str]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    lines = data.decode("latin-1").split("\r\n")
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)}


def send_range(conn: socket.socket, server: RangeS3, first: int, last: int, *, upto: int | None = None) -> None:
    """206 for [first, last]; with `upto`, only the bytes up to it are sent (Content-Length says all)."""
    body = server.body[first : last + 1]
    head = (
        f"HTTP/1.1 206 Partial Content\r\nContent-Length: {len(body)}\r\nContent-Range: bytes {first}-{last}/"
        f'{len(server.body)}\r\nETag: "{server.etag}"\r\nConnection: close\r\n\r\n'
    )
    conn.sendall(head.encode() + (body if upto is None else body[: upto - first]))


def xml_error(conn: socket.socket, status: str, code: str) -> None:
    body = f"<Error><Code>{code}</Code><Message>{code} here</Message></Error>".encode()
    conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


@pytest.fixture
def range_s3(artifacts: tuple[bytes, bytes]) -> Iterator[RangeS3]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    server = RangeS3(f"http://127.0.0.1:{listener.getsockname()[1]}", b"", "")
    server.replace(artifacts[0])
    held: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        try:
            headers = _head(conn)
            match = re.fullmatch(r"bytes=(\d+)-(\d+)", headers.get("range", ""))
            size = len(server.body)
            first, last = (int(match.group(1)), min(int(match.group(2)), size - 1)) if match else (0, size - 1)
            with server.lock:
                server.requests.append((first, last, headers.get("if-match")))
                fault = server.faults.pop(first, None)
            if fault is not None and fault(conn, first, last):
                return
            if_match = headers.get("if-match")
            if if_match is not None and if_match.strip('"') != server.etag:
                xml_error(conn, "412 Precondition Failed", "PreconditionFailed")
                return
            send_range(conn, server, first, last)
        except OSError:
            pass
        finally:
            conn.close()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            conn.settimeout(20)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=10)
        for conn in held:
            conn.close()


def env_for(tmp_path: Path, endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "MODEL_URI": URI,
        "LAMBDAVISION_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",  # 0.58 vCPU: 6 connections
        "LAMBDAVISION_S3_TIMEOUT": "0.5",
        **extra,
    }


def loads_as(env: dict[str, str], classes: list[str]) -> None:
    classifier = load_classifier(environ=env)
    assert classifier.classes == classes
    assert classifier.classify([colour_image("red")])[0].label == classes[0]


def parts_of(server: RangeS3) -> list[tuple[int, int]]:
    return s3_ranges.plan(len(server.body), s3_ranges.connections_for({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}))


def cached_models(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "cache").glob("*/lambdavision.json"))


# --- the happy path ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_ranges_fetched_in_parallel_and_read_in_order_stopping_before_the_pth(
    tmp_path: Path, range_s3: RangeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    real_open = s3_ranges.open_object
    monkeypatch.setattr(s3_ranges, "open_object", lambda *args: opened.append(real_open(*args)) or opened[-1])
    loads_as(env_for(tmp_path, range_s3.url), list(COLOURS))
    total = len(range_s3.body)
    first, *ranged = range_s3.requests
    assert first == (0, s3_ranges.FIRST_BYTES - 1, None)  # the first GET learns size and ETag
    assert {match for *_, match in ranged} == {f'"{range_s3.etag}"'}  # every later range pins the version
    assert {(a, b + 1) for a, b, _ in ranged} <= set(parts_of(range_s3))
    # The reader stopped before the .pth (the last 64 MiB): what it had fetched ahead is bounded by the
    # window, and the parts covering the rest were never asked for.
    assert isinstance(opened[0], s3_ranges.RangedObject) and opened[0].closed
    assert opened[0].bytes_read <= total - PTH_BYTES + s3_ranges.WINDOW_BYTES + s3_ranges.PART_BYTES
    assert max(b for _, b, _ in ranged) < total - PTH_BYTES // 2
    # A second cold start: the ETag of the first GET names the cached copy, nothing more is fetched.
    before = len(range_s3.requests)
    loads_as(env_for(tmp_path, range_s3.url), list(COLOURS))
    assert range_s3.requests[before:] == [(0, s3_ranges.FIRST_BYTES - 1, None)]


@pytest.mark.timeout(120)
def test_through_moto_and_the_shaped_stand_in(
    tmp_path: Path, artifacts: tuple[bytes, bytes], aws_env: dict[str, str], moto_endpoint: str
) -> None:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key=KEY, Body=artifacts[0])
    with ShapedS3(moto_endpoint, LOOPBACK) as stand_in:
        loads_as({**aws_env, **env_for(tmp_path, stand_in.url, LAMBDAVISION_S3_TIMEOUT="10")}, list(COLOURS))
        assert stand_in.requests > 2  # ranged, in parallel
        assert stand_in.bytes_sent < len(artifacts[0]) - PTH_BYTES // 2


def test_bounded_memory_with_a_slow_reader(tmp_path: Path, range_s3: RangeS3) -> None:
    request = s3get.build_get(BUCKET, KEY, env_for(tmp_path, range_s3.url))
    assert request is not None
    obj = s3_ranges.open_object(request, {"LAMBDAVISION_S3_CONNECTIONS": "4"})
    assert isinstance(obj, s3_ranges.RangedObject)
    got = bytearray()
    peak = 0
    with obj:
        while chunk := obj.stream.read(256 * 1024):
            got += chunk
            peak = max(peak, sum(part.size for part in obj._parts if part.buffer is not None))
            time.sleep(0.001)
    assert bytes(got) == range_s3.body
    # At most 4 parts mapped at once (the first 8 MiB, then parts of at most WINDOW_BYTES / 4 each), each
    # unmapped once read.
    assert 0 < peak <= s3_ranges.FIRST_BYTES + s3_ranges.WINDOW_BYTES
    assert all(part.buffer is None for part in obj._parts)


# --- a range failing or stalling, retried on its own ----------------------------------------------


def reset(conn: socket.socket, first: int, last: int) -> bool:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return True


def slow_down(conn: socket.socket, first: int, last: int) -> bool:
    xml_error(conn, "503 Slow Down", "SlowDown")
    return True


def stall_midway(server: RangeS3) -> Fault:
    def fault(conn: socket.socket, first: int, last: int) -> bool:
        send_range(conn, server, first, last, upto=first + 3 * MIB)
        time.sleep(2)  # LAMBDAVISION_S3_TIMEOUT is 0.5 s
        return True

    return fault


def cut_midway(server: RangeS3) -> Fault:
    def fault(conn: socket.socket, first: int, last: int) -> bool:
        send_range(conn, server, first, last, upto=first + 1 * MIB + 7)
        return True  # and the connection closes

    return fault


def short_range(server: RangeS3) -> Fault:
    def fault(conn: socket.socket, first: int, last: int) -> bool:
        send_range(conn, server, first, first + (last - first) // 2)  # a shorter Content-Range than asked
        return True

    return fault


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["reset", "503", "stall", "cut", "short", "first GET cut"])
def test_a_failing_range_is_retried_from_where_it_stopped(tmp_path: Path, range_s3: RangeS3, kind: str) -> None:
    faults = {"reset": reset, "503": slow_down, "stall": stall_midway(range_s3), "cut": cut_midway(range_s3)}
    faults |= {"short": short_range(range_s3), "first GET cut": cut_midway(range_s3)}
    start = 0 if kind == "first GET cut" else parts_of(range_s3)[1][0]  # a part the reader needs whole
    range_s3.faults[start] = faults[kind]
    loads_as(env_for(tmp_path, range_s3.url), list(COLOURS))
    number = next(i for i, r in enumerate(range_s3.requests) if r[0] == start)
    failed = range_s3.requests[number]
    retries = [r for r in range_s3.requests[number + 1 :] if r[1] == failed[1] and r[0] > failed[0] - 1]
    assert retries, range_s3.requests
    # (The first GET's body comes through s3get's read-ahead in whole 1 MiB blocks: it resumes after the last.)
    resumed_at = {"stall": 3 * MIB, "cut": 1 * MIB + 7, "first GET cut": 1 * MIB}.get(kind, 0)
    if kind == "short":
        resumed_at = (failed[1] - failed[0]) // 2 + 1
    assert retries[0][0] == failed[0] + resumed_at  # only the missing bytes are asked again


@pytest.mark.timeout(60)
def test_a_range_failing_every_time_is_a_clear_error_and_nothing_is_kept(tmp_path: Path, range_s3: RangeS3) -> None:
    part = parts_of(range_s3)[2]
    real = range_s3.faults

    class Always(dict[int, Fault]):
        def pop(self, first: int, default: Any = None) -> Fault | None:
            return reset if first == part[0] else None

    range_s3.faults = Always(real)
    with pytest.raises(
        ArtifactError,
        match=rf"^{re.escape(URI)}: cannot read bytes {part[0]}-{part[1] - 1} from S3 after 3 attempts: ",
    ):
        load_classifier(environ=env_for(tmp_path, range_s3.url))
    assert cached_models(tmp_path) == []


# --- an object changed between ranges --------------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_object_replaced_between_ranges_is_read_again_at_its_new_version(
    tmp_path: Path, range_s3: RangeS3, artifacts: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    def replace_then_answer(conn: socket.socket, first: int, last: int) -> bool:
        range_s3.replace(artifacts[1])
        return False  # answers as S3 now would: 412, its If-Match names the old version

    range_s3.faults[parts_of(range_s3)[1][0]] = replace_then_answer
    with caplog.at_level(logging.WARNING, logger="lambdavision"):
        loads_as(env_for(tmp_path, range_s3.url), ["cyan", "magenta", "yellow"])
    assert "the object changed while it was read" in caplog.text and "reading it again" in caplog.text
    assert len(cached_models(tmp_path)) == 1  # only the new version's copy


@pytest.mark.timeout(60)
def test_an_object_that_keeps_changing_is_a_clear_error(
    tmp_path: Path, range_s3: RangeS3, artifacts: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = s3_ranges.open_object

    def opened_then_replaced(request: s3get.GetRequest, environ: Any) -> Any:
        obj = real_open(request, environ)  # the first GET saw one version; its ranges will meet another
        range_s3.replace(artifacts[1] if range_s3.body == artifacts[0] else artifacts[0])
        return obj

    monkeypatch.setattr(s3_ranges, "open_object", opened_then_replaced)
    with pytest.raises(s3_ranges.ObjectChanged, match=rf"^{re.escape(URI)}: the object changed while it was read"):
        load_classifier(environ=env_for(tmp_path, range_s3.url))
    assert sum(1 for first, *_ in range_s3.requests if first == 0) == 2  # read again once, then the error
    assert cached_models(tmp_path) == []


@pytest.mark.timeout(60)
def test_a_server_mixing_versions_under_one_etag_never_yields_a_model(
    tmp_path: Path, range_s3: RangeS3, artifacts: tuple[bytes, bytes]
) -> None:
    """A server that ignores If-Match and sends another version's bytes: the manifest's sha256 refuses them."""

    def other_bytes(conn: socket.socket, first: int, last: int) -> bool:
        honest = range_s3.body
        range_s3.body = artifacts[1]
        try:
            send_range(conn, range_s3, first, last)
        finally:
            range_s3.body = honest
        return True

    range_s3.faults[parts_of(range_s3)[1][0]] = other_bytes
    with pytest.raises(ArtifactError, match=r"corrupt|not a valid tar|truncated or corrupt gzip"):
        load_classifier(environ=env_for(tmp_path, range_s3.url))
    assert cached_models(tmp_path) == []


def test_a_server_without_ranges_is_read_in_one_get(tmp_path: Path, range_s3: RangeS3) -> None:
    def whole(conn: socket.socket, first: int, last: int) -> bool:
        body = range_s3.body
        conn.sendall(f'HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nETag: "x"\r\n\r\n'.encode() + body)
        return True

    range_s3.faults[0] = whole
    loads_as(env_for(tmp_path, range_s3.url), list(COLOURS))
    assert len(range_s3.requests) == 1


# --- the plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("memory", "connections"), [(None, 9), ("128", 2), ("1024", 6), ("2048", 8), ("3008", 8)])
def test_connections_follow_the_vcpu_share(memory: str | None, connections: int) -> None:
    env = {} if memory is None else {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory}
    assert s3_ranges.connections_for(env) == min(connections, 8)
    assert s3_ranges.connections_for({**env, "LAMBDAVISION_S3_CONNECTIONS": "3"}) == 3
    with pytest.raises(ConfigError, match="LAMBDAVISION_S3_CONNECTIONS"):
        s3_ranges.connections_for({"LAMBDAVISION_S3_CONNECTIONS": "many"})


@pytest.mark.parametrize("total", [1, 8 * MIB, 8 * MIB + 1, 20 * MIB, 102_000_000, 300 * MIB])
@pytest.mark.parametrize("connections", [2, 6, 8])
def test_the_plan_covers_the_object_once_in_order(total: int, connections: int) -> None:
    parts = s3_ranges.plan(total, connections)
    assert parts[0][0] == 0 and parts[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert parts[0][1] == min(total, s3_ranges.FIRST_BYTES)  # small objects: one GET
    sizes = [end - start for start, end in parts[1:]]
    assert all(size <= min(8 * MIB, max(MIB, s3_ranges.WINDOW_BYTES // connections)) for size in sizes)
    if total > 20 * MIB:
        assert len(parts) - 1 >= connections  # every connection has a part


def test_one_connection_reads_the_object_in_one_get(tmp_path: Path, range_s3: RangeS3) -> None:
    loads_as(env_for(tmp_path, range_s3.url, LAMBDAVISION_S3_CONNECTIONS="1"), list(COLOURS))
    assert range_s3.requests == [(0, len(range_s3.body) - 1, None)]
    assert model_source.split_s3_uri(URI) == (BUCKET, KEY)
