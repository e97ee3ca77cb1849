"""Fault injection through `local start-api`: S3 down or stalled at cold start, a corrupt or
replaced artifact on S3, an environment killed mid-request. Loopback only, bounded in time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from lambdavision.aws.appdir import AppOptions, app_files, write_app_dir
from lambdavision.aws.template import TemplateOptions
from lambdavision.cfn import load_app as load_template
from lambdavision.local.api_server import LocalApi
from lambdavision.runtime.artifact_files import write_artifact
from tests.fixtures.colour import COLOUR_PREP, colour_image, colour_onnx
from tests.fixtures.image_server import ImageServer


class S3Proxy:
    """A loopback TCP proxy in front of moto that can forward, refuse, or stall connections."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.mode = "forward"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "refuse":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # RST: as if S3 were unreachable
            elif self.mode == "stall":
                self.held.append(client)  # accept, never answer
            else:
                threading.Thread(target=self._pipe_both, args=(client,), daemon=True).start()

    def _pipe_both(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for held in self.held:
            held.close()


@pytest.fixture
def s3_proxy(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Proxy]:
    proxy = S3Proxy(aws_env["AWS_ENDPOINT_URL"])
    try:
        yield proxy
    finally:
        proxy.close()


def colour_model(path: Path, classes: list[str]) -> Path:
    write_artifact(path, classes=classes, preprocessing=COLOUR_PREP, onnx=colour_onnx(), torchscript=None)
    return path


def make_app(tmp_path: Path) -> Path:
    options = AppOptions(template=TemplateOptions(bucket_name="models", object_key="model.tar.gz", timeout=20))
    write_app_dir(tmp_path / "app", app_files(options), force=False)
    return tmp_path / "app" / "template.yaml"


def post(url: str, body: dict[str, Any], timeout: float = 60) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url.rstrip("/") + "/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def image_body(colour: str) -> dict[str, Any]:
    import base64

    return {"image": base64.b64encode(colour_image(colour)).decode()}


class _Rouge(dict):  # type: ignore[type-arg]
    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and other.get("class") == "rouge"


ANY_ROUGE = _Rouge()


def wait_dead(pid: int) -> None:
    """SIGKILL is delivered asynchronously: wait until the process is gone (or a zombie)."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not die")


def start(template: Path, log: io.StringIO, concurrency: int = 1, warm: bool = False) -> LocalApi:
    return LocalApi(load_template(template), port=0, concurrency=concurrency, warm=warm, log_stream=log).start()


def test_s3_unreachable_then_back(tmp_path: Path, s3_proxy: S3Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(colour_model(tmp_path / "m.tar.gz", ["red", "green", "blue"])), "models", "model.tar.gz")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_proxy.url)
    monkeypatch.setenv("LAMBDAVISION_S3_TIMEOUT", "1")
    monkeypatch.setenv("LAMBDAVISION_CACHE_DIR", str(tmp_path / "cache"))
    log = io.StringIO()
    with start(make_app(tmp_path), log) as api:
        for mode in ("refuse", "stall"):
            s3_proxy.mode = mode
            status, body = post(api.url, image_body("red"))
            assert (status, body) == (502, {"message": "Internal server error"}), mode
        assert "cannot read from S3" in log.getvalue()
        s3_proxy.mode = "forward"  # S3 is back: the next invocation initialises and answers
        status, body = post(api.url, image_body("red"))
        assert (status, body["class"]) == (200, "red")


def test_corrupt_artifact_is_refused_with_member_and_reason(tmp_path: Path, aws_env: dict[str, str]) -> None:
    good = colour_model(tmp_path / "m.tar.gz", ["red", "green", "blue"])
    import tarfile

    corrupt = tmp_path / "corrupt.tar.gz"
    with tarfile.open(good) as src, tarfile.open(corrupt, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "classes.txt":
                data = b"red\ngreen\nmauve\n"  # differs from the manifest's sha256
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(corrupt), "models", "model.tar.gz")
    log = io.StringIO()
    os.environ["LAMBDAVISION_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        with start(make_app(tmp_path), log) as api:
            assert post(api.url, image_body("red"))[0] == 502
    finally:
        del os.environ["LAMBDAVISION_CACHE_DIR"]
    text = log.getvalue()
    assert "classes.txt" in text and "sha256" in text


def test_replaced_artifact_reaches_new_environments_only(
    tmp_path: Path, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDAVISION_CACHE_DIR", str(tmp_path / "cache"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(colour_model(tmp_path / "a.tar.gz", ["red", "green", "blue"])), "models", "model.tar.gz")
    with start(make_app(tmp_path), io.StringIO()) as api:
        assert post(api.url, image_body("red"))[1]["class"] == "red"
        s3.upload_file(str(colour_model(tmp_path / "b.tar.gz", ["rouge", "vert", "bleu"])), "models", "model.tar.gz")
        assert post(api.url, image_body("red"))[1]["class"] == "red"  # the warm environment keeps its model
        (pid,) = api.pools["PyTorchFunction"].pids
        os.kill(pid, signal.SIGKILL)
        wait_dead(pid)
        assert post(api.url, image_body("red")) == (200, ANY_ROUGE)  # a new environment loads the new one


def test_environment_killed_mid_request(
    tmp_path: Path, aws_env: dict[str, str], image_server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDAVISION_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("LAMBDAVISION_CACHE_DIR", str(tmp_path / "cache"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(colour_model(tmp_path / "a.tar.gz", ["red", "green", "blue"])), "models", "model.tar.gz")
    server_port = int(image_server.url.rsplit(":", 1)[1])
    with start(make_app(tmp_path), io.StringIO(), concurrency=2, warm=True) as api, ThreadPoolExecutor(8) as pool:
        pids = api.pools["PyTorchFunction"].pids
        slow = pool.submit(post, api.url, {"url": image_server.url_for("/slow?seconds=20")})

        def busy_pid() -> int | None:
            for pid in pids:
                for conn in psutil.Process(pid).net_connections("tcp"):
                    if conn.raddr and conn.raddr.port == server_port:
                        return pid
            return None

        import time

        deadline = time.monotonic() + 30
        while (victim := busy_pid()) is None:
            if time.monotonic() > deadline:  # a bounded wait, not a speed check
                raise AssertionError("the slow request never reached the image server")
            time.sleep(0.05)
        others = [pool.submit(post, api.url, image_body(c)) for c in ("red", "green", "blue") * 2]
        os.kill(victim, signal.SIGKILL)
        assert slow.result(timeout=60) == (502, {"message": "Internal server error"})
        assert [f.result(timeout=60) for f in others] == [(200, f.result()[1]) for f in others]
        assert [f.result()[1]["class"] for f in others] == ["red", "green", "blue"] * 2
        assert post(api.url, image_body("green"))[1]["class"] == "green"
        live = api.pools["PyTorchFunction"].pids
        assert victim not in live
    assert not [p for p in pids + live if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
