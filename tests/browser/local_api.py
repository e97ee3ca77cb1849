"""`lambdavision local start-api` on a folder made by `lambdavision init`, for tests that need a
real local API (the browser tests, CORS through start-api): started on a free port, its stderr
(where the function's log lines are relayed) collected, stopped with its whole process group."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))
REPO = Path(__file__).resolve().parents[2]
DEMO_MODEL = REPO / "demo" / "model.tar.gz"


@dataclass
class LocalApi:
    """A running `lambdavision local start-api` and what it has printed on stderr so far."""

    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def log_records(self) -> list[dict[str, Any]]:
        """The function's JSON log lines (`<request id> {...}`) relayed on start-api's stderr."""
        with self.lock:
            lines = list(self.lines)
        records = []
        for line in lines:
            start = line.find("{")
            if start < 0:
                continue
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def request_record(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The JSON log line of one request (it can reach stderr just after the answer)."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.log_records():
                if record.get("message") == "request" and record.get("request_id") == request_id:
                    return record
            if time.monotonic() > deadline:  # a bounded wait, not a speed check
                raise AssertionError(f"no log line for request {request_id}")
            time.sleep(0.05)


def start_local_api(folder: Path, *extra: str) -> LocalApi:
    """`lambdavision local start-api --port 0` in `folder`; returns once it answers."""
    process = subprocess.Popen(
        [LAMBDAVISION, "local", "start-api", "--use-venv", "--port", "0", "-n", "env.json", *extra],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    api = LocalApi(url="", process=process)
    ready = threading.Event()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with api.lock:
                api.lines.append(line.rstrip("\n"))
            match = re.search(r"Running on (http://\S+?)/? ", line)
            if match:
                api.url = match.group(1)
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60):
        stop_local_api(api)
        raise AssertionError("start-api did not start:\n" + "\n".join(api.lines))
    return api


def stop_local_api(api: LocalApi) -> None:
    if api.process.poll() is None:
        os.killpg(api.process.pid, signal.SIGTERM)
        try:
            api.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(api.process.pid, signal.SIGKILL)
            api.process.wait(timeout=30)


def init_app(folder: Path, *options: str) -> Path:
    """A folder from `lambdavision init`, its env.json pointing at the demo model on disk."""
    subprocess.run(
        [LAMBDAVISION, "init", str(folder), "--bucket", "guide-bucket", *options],
        check=True,
        capture_output=True,
        timeout=60,
    )
    env = {"PyTorchFunction": {"MODEL_URI": str(DEMO_MODEL), "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1"}}
    (folder / "env.json").write_text(json.dumps(env))
    return folder


__all__ = ["DEMO_MODEL", "LocalApi", "init_app", "start_local_api", "stop_local_api"]
