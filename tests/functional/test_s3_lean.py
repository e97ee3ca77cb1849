"""The model read from S3 with one signed stdlib GET (core.sigv4 + runtime.s3get), against moto and scripted servers.

moto (shared server) serves the happy paths and S3's own error answers; a moto server of this
file's own enforces IAM, so it checks our SigV4 signatures for real (wrong secret refused, right
one accepted, a session token checked too); small loopback socket servers play the failures moto
cannot: refused, stalled, truncated, a 503 or a reset that a retry gets past.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdavision.core import sigv4
from lambdavision.core.errors import ArtifactError, ConfigError
from lambdavision.local.simulated_aws import moto_server
from lambdavision.runtime import s3get
from lambdavision.runtime.loader import load_classifier
from lambdavision.runtime.settings import Settings
from tests.fixtures.colour import colour_image

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "models"
KEY = "lesson 1/ñ+model.tar.gz"  # a space, unicode and '+': each must be encoded as signed
URI = f"s3://{BUCKET}/{KEY}"


@pytest.fixture
def lean_env(aws_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The function's environment: moto's endpoint and credentials, the model URI, a fresh cache."""
    return {**aws_env, "MODEL_URI": URI, "LAMBDAVISION_CACHE_DIR": str(tmp_path / "cache")}


@pytest.fixture
def uploaded(aws_env: dict[str, str], colour_artifact: Path) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.upload_file(str(colour_artifact), BUCKET, KEY)
    return client


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[s3get.S3Object]:
    """Every object the loader opens through s3get (one per GET)."""
    objects: list[s3get.S3Object] = []
    real = s3get.open_get

    def recording(request: sigv4.GetRequest) -> s3get.S3Object:
        opened_object = real(request)
        objects.append(opened_object)
        return opened_object

    monkeypatch.setattr(s3get, "open_get", recording)
    return objects


def test_lean_path_loads_without_boto3_and_imports_the_runtime(uploaded: Any, lean_env: dict[str, str]) -> None:
    script = (
        "import json, sys\n"
        "from lambdavision.runtime.loader import load_classifier\n"
        "parts = {}\n"
        "classifier = load_classifier(parts_ms=parts)\n"
        "print(json.dumps({'classes': classifier.classes, 'source': classifier.source, 'parts': sorted(parts),\n"
        "    'loaded': sorted(m for m in ('boto3', 'botocore', 'onnxruntime') if m in sys.modules)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=lean_env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer == {
        "classes": ["red", "green", "blue"],
        "source": URI,
        "parts": ["artifact_ms", "session_ms"],
        "loaded": ["onnxruntime"],  # imported while the model downloaded; boto3 never
    }
    # It left a serving folder in the cache, which this process now loads without downloading.
    assert load_classifier(environ=lean_env).classify([colour_image("red")])[0].label == "red"


def test_cache_hit_closes_the_get_without_reading_the_body(
    uploaded: Any, lean_env: dict[str, str], opened: list[s3get.S3Object], colour_artifact: Path
) -> None:
    first = load_classifier(environ=lean_env)
    assert first.classify([colour_image("blue")])[0].label == "blue"
    assert [o.bytes_read > 0 and o.closed for o in opened] == [True]
    # A second cold start: one GET, its ETag names the cached folder, the body is never read.
    second = load_classifier(environ=lean_env)
    assert second.classify([colour_image("green")])[0].label == "green"
    assert len(opened) == 2
    assert (opened[1].bytes_read, opened[1].closed) == (0, True)
    assert opened[1].etag == opened[0].etag != ""
    # The object replaced (new ETag): downloaded again, into a new folder.
    uploaded.put_object(Bucket=BUCKET, Key=KEY, Body=colour_artifact.read_bytes() + b"\0" * 1024)
    load_classifier(environ=lean_env)
    assert opened[2].etag != opened[0].etag and opened[2].bytes_read > 0


