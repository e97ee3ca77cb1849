"""`lambdavision local invoke` as a subprocess, on a SAM app (the guide's shape) and on plain CloudFormation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
SAM_APP = FUNCTIONS / "sam_app"
CFN_APP = FUNCTIONS / "cfn_app"
LAMBDAVISION = [sys.executable, "-c", "import sys; from lambdavision.cli import main; sys.exit(main())"]


def run(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LAMBDAVISION, "local", "invoke", "--use-venv", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def one_function_template(folder: Path, code: Path, *, memory: int = 256, variables: str = "{}") -> Path:
    template = folder / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        f"    Properties: {{CodeUri: {code}, Handler: app.lambda_handler, Runtime: python3.12,"
        f" MemorySize: {memory}, Environment: {{Variables: {variables}}}}}\n"
    )
    return template


def test_the_guides_command_line_on_a_sam_app() -> None:
    result = run("PyTorchFunction", "-n", "env.json", "-e", "event.json", cwd=SAM_APP)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {
        "url": "http://127.0.0.1:9/dog.jpg",
        "model": "s3://envbucket/fastai-models/lesson1/model.tar.gz",  # env.json beats the template
        "model_uri": "s3://somebucket/somekey",  # parameter defaults
        "from_globals": "yes",
        "undeclared": "set anyway",  # unlike SAM: set though the template does not declare it
        "everywhere": "shared",  # env.json "Parameters" apply to every function
    }
    stderr = result.stderr.splitlines()
    reports = [line for line in stderr if line.startswith("REPORT RequestId: ")]
    assert len(reports) == 1 and "\tMemory Size: 3008 MB\t" in reports[0] and "\tInit Duration: " in reports[0]
    request_id = reports[0].split()[2]
    assert f"{request_id} classifying {{'url': 'http://127.0.0.1:9/dog.jpg'}}" in stderr


def test_plain_cloudformation_event_from_stdin_and_unquoted_overrides(tmp_path: Path) -> None:
    result = run(
        "-t", str(CFN_APP / "template.yaml"), "-e", "-",
        "--parameter-overrides", "BucketName=real-bucket", "ObjectKey=lesson1/model.tar.gz",
        cwd=tmp_path,
        stdin='{"body": "hello"}',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(json.loads(result.stdout)["body"])
    assert body == {"model": "s3://real-bucket/models/lesson1/model.tar.gz", "memory": "512", "body": "hello"}


def test_no_event_means_an_empty_object_and_the_shells_aws_settings_pass_through(tmp_path: Path) -> None:
    one_function_template(tmp_path, FUNCTIONS / "echo", variables="{DECLARED: template}")
    (tmp_path / "env.json").write_text(json.dumps({"Fn": {"UNDECLARED": "from env.json"}}))
    shell = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAFROMSHELL",
        "AWS_SECRET_ACCESS_KEY": "shh",
        "AWS_DEFAULT_REGION": "ap-southeast-2",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
    }
    shell.pop("AWS_REGION", None)
    result = run("-n", "env.json", cwd=tmp_path, env=shell)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["event"] == {}
    names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL", "DECLARED", "UNDECLARED"]
    event = json.dumps({"env": names})
    seen = json.loads(run("Fn", "-n", "env.json", "-e", "-", cwd=tmp_path, env=shell, stdin=event).stdout)["env"]
    assert seen == {
        "AWS_ACCESS_KEY_ID": "AKIAFROMSHELL",
        "AWS_SECRET_ACCESS_KEY": "shh",
        "AWS_REGION": "ap-southeast-2",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "DECLARED": "template",
        "UNDECLARED": "from env.json",
    }


def test_a_failing_function_prints_lambdas_error_and_exits_non_zero(tmp_path: Path) -> None:
    one_function_template(tmp_path, FUNCTIONS / "raises")
    result = run("-e", "-", cwd=tmp_path, stdin='{"value": 7}')
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert (error["errorType"], error["errorMessage"]) == ("ModelNotReady", "cannot classify 7")
    assert "REPORT RequestId: " in result.stderr


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    one_function_template(tmp_path, FUNCTIONS / "echo")
    (tmp_path / "bad-env.json").write_text('{"Fn": ["not", "an", "object"]}')
    (tmp_path / "bad-event.json").write_text("{not json")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (("Nope",), tmp_path, 2, "no function 'Nope'"),
        ((), empty, 1, "no template.yaml"),
        (("-t", "missing.yaml"), tmp_path, 1, "no such template"),
        (("-n", "bad-env.json"), tmp_path, 1, '"Fn" must be an object'),
        (("-n", "absent.json"), tmp_path, 1, "no such env file"),
        (("-e", "bad-event.json"), tmp_path, 1, "not valid JSON"),
        (("-e", "absent.json"), tmp_path, 1, "no such event file"),
        (("--parameter-overrides", "Nope=1"), tmp_path, 1, "has no parameter Nope"),
    ]
    for args, cwd, code, message in cases:
        result = run(*args, cwd=cwd)
        assert (result.returncode, result.stdout) == (code, ""), (args, result.stderr)
        error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(error_lines) == 1 and message in error_lines[0], (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_sigterm_stops_the_function_too(tmp_path: Path) -> None:
    template = one_function_template(tmp_path, FUNCTIONS / "slow")
    template.write_text(template.read_text().replace("MemorySize: 256", "MemorySize: 256, Timeout: 60"))
    cli = subprocess.Popen(
        [*LAMBDAVISION, "local", "invoke", "--use-venv", "-e", "-"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stdin is not None
        cli.stdin.write('{"seconds": 60}')
        cli.stdin.close()
        give_up = time.monotonic() + 30
        children: list[psutil.Process] = []
        while not children and time.monotonic() < give_up:
            children = [c for c in psutil.Process(cli.pid).children() if "awslambdaric" in " ".join(c.cmdline())]
            time.sleep(0.05)
        assert children
        cli.send_signal(signal.SIGTERM)
        cli.wait(30)
        assert cli.returncode != 0
        _, still_running = psutil.wait_procs(children, timeout=10)
        assert still_running == []
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(10)
