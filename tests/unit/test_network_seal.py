"""The suite is sealed: no test, and no process a test starts, reaches anything but loopback.

pytest-socket (pyproject's addopts) refuses connections of the pytest process to other hosts;
`make test` runs the suite in a network namespace with loopback only (scripts/sealed), so the
processes tests start (the CLI, moto, awslambdaric environments, Chromium) cannot either. With the
metadata guard broken, the suite once really connected to this host's 169.254.169.254.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pytest_socket import SocketConnectBlockedError

from tests.fixtures.tree_guard import differences, snapshot

# TEST-NET-1 (RFC 5737): reserved for documentation, never routed anywhere.
ELSEWHERE = ("192.0.2.1", 9)

CHILD = """
import json, socket, sys
results = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=5).close()
        results[host] = "connected"
    except OSError as exc:
        results[host] = exc.errno
print(json.dumps(results))
"""


@pytest.fixture
def listener() -> tuple[str, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        with server:
            conn, _ = server.accept()
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return "127.0.0.1", int(server.getsockname()[1])


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_the_pytest_process_reaches_loopback_only(listener: tuple[str, int]) -> None:
    for address in (ELSEWHERE, ("169.254.169.254", 80), ("10.0.0.1", 443)):
        with pytest.raises(SocketConnectBlockedError):
            socket.create_connection(address, timeout=2)
    socket.create_connection(listener, timeout=5).close()


def _can_make_network_namespace() -> bool:
    """What scripts/sealed tries before it falls back."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30).returncode == 0


def test_a_process_a_test_starts_reaches_loopback_only(listener: tuple[str, int]) -> None:
    if os.environ.get("LAMBDAVISION_TEST_SEAL") == "socket":
        # scripts/sealed fell back to sealing the pytest process alone: right only where no network
        # namespace can be made at all, so that is what is checked here instead.
        assert not _can_make_network_namespace(), "scripts/sealed fell back although `unshare -n` works here"
        return
    targets = [list(ELSEWHERE), list(listener)]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(targets)], capture_output=True, text=True, check=True, timeout=30
    )
    results = json.loads(done.stdout)
    assert results[listener[0]] == "connected"
    assert results[ELSEWHERE[0]] == errno.ENETUNREACH, (
        f"a child process could try {ELSEWHERE[0]} ({results[ELSEWHERE[0]]}): run the suite sealed, "
        "through `make test` or `scripts/sealed .venv/test-wheelhouse .venv/bin/python -m pytest ...`"
    )


def test_the_tree_guard_sees_a_tracked_file_rewritten(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "shot.png").write_bytes(b"old")
    (tmp_path / ".gitignore").write_text("build/\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    before = snapshot(tmp_path)
    assert before is not None and differences(before, before) == []
    (tmp_path / "shot.png").write_bytes(b"new")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "a.zip").write_bytes(b"zip")
    (tmp_path / "stray.txt").write_text("x")
    after = snapshot(tmp_path)
    assert after is not None
    assert differences(before, after) == ["build/ (new)", "shot.png (new)", "stray.txt (new)"]
    (tmp_path / "shot.png").write_bytes(b"newer!")  # already modified: seen by its size and time
    assert differences(after, snapshot(tmp_path) or {}) == ["shot.png (changed)"]