def test_unwritable_cache_loads_from_memory(
    uploaded: Any,
    lean_env: dict[str, str],
    opened: list[s3get.S3Object],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    env = {**lean_env, "LAMBDAVISION_CACHE_DIR": str(blocker / "cache")}
    assert load_classifier(environ=env).classify([colour_image("green")])[0].label == "green"
    assert "disk cache is unusable" in caplog.text
    assert len(opened) == 2 and all(o.closed for o in opened)


@pytest.mark.parametrize(
    ("uri", "code"),
    [(f"s3://{BUCKET}/no/such.tar.gz", "NoSuchKey"), ("s3://no-such-bucket/model.tar.gz", "NoSuchBucket")],
)
def test_s3_error_answers_carry_s3s_code(uploaded: Any, lean_env: dict[str, str], uri: str, code: str) -> None:
    with pytest.raises(ArtifactError) as caught:
        load_classifier(environ={**lean_env, "MODEL_URI": uri})
    assert caught.value.message.startswith(f"{uri}: S3 said {code}: ")


# --- Failures moto cannot play: loopback sockets of our own ---------------------------------------


@pytest.fixture
def refused_endpoint() -> Iterator[str]:
    """A loopback port bound but not listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def stalled_endpoint() -> Iterator[str]:
    """A loopback port that accepts connections (the kernel does, from the backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as sock:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


Reply = Callable[[socket.socket], None]


@dataclass
class ScriptedS3:
    """One scripted reply per connection, in order; records each request's head."""

    url: str
    replies: list[Reply]
    requests: list[bytes]


def _read_head(conn: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(65536)
        if not chunk:
            break
        head += chunk
    return head


@pytest.fixture
def scripted() -> Iterator[ScriptedS3]:
    listener = socket.create_server(("127.0.0.1", 0))
    server = ScriptedS3(f"http://127.0.0.1:{listener.getsockname()[1]}", [], [])
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            conn.settimeout(10)
            try:
                server.requests.append(_read_head(conn))
                server.replies.pop(0)(conn)
            except (OSError, IndexError):
                conn.close()

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


def answer(status: str, body: bytes, *, length: int | None = None, close: bool = True) -> Reply:
    def reply(conn: socket.socket) -> None:
        size = len(body) if length is None else length
        head = f'HTTP/1.1 {status}\r\nContent-Length: {size}\r\nETag: "abc"\r\nConnection: close\r\n\r\n'
        conn.sendall(head.encode() + body)
        if close:
            conn.close()

    return reply


def reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()  # RST


def endpoint_env(tmp_path: Path, endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "MODEL_URI": URI,
        "LAMBDAVISION_CACHE_DIR": str(tmp_path / "cache"),
        **extra,
    }


@pytest.mark.timeout(30)
def test_refused_port_fails_with_artifact_error(tmp_path: Path, refused_endpoint: str) -> None:
    with pytest.raises(
        ArtifactError, match=r"s3://models/.*cannot read from S3 at 127\.0\.0\.1:\d+: connection refused"
    ):
        load_classifier(environ=endpoint_env(tmp_path, refused_endpoint))


@pytest.mark.timeout(30)
def test_stalled_server_fails_after_the_timeout(tmp_path: Path, stalled_endpoint: str) -> None:
    env = endpoint_env(tmp_path, stalled_endpoint, LAMBDAVISION_S3_TIMEOUT="0.3")
    with pytest.raises(ArtifactError, match=r"cannot read from S3: 127\.0\.0\.1:\d+ did not answer within 0\.3 s"):
        load_classifier(environ=env)


@pytest.mark.timeout(30)
def test_truncated_body_is_an_artifact_error(tmp_path: Path, scripted: ScriptedS3, colour_artifact: Path) -> None:
    data = colour_artifact.read_bytes()
    # Cut inside the members the server needs (the tail of a small artifact is tar padding, which
    # the reader rightly never asks for once it holds the model).
    scripted.replies.append(answer("200 OK", data[:300], length=len(data)))
    with pytest.raises(
        ArtifactError, match=rf"{re.escape(URI)}: cannot read from S3: the body is truncated.* of {len(data)} bytes"
    ):
        load_classifier(environ=endpoint_env(tmp_path, scripted.url))
    assert not list((tmp_path / "cache").glob("*/lambdavision.json"))  # nothing half-written was kept


@pytest.mark.timeout(30)
def test_body_that_stalls_midway_times_out(tmp_path: Path, scripted: ScriptedS3, colour_artifact: Path) -> None:
    data = colour_artifact.read_bytes()
    scripted.replies.append(answer("200 OK", data[:1000], length=len(data), close=False))
    env = endpoint_env(tmp_path, scripted.url, LAMBDAVISION_S3_TIMEOUT="0.3")
    with pytest.raises(
        ArtifactError, match=rf"cannot read from S3: no data for 0\.3 s after 1000 of {len(data)} bytes"
    ):
        load_classifier(environ=env)


@pytest.mark.timeout(30)
def test_one_retry_gets_past_a_503_or_a_reset(tmp_path: Path, scripted: ScriptedS3, colour_artifact: Path) -> None:
    data = colour_artifact.read_bytes()
    slow_down = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    scripted.replies += [answer("503 Slow Down", slow_down), answer("200 OK", data)]
    assert load_classifier(environ=endpoint_env(tmp_path, scripted.url)).classes == ["red", "green", "blue"]
    scripted.replies += [reset, answer("200 OK", data)]
    assert load_classifier(environ=endpoint_env(tmp_path / "other", scripted.url)).classes == ["red", "green", "blue"]
    # Both attempts failing: S3's own words, after exactly one retry.
    scripted.replies += [answer("503 Slow Down", slow_down), answer("503 Slow Down", slow_down)]
    with pytest.raises(ArtifactError, match=r"S3 said SlowDown: Please reduce your request rate\."):
        load_classifier(environ=endpoint_env(tmp_path / "third", scripted.url))
    assert len(scripted.requests) == 6
    first = scripted.requests[0].decode()
    assert first.startswith("GET /models/lesson%201/%C3%B1%2Bmodel.tar.gz HTTP/1.1\r\n")
    assert "\r\nauthorization: aws4-hmac-sha256 credential=testing/" in first.lower()


def test_an_error_answer_that_is_not_xml_names_the_status(tmp_path: Path, scripted: ScriptedS3) -> None:
    scripted.replies.append(answer("403 Forbidden", b"<html>nope</html" + b"x" * 200_000))
    with pytest.raises(ArtifactError, match=rf"^{re.escape(URI)}: S3 answered HTTP 403 Forbidden$"):
        load_classifier(environ=endpoint_env(tmp_path, scripted.url))


# --- Signatures checked for real: moto enforcing IAM ----------------------------------------------

REGION = "us-east-1"
ADMIN = "testing"  # unchecked until IAM is enforced


@dataclass(frozen=True)
class IamS3:
    endpoint: str
    user_key: tuple[str, str]
    role_key: tuple[str, str, str]  # assumed-role key id, secret, session token


def _enforce_iam_from_now_on(endpoint: str) -> None:
    # Same switch as tests/functional/test_access_denied.py (moto's reset-auth; text/plain body).
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="module")
def iam_s3(tmp_path_factory: pytest.TempPathFactory, colour_artifact: Path) -> Iterator[IamS3]:
    """A moto server of this file's own, holding the model, that checks every signature."""
    read_model = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}],
        }
    )
    with moto_server(tmp_path_factory.mktemp("moto-iam") / "moto.log") as endpoint:
        session = boto3.Session(aws_access_key_id=ADMIN, aws_secret_access_key=ADMIN, region_name=REGION)
        s3 = session.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(colour_artifact), BUCKET, KEY)
        iam = session.client("iam", endpoint_url=endpoint)
        iam.create_user(UserName="function")
        iam.put_user_policy(UserName="function", PolicyName="read-model", PolicyDocument=read_model)
        user = iam.create_access_key(UserName="function")["AccessKey"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName="fn-role", PolicyName="read-model", PolicyDocument=read_model)
        creds = session.client("sts", endpoint_url=endpoint).assume_role(RoleArn=role["Arn"], RoleSessionName="fn")[
            "Credentials"
        ]
        _enforce_iam_from_now_on(endpoint)
        yield IamS3(
            endpoint,
            (user["AccessKeyId"], user["SecretAccessKey"]),
            (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
        )


def iam_env(tmp_path: Path, iam: IamS3, key_id: str, secret: str, token: str | None = None) -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": iam.endpoint,
        "MODEL_URI": URI,
        "LAMBDAVISION_CACHE_DIR": str(tmp_path / "cache"),
    }
    return env if token is None else {**env, "AWS_SESSION_TOKEN": token}


