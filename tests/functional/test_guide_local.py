"""The guide's local loop, exactly as written with `sam` replaced by `lambdavision`.

In a folder made by `lambdavision init`, against the demo model on a moto S3 server and an image on
a loopback HTTP server:

    lambdavision local invoke PyTorchFunction -n env.json -e event.json
    lambdavision local start-api
    curl -d '{"url":"<image url>"}' -H "Content-Type: application/json" -X POST http://localhost:3000/invocations

except that start-api listens on a free port (`--port 0`, the one it prints), never a fixed one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import psutil

from tests.fixtures.image_server import ImageServer

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))
KEY = "fastai-models/lesson1/model.tar.gz"


def make_app(tmp_path: Path, env: dict[str, str], image_url: str, demo_artifact: Path) -> Path:
    boto3.client("s3").create_bucket(Bucket="guide-bucket")
    boto3.client("s3").upload_file(str(demo_artifact), "guide-bucket", KEY)
    subprocess.run(
        [LAMBDAVISION, "init", "app", "--bucket", "guide-bucket", "--key", KEY, "--image-url", image_url],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return tmp_path / "app"


def test_guide_local_invoke_and_start_api(
    tmp_path: Path,
    aws_env: dict[str, str],
    image_server: ImageServer,
    demo_samples: list[tuple[Path, str]],
    demo_artifact: Path,
    package_cache: Path,
) -> None:
    """Both run the built package (as Lambda would), on CPython 3.12, in the runtime's own processes."""
    (star, expected), (other, other_expected) = demo_samples[-1], demo_samples[0]
    url = image_server.add("/photo.jpg", star.read_bytes())
    env = {
        **aws_env,
        "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1",  # the image server is on loopback
        "LAMBDAVISION_CACHE_DIR": str(package_cache),
    }
    app = make_app(tmp_path, env, url, demo_artifact)
    assert json.loads((app / "env.json").read_text()) == {
        "PyTorchFunction": {"MODEL_BUCKET": "guide-bucket", "MODEL_KEY": KEY}
    }

    done = subprocess.run(
        [LAMBDAVISION, "local", "invoke", "PyTorchFunction", "-n", "env.json", "-e", "event.json"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["class"] == expected
    assert "REPORT RequestId:" in done.stderr and "Init Duration" in done.stderr
    built = app / ".lambdavision" / "build" / "PyTorchFunction.zip"
    assert f"PyTorchFunction: running the built package {built}" in done.stderr
    assert "on CPython 3.12." in done.stderr

    server = subprocess.Popen(
        [LAMBDAVISION, "local", "start-api", "--port", "0"],
        cwd=app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "Running on" not in seen:
            if time.monotonic() > deadline or server.poll() is not None:  # a bounded wait, not a speed check
                raise AssertionError(f"start-api did not start: {seen}")
            seen += server.stdout.readline()
        port = int(re.search(r"Running on http://127\.0\.0\.1:(\d+)/", seen).group(1))  # type: ignore[union-attr]
        answers = []
        for image_url in (url, image_server.add("/other.jpg", other.read_bytes())):
            curl = subprocess.run(
                [
                    "curl",
                    "-s",
                    "-d",
                    json.dumps({"url": image_url}),
                    "-H",
                    "Content-Type: application/json",
                    "-X",
                    "POST",
                    f"http://localhost:{port}/invocations",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            answers.append(json.loads(curl.stdout)["class"])
        assert answers == [expected, other_expected]
        children = psutil.Process(server.pid).children(recursive=True)
        assert children  # awslambdaric environments, kept warm
        for child in children:  # the runtime's CPython, isolated, running the extracted package
            command = child.cmdline()
            assert command[1:3] == ["-I", "-S"] and command[3].endswith("bootstrap.py"), command
            assert "3.12" in command[0] and child.cwd().startswith(str(app / ".lambdavision" / "build" / "run"))
    finally:
        os.killpg(server.pid, signal.SIGTERM) if server.poll() is None else None
        server.wait(timeout=30)
    assert server.stdout is not None
    assert "PyTorchFunction: running the built package" in server.stdout.read()  # said as it started
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
