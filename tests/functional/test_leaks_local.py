"""SECURITY.md: no query string of an image URL in any output of a local run, end to end.

tests/functional/test_fetch_leaks.py holds the handler to it in-process. Here the same secret is
planted in every kind of failing URL and sent through what a user runs: `lambdavision local invoke`
and `lambdavision local start-api` on the built package (awslambdaric relays the function's log
lines, the runtime adds START/END/REPORT, the gateway its own lines). Every byte either command
prints, and every answer, is searched for the secret.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from tests.fixtures.image_server import ImageServer

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))
PLANTED = "planted1secret1feed"
SECRET = f"X-Amz-Signature={PLANTED}&X-Amz-Security-Token=IQo{PLANTED}"


NAMING_THEIR_URL = ("too many redirects", "redirect loop", "redirected to the metadata service")


def failing_urls(server: ImageServer) -> dict[str, tuple[str, int]]:
    """What each URL exercises -> (the URL, the status it must get)."""
    server.add("/loop", b"", status=302, headers={"Location": f"/loop?{SECRET}"})
    server.add("/notes.txt", b"just text", content_type="text/plain")
    server.add("/half.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    metadata = f"http://169.254.169.254/latest/meta-data/iam?{SECRET}"
    return {
        "too many redirects": (server.url_for(f"/redirect-chain?n=9&{SECRET}"), 502),
        "redirect loop": (server.url_for(f"/loop?{SECRET}"), 502),
        "redirected to the metadata service": (server.url_for(f"/redirect?to={quote(metadata, safe='')}"), 400),
        "upstream 500": (server.url_for(f"/status/500?{SECRET}"), 502),
        "refused address and port": (f"http://169.254.169.254:8080/x.jpg?{SECRET}#{PLANTED}", 400),
        "too slow": (server.url_for(f"/slow?seconds=5&{SECRET}"), 504),
        "too big": (server.url_for(f"/huge?{SECRET}"), 413),
        "not an image": (server.url_for(f"/notes.txt?{SECRET}"), 415),
        "undecodable": (server.url_for(f"/half.jpg?{SECRET}"), 422),
        "malformed": (f"http://[::1/x.jpg?{SECRET}", 400),
        "fine": (server.url_for(f"/png?{SECRET}"), 200),
    }


def make_app(folder: Path, demo_artifact: Path, env: dict[str, str]) -> Path:
    subprocess.run(
        [LAMBDAVISION, "init", str(folder), "--bucket", "leak-bucket"], env=env, check=True, capture_output=True
    )
    settings = {
        "MODEL_URI": str(demo_artifact),
        "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1",  # the image server is on loopback
        "LAMBDAVISION_FETCH_TIMEOUT": "1",
    }
    (folder / "env.json").write_text(json.dumps({"PyTorchFunction": settings}))
    return folder


def post(url: str, body: dict[str, object]) -> tuple[int, str]:
    request = urllib.request.Request(
        url + "/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_no_query_string_in_any_output_of_local_invoke_and_start_api(
    tmp_path: Path, image_server: ImageServer, demo_artifact: Path, package_cache: Path
) -> None:
    env = {**os.environ, "LAMBDAVISION_CACHE_DIR": str(package_cache)}
    app = make_app(tmp_path / "app", demo_artifact, env)
    urls = failing_urls(image_server)
    outputs: list[str] = []

    # local invoke, through the built package: every URL in one batch, and one event for each
    # failure whose message names its URL.
    def invoke(body: dict[str, object]) -> dict[str, object]:
        (app / "event.json").write_text(json.dumps(body))
        done = subprocess.run(
            [LAMBDAVISION, "local", "invoke", "PyTorchFunction", "-n", "env.json", "-e", "event.json"],
            cwd=app,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        outputs.extend([done.stdout, done.stderr])
        return dict(json.loads(done.stdout))

    batch_answer = json.loads(str(invoke({"urls": [url for url, _ in urls.values()]})["body"]))
    assert [r.get("status", 200) for r in batch_answer["results"]] == [s for _, s in urls.values()]
    for what in NAMING_THEIR_URL:
        assert invoke({"url": urls[what][0]})["statusCode"] == urls[what][1]

    # start-api: the same URLs one by one and as one batch.
    server = subprocess.Popen(
        [LAMBDAVISION, "local", "start-api", "-n", "env.json", "--port", "0", "--concurrency", "1"],
        cwd=app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    ready = threading.Event()
    api: list[str] = []

    def pump() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line)
            if match := re.search(r"Running on (http://\S+?)/? ", line):
                api.append(match.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert ready.wait(120) and api, "".join(lines)
        answers = {what: post(api[0], {"url": url}) for what, (url, _) in urls.items()}
        batch = post(api[0], {"urls": [url for url, _ in urls.values()]})
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        reader.join(timeout=30)
    assert {what: status for what, (status, _) in answers.items()} == {w: s for w, (_, s) in urls.items()}
    assert batch[0] == 200
    assert [r.get("status", 200) for r in json.loads(batch[1])["results"]] == [s for _, s in urls.values()]
    outputs += ["".join(lines), batch[1], *(body for _, body in answers.values())]

    everything = "\n".join(outputs)
    assert PLANTED not in everything
    # The search looked at real output: every request's log line and REPORT line, and each error
    # naming a URL, redacted, in both commands' answers and log lines.
    invokes = 1 + len(NAMING_THEIR_URL)
    assert everything.count('"message":"request"') == everything.count("REPORT RequestId:") == invokes + len(urls) + 1
    for named in ("/redirect-chain?[redacted]", "/loop?[redacted]", "169.254.169.254/latest/meta-data/iam?[redacted]"):
        assert everything.count(named) == 6, named  # each command's batch answer, and an answer and log line