def test_moto_accepts_our_signature_and_refuses_a_wrong_secret(tmp_path: Path, iam_s3: IamS3) -> None:
    key_id, secret = iam_s3.user_key
    with pytest.raises(ArtifactError, match=rf"^{re.escape(URI)}: S3 said SignatureDoesNotMatch: "):
        load_classifier(environ=iam_env(tmp_path, iam_s3, key_id, secret[:-1] + ("x" if secret[-1] != "x" else "y")))
    classifier = load_classifier(environ=iam_env(tmp_path, iam_s3, key_id, secret))
    assert classifier.classify([colour_image("red")])[0].label == "red"


def test_moto_checks_the_session_token_of_role_credentials(tmp_path: Path, iam_s3: IamS3) -> None:
    key_id, secret, token = iam_s3.role_key
    with pytest.raises(ArtifactError, match=rf"^{re.escape(URI)}: S3 said InvalidToken: "):
        load_classifier(environ=iam_env(tmp_path, iam_s3, key_id, secret, token + "x"))
    classifier = load_classifier(environ=iam_env(tmp_path, iam_s3, key_id, secret, token))
    assert classifier.classify([colour_image("blue")])[0].label == "blue"


@pytest.mark.timeout(30)
def test_the_read_ahead_serves_reads_of_any_size_in_order(tmp_path: Path, scripted: ScriptedS3) -> None:
    body = bytes(range(256)) * 20_000  # 5 MB: several 1 MiB blocks read ahead
    scripted.replies.append(answer("200 OK", body))
    request = s3get.build_get(BUCKET, KEY, Settings.from_env(endpoint_env(tmp_path, scripted.url)).s3)
    assert request is not None
    got = bytearray()
    with s3get.open_get(request) as s3_object:
        for size in (1, 7, 1 << 20, 3, (1 << 20) + 5, -1, 100):
            got += s3_object.stream.read(size)
        while chunk := s3_object.stream.read(123_457):
            got += chunk
        assert s3_object.stream.read(10) == b""  # and stays at its end
    assert bytes(got) == body


