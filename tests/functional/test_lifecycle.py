"""The guide's whole deploy loop through the CLI, as subprocesses, on a real moto server:

init → aws s3 mb → upload → package → deploy → the guide's describe-stacks query → endpoint →
deploy with a new ObjectKey → unchanged deploy → logs (--filter, --tail) → delete.

moto cannot run the function (it needs Docker), so nothing here invokes it; the function's own
behaviour is tested locally and by package's isolated run. Wheels for `package` come from the
session's one build cache (tests/fixtures/build_cache.py).
"""

from __future__ import annotations

import base64
import hashlib
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdavision.cfn import parse_template as load_template

BIN = Path(sys.executable).parent
LAMBDAVISION = str(BIN / "lambdavision")
STACK = "pytorch-sam-app"
BUCKET = "my-bucket"
KEY = "fastai-models/lesson1/model.tar.gz"
NEW_KEY = "fastai-models/lesson2/model.tar.gz"


def run(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def test_the_guides_lifecycle(
    tmp_path: Path, aws_env: dict[str, str], demo_artifact: Path, package_cache: Path
) -> None:
    env = {**aws_env, "LAMBDAVISION_CACHE_DIR": str(package_cache)}
    lv, aws = LAMBDAVISION, str(BIN / "aws")

    run(lv, "init", "app", "--bucket", BUCKET, "--key", KEY, cwd=tmp_path, env=env)
    app = tmp_path / "app"
    run(aws, "s3", "mb", f"s3://{BUCKET}", cwd=app, env=env)
    uploaded = run(lv, "upload", str(demo_artifact), f"s3://{BUCKET}/{KEY}", cwd=app, env=env)
    assert f"MODEL_KEY={KEY}" in uploaded.stdout

    run(lv, "package", "--output-template-file", "packaged.yaml", "--s3-bucket", BUCKET, cwd=app, env=env)
    packaged = load_template((app / "packaged.yaml").read_text())
    code = packaged["Resources"]["PyTorchFunction"]["Properties"]["Code"]
    assert code["S3Bucket"] == BUCKET
    lint = subprocess.run(
        [str(BIN / "cfn-lint"), "packaged.yaml"], cwd=app, capture_output=True, text=True, timeout=120
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr

    deploy = [
        lv, "deploy", "--template-file", "packaged.yaml", "--stack-name", STACK, "--capabilities", "CAPABILITY_IAM",
        "--parameter-overrides", f"BucketName={BUCKET}", f"ObjectKey={KEY}",
    ]  # fmt: skip
    created = run(*deploy, cwd=app, env=env)
    assert f"Stack {STACK}: CREATE_COMPLETE" in created.stderr

    cfn, lam = boto3.client("cloudformation"), boto3.client("lambda")
    function_name = cfn.describe_stack_resource(StackName=STACK, LogicalResourceId="PyTorchFunction")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    role_name = cfn.describe_stack_resource(StackName=STACK, LogicalResourceId="PyTorchFunctionRole")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    config = lam.get_function_configuration(FunctionName=function_name)
    assert (config["Runtime"], config["Handler"], config["MemorySize"]) == ("python3.12", "app.lambda_handler", 2048)
    assert config["Environment"]["Variables"] == {"MODEL_BUCKET": BUCKET, "MODEL_KEY": KEY}
    zipped = boto3.client("s3").get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()
    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(zipped).digest()).decode()

    query = "Stacks[].Outputs[?OutputKey==`PyTorchApi`]"
    table = run(aws, "cloudformation", "describe-stacks", "--stack-name", STACK, "--query", query,
                "--output", "table", cwd=app, env=env)  # fmt: skip
    url = run(lv, "endpoint", "--stack-name", STACK, cwd=app, env=env).stdout.strip()
    assert url.startswith("https://") and url.endswith(".execute-api.us-east-1.amazonaws.com/Prod/invocations/")
    assert url in table.stdout

    run(lv, "upload", str(demo_artifact), f"s3://{BUCKET}/{NEW_KEY}", cwd=app, env=env)
    updated = run(*deploy[:-1], f"ObjectKey={NEW_KEY}", cwd=app, env=env)
    assert f"Stack {STACK}: UPDATE_COMPLETE" in updated.stderr
    variables = lam.get_function_configuration(FunctionName=function_name)["Environment"]["Variables"]
    assert variables == {"MODEL_BUCKET": BUCKET, "MODEL_KEY": NEW_KEY}
    unchanged = run(*deploy[:-1], f"ObjectKey={NEW_KEY}", cwd=app, env=env)
    assert "No changes to deploy" in unchanged.stderr

    # Logs: what Lambda would have written for two requests.
    group = f"/aws/lambda/{function_name}"
    logs = boto3.client("logs")
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now = int(datetime.now(UTC).timestamp() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s1",
        logEvents=[
            {"timestamp": now, "message": "START RequestId: r1"},
            {"timestamp": now + 1, "message": "[INFO] answered english_cocker_spaniel"},
            {"timestamp": now + 2, "message": "REPORT RequestId: r1 Duration: 120.00 ms"},
        ],
    )
    logs_command = [lv, "logs", "-n", "PyTorchFunction", "--stack-name", STACK]
    everything = run(*logs_command, cwd=app, env=env).stdout.splitlines()
    assert [line.split(" ", 2)[2] for line in everything] == [
        "START RequestId: r1",
        "[INFO] answered english_cocker_spaniel",
        "REPORT RequestId: r1 Duration: 120.00 ms",
    ]
    filtered = run(*logs_command, "--filter", "REPORT", cwd=app, env=env).stdout.splitlines()
    assert [line.split(" ", 2)[2] for line in filtered] == ["REPORT RequestId: r1 Duration: 120.00 ms"]

    tail = subprocess.Popen(
        [*logs_command, "--tail", "--poll-interval", "0.2", "--tail-for", "120"],
        cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert tail.stdout is not None
        printed = [tail.stdout.readline() for _ in range(3)]  # the three events above
        logs.put_log_events(
            logGroupName=group, logStreamName="s1", logEvents=[{"timestamp": now + 10, "message": "a new event"}]
        )
        printed.append(tail.stdout.readline())
        assert [line.rstrip("\n").split(" ", 2)[2] for line in printed][-1] == "a new event"
        tail.send_signal(signal.SIGINT)
        rest, err = tail.communicate(timeout=30)
        assert tail.returncode == 0, err
        assert "a new event" not in rest  # printed once only
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.communicate(timeout=30)

    deleted = run(lv, "delete", "--stack-name", STACK, cwd=app, env=env)
    assert f"Deleted stack {STACK}." in deleted.stderr
    assert cfn.describe_stacks()["Stacks"] == []
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=function_name)
    with pytest.raises(ClientError):
        boto3.client("iam").get_role(RoleName=role_name)
