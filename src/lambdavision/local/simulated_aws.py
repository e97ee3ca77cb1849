"""Simulated AWS on this machine: a moto server on loopback, for the demo, benchmarks and tests.

moto (a dev dependency) ships `moto_server` next to the interpreter; nothing here talks to
anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from lambdavision.core.errors import LambdaVisionError

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def moto_server(log_path: Path | None = None, start_timeout_s: float = 30) -> Iterator[str]:
    """Start `moto_server` on a free loopback port; yield its URL; stop it on exit."""
    executable = Path(sys.executable).with_name("moto_server")
    if not executable.exists():
        raise LambdaVisionError(f"{executable} is missing: install the dev extras (`pip install 'moto[server]'`)")
    port = free_port()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log_path.open("wb")) if log_path is not None else subprocess.DEVNULL
        proc = subprocess.Popen([str(executable), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    where = f"; see {log_path}" if log_path else ""
                    raise LambdaVisionError(f"moto_server did not start{where}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
