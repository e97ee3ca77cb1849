"""The guide's own folder (copied from ../shared/reference/guide-app), all the way, as subprocesses on
moto and loopback, with `sam` replaced by `lambdavision`:

init --from-sam → local invoke PyTorchFunction -n env.json -e event.json → package → deploy →
the guide's describe-stacks query (aws CLI) → logs -n PyTorchFunction → delete.

The template stays SAM; `local`, `package` and `deploy` read it through AWS's own transform.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3

from lambdavision.cfn import parse_template
from tests.fixtures.guide_app import GUIDE_APP, copy_guide_app
from tests.fixtures.image_server import ImageServer

BIN = Path(sys.executable).parent
LAMBDAVISION, AWS = str(BIN / "lambdavision"), str(BIN / "aws")
STACK = "pytorch-sam-app"
BUCKET = "guide-model-bucket"
KEY = "fastai-models/lesson1/model.tar.gz"


def run(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def test_the_guides_folder_from_init_to_delete(
    tmp_path: Path,
    aws_env: dict[str, str],
    image_server: ImageServer,
    demo_artifact: Path,
    demo_samples: list[tuple[Path, str]],
    cli_package_cache: Path,
) -> None:
    env = {**aws_env, "LAMBDAVISION_CACHE_DIR": str(cli_package_cache), "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1"}
    guide = tmp_path / "guide"
    copy_guide_app(guide)
    run(AWS, "s3", "mb", f"s3://{BUCKET}", cwd=tmp_path, env=env)
    run(LAMBDAVISION, "upload", str(demo_artifact), f"s3://{BUCKET}/{KEY}", cwd=tmp_path, env=env)

    converted = run(LAMBDAVISION, "init", "--from-sam", "guide", "app", "--bucket", BUCKET, "--key", KEY,
                    cwd=tmp_path, env=env).stdout  # fmt: skip
    app = tmp_path / "app"
    for change in (
        "PyTorchFunction Runtime python3.6 -> python3.12 (python3.6 is retired)",
        "PyTorchFunction Layers removed (arn:aws:lambda:us-east-1:934676248949:layer:pytorchv1-py36:2)",
        "pytorch/app.py -> pytorch/app_original.py",
        "parameter LambdaLayerArn removed",
        "parameter BucketName Default 'somebucket' -> 'guide-model-bucket'",
        "env.json: written",
    ):
        assert change in converted
    assert (app / "pytorch" / "app_original.py").read_bytes() == (GUIDE_APP / "pytorch" / "app.py").read_bytes()
    assert "from lambdavision.handler import lambda_handler" in (app / "pytorch" / "app.py").read_text()
    assert (app / "event.json").read_bytes() == (GUIDE_APP / "event.json").read_bytes()
    template = parse_template((app / "template.yaml").read_text())
    guide_template = parse_template((GUIDE_APP / "template.yaml").read_text())
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Outputs"] == guide_template["Outputs"]
    assert set(template["Resources"]) == set(guide_template["Resources"]) == {"PyTorchFunction"}
    assert set(template["Parameters"]) == {"BucketName", "ObjectKey"}
    function = template["Resources"]["PyTorchFunction"]["Properties"]
    assert function["Runtime"] == "python3.12" and "Layers" not in function
    assert json.loads((app / "env.json").read_text()) == {"PyTorchFunction": {"MODEL_BUCKET": BUCKET, "MODEL_KEY": KEY}}

    # The guide: edit the URL in event.json, then invoke locally.
    (sample, expected), *_ = demo_samples
    event = json.loads((app / "event.json").read_text())
    event["body"] = json.dumps({"url": image_server.add("/dog.jpg", sample.read_bytes())})
    (app / "event.json").write_text(json.dumps(event))
    invoked = run(LAMBDAVISION, "local", "invoke", "PyTorchFunction", "-n", "env.json", "-e", "event.json",
                  cwd=app, env=env, timeout=180)  # fmt: skip
    answer = json.loads(invoked.stdout)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["class"] == expected  # a decoded class name, not b'...'

    run(LAMBDAVISION, "package", "--output-template-file", "packaged.yaml", "--s3-bucket", BUCKET, cwd=app, env=env)
    packaged = parse_template((app / "packaged.yaml").read_text())
    assert "Transform" not in packaged
    assert packaged["Resources"]["PyTorchFunction"]["Type"] == "AWS::Lambda::Function"
    assert packaged["Resources"]["PyTorchFunction"]["Properties"]["Code"]["S3Bucket"] == BUCKET
    lint = subprocess.run(
        [str(BIN / "cfn-lint"), "packaged.yaml"], cwd=app, capture_output=True, text=True, timeout=120
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr

    deployed = run(
        LAMBDAVISION, "deploy", "--template-file", "packaged.yaml", "--stack-name", STACK,
        "--capabilities", "CAPABILITY_IAM", "--parameter-overrides", f"BucketName={BUCKET}", f"ObjectKey={KEY}",
        cwd=app, env=env,
    )  # fmt: skip
    assert f"Stack {STACK}: CREATE_COMPLETE" in deployed.stderr

    query = "Stacks[].Outputs[?OutputKey==`PyTorchApi`]"
    table = run(AWS, "cloudformation", "describe-stacks", "--stack-name", STACK, "--query", query,
                "--output", "table", cwd=app, env=env).stdout  # fmt: skip
    cfn = boto3.client("cloudformation")
    api_id = cfn.describe_stack_resource(StackName=STACK, LogicalResourceId="ServerlessRestApi")["StackResourceDetail"][
        "PhysicalResourceId"
    ]
    assert f"https://{api_id}.execute-api.us-east-1.amazonaws.com/Prod/invocations/" in table
    function_name = cfn.describe_stack_resource(StackName=STACK, LogicalResourceId="PyTorchFunction")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    config = boto3.client("lambda").get_function_configuration(FunctionName=function_name)
    assert (config["Runtime"], config["Handler"], config["MemorySize"]) == ("python3.12", "app.lambda_handler", 3008)
    assert config["Environment"]["Variables"] == {"MODEL_BUCKET": BUCKET, "MODEL_KEY": KEY}

    # What Lambda writes for one request (moto runs no function); the guide's template declares no log group.
    group = f"/aws/lambda/{function_name}"
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now = int(datetime.now(UTC).timestamp() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s1",
        logEvents=[{"timestamp": now, "message": "START RequestId: r1"}, {"timestamp": now + 1, "message": "END"}],
    )
    printed = run(LAMBDAVISION, "logs", "-n", "PyTorchFunction", "--stack-name", STACK, cwd=app, env=env).stdout
    assert [line.split(" ", 2)[2] for line in printed.splitlines()] == ["START RequestId: r1", "END"]

    deleted = run(LAMBDAVISION, "delete", "--stack-name", STACK, cwd=app, env=env)
    assert f"Deleted stack {STACK}." in deleted.stderr
    assert cfn.describe_stacks()["Stacks"] == []
