"""`local start-api` / `local invoke` on a SAM app read through AWS's transform, as subprocesses:
HTTP API routes served with payload 2.0 events, an API-key route, `--parameter-overrides` in the
same forms as deploy's, env.json sections naming no function reported, YAML errors with a line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.functional.test_start_api import STARTUP_DEADLINE_S, Server, _drain, stop_server

APP = Path(__file__).resolve().parents[1] / "functions" / "http_api_app"
LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture app copied: local runs build into .lambdavision/ beside the template."""
    return Path(shutil.copytree(APP, tmp_path_factory.mktemp("sam-local") / "app"))


def start_server_for(template: Path, *extra: str) -> Server:
    process = subprocess.Popen(
        [LAMBDAVISION, "local", "start-api", "-t", str(template), "--port", "0", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    server = Server(process)
    threading.Thread(target=_drain, args=(server,), daemon=True).start()
    if not server.ready.wait(STARTUP_DEADLINE_S) or not server.url:
        stop_server(server)
        raise AssertionError(f"start-api did not start:\n{server.output()}")
    return server


def test_start_api_serves_rest_and_http_api_routes_of_a_sam_app(tmp_path: Path, app: Path) -> None:
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"ClassifierFuncton": {"MODEL_KEY": "k"}, "Parameters": {}}))
    server: Server = start_server_for(
        app / "template.yaml", "-n", str(env_file), "--parameter-overrides", "ObjectKey=k1", "BucketName=b1"
    )
    try:
        output = server.output()
        assert "'ClassifierFuncton' matches no function of the template" in output
        assert "did you mean ClassifierFunction?" in output
        assert f"Mounting ClassifierFunction at {server.url}/v2/items/{{name}} [GET]" in output

        status, headers, body = server.request("GET", "/v2/items/tea%20pot")
        described = json.loads(body)
        assert (status, headers["Set-Cookie"]) == (201, "seen=1")
        assert described["version"] == "2.0" and described["routeKey"] == "GET /v2/items/{name}"
        assert described["pathParameters"] == {"name": "tea pot"}
        assert described["bucket"] == "b1"  # the second word of --parameter-overrides counted too

        status, _, body = server.request("POST", "/v2/invocations?plain=1", b"\x89PNG", {"Content-Type": "image/png"})
        described = json.loads(body)  # a plain JSON answer: an HTTP API sends it as a 200
        assert status == 200 and described["isBase64Encoded"] is True and described["version"] == "2.0"

        status, _, body = server.request("POST", "/invocations", b"{}", {"Content-Type": "application/json"})
        assert status == 201 and json.loads(body)["resource"] == "/invocations"  # the REST route: a v1 event

        status, _, body = server.request("POST", "/keyed", b"{}", {"Content-Type": "application/json"})
        assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
        status, _, _ = server.request("POST", "/keyed", b"{}", {"x-api-key": "k"})
        assert status == 201
    finally:
        stop_server(server)


def test_invoke_takes_the_same_override_forms_and_reports_a_yaml_error_with_its_line(tmp_path: Path, app: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"version": "2.0", "rawPath": "/", "queryStringParameters": {"plain": "1"}}))
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"Classifier": {"X": "1"}}))
    for overrides in (["ParameterKey=BucketName,ParameterValue=b2"], ["ObjectKey=k2 BucketName='b2'"]):
        done = subprocess.run(
            [LAMBDAVISION, "local", "invoke", "-t", str(app / "template.yaml"), "-e", str(event), "-n", str(env_file),
             "--parameter-overrides", *overrides],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["bucket"] == "b2"
        assert "Warning: " in done.stderr and "'Classifier' matches no function" in done.stderr
        assert "did you mean ClassifierFunction?" in done.stderr

    broken = tmp_path / "template.yaml"
    broken.write_text((APP / "template.yaml").read_text().replace("Handler: app.lambda_handler", "Handler: [app"))
    failed = subprocess.run(
        [LAMBDAVISION, "local", "invoke", "-t", str(broken)], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    (line,) = failed.stderr.strip().splitlines()
    assert line.startswith(f"Error: {broken}, line ") and "not valid YAML or JSON" in line
    handler_line = broken.read_text().splitlines().index("      Handler: [app") + 1
    assert f"starts at line {handler_line}, column" in line  # where the unclosed `[` is