@pytest.mark.timeout(30)
def test_closing_early_stops_the_read_ahead_even_on_a_stalled_body(tmp_path: Path, scripted: ScriptedS3) -> None:
    """The reader stops before the .pth: closing must not wait for the rest (nor for a timeout), even
    with `Connection: close`, where http.client lets go of the connection's socket."""
    body = b"x" * (3 << 20)
    scripted.replies.append(answer("200 OK", body, length=len(body) * 4, close=False))  # then stalls
    request = s3get.build_get(
        BUCKET, KEY, Settings.from_env(endpoint_env(tmp_path, scripted.url, LAMBDAVISION_S3_TIMEOUT="60")).s3
    )
    assert request is not None
    threads = threading.active_count()
    with s3get.open_get(request) as s3_object:
        assert s3_object.stream.read(1 << 20) == b"x" * (1 << 20)
        wait_until(lambda: s3_object.bytes_read == len(body))  # the read-ahead now waits on a silent socket
    # Leaving `with` woke and joined it: waiting for the 60 s read timeout would trip the 30 s limit.
    assert threading.active_count() == threads
    with pytest.raises(ValueError, match="read of a closed S3 body"):
        s3_object.stream.read(10)  # not a hang on a queue nobody fills any more


def wait_until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit_s} s")
        time.sleep(0.01)


@pytest.mark.parametrize("bundle", ["missing", "not a certificate"])
def test_an_unusable_ca_bundle_is_a_config_error(tmp_path: Path, bundle: str) -> None:
    path = tmp_path / "ca.pem"
    if bundle != "missing":
        path.write_text("this is not a PEM certificate\n")
    env = endpoint_env(tmp_path, "https://127.0.0.1:9", AWS_CA_BUNDLE=str(path))
    request = s3get.build_get(BUCKET, KEY, Settings.from_env(env).s3)
    assert request is not None
    with pytest.raises(ConfigError, match=r"AWS_CA_BUNDLE '.*ca\.pem' cannot be used as a CA bundle"):
        s3get.open_get(request)


def test_a_damaged_cached_copy_is_downloaded_again(uploaded: Any, lean_env: dict[str, str]) -> None:
    """A /tmp cleaner removed a file of the unpacked copy: the next load heals it, not fails forever."""
    first = load_classifier(environ=lean_env)
    assert first.classify([colour_image("red")])[0].label == "red"
    [folder] = [p.parent for p in (Path(lean_env["LAMBDAVISION_CACHE_DIR"])).glob("*/lambdavision.json")]
    (folder / "model.onnx").unlink()
    again = load_classifier(environ=lean_env)
    assert again.classify([colour_image("green")])[0].label == "green"
    assert (folder / "model.onnx").is_file()


def test_a_bad_timeout_is_a_config_error_on_the_boto3_path_too() -> None:
    # No credentials in the environment: the boto3 path, whose timeouts come from the same Settings.
    with pytest.raises(ConfigError, match="LAMBDAVISION_S3_TIMEOUT"):
        load_classifier(environ={"MODEL_URI": "s3://b/k.tar.gz", "LAMBDAVISION_S3_TIMEOUT": "abc"})
