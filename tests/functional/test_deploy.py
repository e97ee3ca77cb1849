"""`deploy`, `endpoint`, `delete` through the CLI as subprocesses, against a real moto server.

`package` is another module's; here the "packaged" template is made the way it would be: the
function folder zipped into S3 and the function's `Code` pointed at it.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import pty
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

import lambdavision
from lambdavision.aws.appdir import AppOptions, app_files, write_app_dir
from lambdavision.aws.deploy import (
    DeployError,
    StackEvent,
    latest_event_id,
    raise_if_failed,
    wait_for_stack,
)
from lambdavision.aws.deploy_template import effective_parameters
from lambdavision.aws.session import AwsError, aws_errors
from lambdavision.aws.template import TemplateOptions, build_template
from lambdavision.builder.stage import runtime_files
from lambdavision.cfn import dump_template
from lambdavision.cfn import parse_template as load_template
from lambdavision.cli import cli
from lambdavision.cli.default_map import build_default_map, load_default_map

BIN = Path(sys.executable).parent
DEMO_MODEL = Path(__file__).resolve().parents[2] / "demo" / "model.tar.gz"
LAMBDAVISION = str(BIN / "lambdavision")
STACK = "pytorch-sam-app"
BUCKET = "my-model-bucket"
KEY = "fastai-models/lesson1/model.tar.gz"
NEW_KEY = "fastai-models/lesson2/model.tar.gz"
GUIDE_DEPLOY = [
    "deploy", "--template-file", "packaged.yaml", "--stack-name", STACK, "--capabilities", "CAPABILITY_IAM",
    "--parameter-overrides", f"BucketName={BUCKET}", f"ObjectKey={KEY}",
]  # fmt: skip


def lv(*args: str, cwd: Path, env: dict[str, str], stderr: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LAMBDAVISION, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr is None else stderr,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one `Error:` line, which ends stderr (progress lines may come before it)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("Error: ")]
    assert result.stderr.strip().splitlines()[-1] == line
    return line


def make_packaged_app(folder: Path, options: TemplateOptions | None = None) -> Path:
    """init's folder + the function code zipped into S3 + packaged.yaml pointing at it, and the demo
    model at KEY and NEW_KEY: what deploy's checks look at, without building the dependencies.

    The zip holds app.py and lambdavision's runtime part (what app.py imports at the top level);
    `package` is another module's."""
    write_app_dir(folder, app_files(AppOptions(template=options or TemplateOptions())), force=False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(folder / "function" / "app.py", "app.py")
        for name, path in runtime_files(Path(lambdavision.__file__).parent).items():
            archive.write(path, name)
    code = buffer.getvalue()
    code_key = f"code/{hashlib.sha256(code).hexdigest()}.zip"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=code_key, Body=code)
    for key in (KEY, NEW_KEY):
        s3.upload_file(str(DEMO_MODEL), BUCKET, key)
    template = load_template((folder / "template.yaml").read_text())
    template["Resources"]["PyTorchFunction"]["Properties"]["Code"] = {"S3Bucket": BUCKET, "S3Key": code_key}
    (folder / "packaged.yaml").write_text(dump_template(template))
    (folder / "code.zip").write_bytes(code)
    return folder / "packaged.yaml"


@pytest.fixture
def app(tmp_path: Path, aws_env: dict[str, str]) -> Path:
    make_packaged_app(tmp_path)
    return tmp_path


def physical_id(stack: str, logical_id: str) -> str:
    detail = boto3.client("cloudformation").describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    return str(detail["StackResourceDetail"]["PhysicalResourceId"])


def function_config(stack: str = STACK) -> dict[str, Any]:
    return dict(boto3.client("lambda").get_function_configuration(FunctionName=physical_id(stack, "PyTorchFunction")))


def s3_resources_in_role(stack: str = STACK) -> list[str]:
    iam = boto3.client("iam")
    role = physical_id(stack, "PyTorchFunctionRole")
    found = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document: Any = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):  # moto returns CloudFormation-made inline policies as a Python repr
            document = ast.literal_eval(document)
        found += [s["Resource"] for s in document["Statement"] if str(s["Action"]).startswith("s3:")]
    return found


def test_the_guides_deploy_creates_the_stack_and_its_resources(app: Path, aws_env: dict[str, str]) -> None:
    result = lv(*GUIDE_DEPLOY, cwd=app, env=aws_env)
    assert result.returncode == 0, result.stderr
    assert f"Stack {STACK}: CREATE_COMPLETE" in result.stderr
    outputs = dict(line.split()[:2] for line in result.stdout.splitlines()[1:] if line.strip())
    assert set(outputs) == {"PyTorchApi", "PyTorchPage", "PyTorchFunction", "PyTorchFunctionIamRole"}

    config = function_config()
    assert config["Runtime"] == "python3.12"
    assert config["Handler"] == "app.lambda_handler"
    assert (config["MemorySize"], config["Timeout"]) == (2048, 29)
    assert config["Environment"]["Variables"] == {"MODEL_BUCKET": BUCKET, "MODEL_KEY": KEY}
    assert config["FunctionArn"] == outputs["PyTorchFunction"]
    assert config["Role"] == outputs["PyTorchFunctionIamRole"]
    code = (app / "code.zip").read_bytes()
    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    location = boto3.client("lambda").get_function(FunctionName=config["FunctionName"])["Code"]["Location"]
    assert location.endswith(f"code/{hashlib.sha256(code).hexdigest()}.zip")

    assert s3_resources_in_role() == [f"arn:aws:s3:::{BUCKET}/{KEY}"]

    api_id = physical_id(STACK, "RestApi")
    assert outputs["PyTorchApi"] == f"https://{api_id}.execute-api.us-east-1.amazonaws.com/Prod/invocations/"
    apigw = boto3.client("apigateway")
    (invocations,) = [r for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/invocations"]
    assert set(invocations["resourceMethods"]) == {"POST"}
    integration = apigw.get_integration(restApiId=api_id, resourceId=invocations["id"], httpMethod="POST")
    assert integration["type"] == "AWS_PROXY"
    assert config["FunctionArn"] in integration["uri"]
    assert [s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"]] == ["Prod"]
    # moto drops BinaryMediaTypes, Architectures and SnapStart: tests/unit/test_template.py checks them.

    (group,) = boto3.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    assert group["logGroupName"] == f"/aws/lambda/{config['FunctionName']}"
    assert group["retentionInDays"] == 14
    policy = boto3.client("lambda").get_policy(FunctionName=config["FunctionName"])["Policy"]
    assert "apigateway.amazonaws.com" in policy and f"{api_id}/*/POST/invocations" in policy


def test_endpoint_and_the_guides_aws_cli_query_print_the_api_url(app: Path, aws_env: dict[str, str]) -> None:
    assert lv(*GUIDE_DEPLOY, cwd=app, env=aws_env).returncode == 0
    endpoint = lv("endpoint", "--stack-name", STACK, cwd=app, env=aws_env)
    assert endpoint.returncode == 0, endpoint.stderr
    url = endpoint.stdout.strip()
    assert endpoint.stdout == url + "\n"
    assert re.fullmatch(r"https://[a-z0-9]+\.execute-api\.us-east-1\.amazonaws\.com/Prod/invocations/", url)

    guide = subprocess.run(
        [str(BIN / "aws"), "cloudformation", "describe-stacks", "--stack-name", STACK,
         "--query", "Stacks[].Outputs[?OutputKey==`PyTorchApi`]", "--output", "table"],
        env=aws_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert guide.returncode == 0, guide.stderr
    assert url in guide.stdout and "PyTorchApi" in guide.stdout


def test_redeploy_with_a_new_object_key_changes_the_function(app: Path, aws_env: dict[str, str]) -> None:
    assert lv(*GUIDE_DEPLOY, cwd=app, env=aws_env).returncode == 0
    update = lv(
        "deploy", "--template-file", "packaged.yaml", "--stack-name", STACK, "--capabilities", "CAPABILITY_IAM",
        "--parameter-overrides", f"ObjectKey={NEW_KEY}",
        cwd=app, env=aws_env,
    )  # fmt: skip
    assert update.returncode == 0, update.stderr
    assert f"Stack {STACK}: UPDATE_COMPLETE" in update.stderr
    # BucketName was not given again: its previous value is kept.
    assert function_config()["Environment"]["Variables"] == {"MODEL_BUCKET": BUCKET, "MODEL_KEY": NEW_KEY}
    (stack,) = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "BucketName": BUCKET,
        "ObjectKey": NEW_KEY,
    }
    # (moto does not update a role's inline policies on a stack update, so the policy's new S3
    # resource cannot be read back here; the template's Sub of ${ObjectKey} is checked in unit tests.)


def test_an_unchanged_deploy_is_reported_and_exits_0(app: Path, aws_env: dict[str, str]) -> None:
    assert lv(*GUIDE_DEPLOY, cwd=app, env=aws_env).returncode == 0
    again = lv(*GUIDE_DEPLOY, cwd=app, env=aws_env)
    assert again.returncode == 0, again.stderr
    assert f"No changes to deploy: stack {STACK} is up to date" in again.stderr
    assert "PyTorchApi" in again.stdout


def test_sam_style_and_quoted_parameter_overrides(app: Path, aws_env: dict[str, str]) -> None:
    result = lv(
        "deploy", "-t", "packaged.yaml", "--stack-name", STACK, "--capabilities", "CAPABILITY_IAM",
        "--parameter-overrides", f"ParameterKey=BucketName,ParameterValue={BUCKET}", f"ObjectKey={KEY} ",
        "--quiet",
        cwd=app, env=aws_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert function_config()["Environment"]["Variables"] == {"MODEL_BUCKET": BUCKET, "MODEL_KEY": KEY}


def test_deploy_refuses_a_template_that_is_not_packaged(app: Path, aws_env: dict[str, str]) -> None:
    result = lv("deploy", "--template-file", "template.yaml", "--stack-name", STACK, cwd=app, env=aws_env)
    line = one_line_error(result)
    assert "PyTorchFunction (function/)" in line and "lambdavision package" in line
    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--parameter-overrides", "Bucket=x"], "not in the template"),
        (["--parameter-overrides", "NoEqualsSign"], "KEY=VALUE"),
        (["--template-file", "missing.yaml"], "does not exist"),
    ],
)
def test_bad_deploy_arguments_are_one_line(args: list[str], expected: str, app: Path, aws_env: dict[str, str]) -> None:
    base = ["deploy", "--template-file", "packaged.yaml", "--stack-name", STACK]
    line = one_line_error(lv(*base, *args, cwd=app, env=aws_env))
    assert expected in line


def test_deploy_without_credentials_is_one_line(app: Path, aws_env: dict[str, str]) -> None:
    env = {k: v for k, v in aws_env.items() if not k.startswith(("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # never ask an instance metadata service (not loopback)
    line = one_line_error(lv(*GUIDE_DEPLOY, cwd=app, env=env))
    assert "no usable AWS credentials" in line


def test_endpoint_of_a_missing_stack_is_one_line(app: Path, aws_env: dict[str, str]) -> None:
    line = one_line_error(lv("endpoint", "--stack-name", "nope", cwd=app, env=aws_env))
    assert "stack 'nope' does not exist" in line


def test_delete_removes_the_stack_function_and_role(app: Path, aws_env: dict[str, str]) -> None:
    assert lv(*GUIDE_DEPLOY, cwd=app, env=aws_env).returncode == 0
    function_name = physical_id(STACK, "PyTorchFunction")
    role_name = physical_id(STACK, "PyTorchFunctionRole")
    result = lv("delete", "--stack-name", STACK, cwd=app, env=aws_env)
    assert result.returncode == 0, result.stderr
    assert f"Deleted stack {STACK}." in result.stderr
    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []
    with pytest.raises(ClientError, match=r"ResourceNotFound|not found"):
        boto3.client("lambda").get_function(FunctionName=function_name)
    with pytest.raises(ClientError, match=r"NoSuchEntity|cannot be found"):
        boto3.client("iam").get_role(RoleName=role_name)
    # The model bucket is not part of the stack.
    assert boto3.client("s3").head_bucket(Bucket=BUCKET)
    again = lv("delete", "--stack-name", STACK, cwd=app, env=aws_env)
    assert again.returncode == 0
    assert "does not exist: nothing to delete" in again.stderr


def test_the_guides_aws_cli_delete_stack_removes_a_deployed_stack(app: Path, aws_env: dict[str, str]) -> None:
    assert lv(*GUIDE_DEPLOY, cwd=app, env=aws_env).returncode == 0
    function_name = physical_id(STACK, "PyTorchFunction")
    deleted = subprocess.run(
        [str(BIN / "aws"), "cloudformation", "delete-stack", "--stack-name", STACK],
        env=aws_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []
    with pytest.raises(ClientError):
        boto3.client("lambda").get_function(FunctionName=function_name)


def test_stack_events_stream_as_plain_lines_when_piped_and_in_colour_on_a_terminal(
    app: Path, aws_env: dict[str, str]
) -> None:
    # Piped (CI): each event is a plain line on stderr as it happens, not at the end. With 2 s between
    # polls, the first event is read while deploy is still waiting for the stack.
    process = subprocess.Popen(
        [LAMBDAVISION, *GUIDE_DEPLOY, "--poll-interval", "2"],
        cwd=app, env=aws_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "AWS::CloudFormation::Stack" in line:
            assert process.poll() is None, "the first stack event arrived only after deploy ended"
            break
    _, rest = process.communicate(timeout=120)
    piped = "".join(lines) + rest
    assert process.returncode == 0, piped
    assert re.search(r"^\d\d:\d\d:\d\d  CREATE_IN_PROGRESS\s+AWS::CloudFormation::Stack\s+" + STACK, piped, re.M)
    assert "\x1b[" not in piped  # no colour codes in a log file
    lv("delete", "--stack-name", STACK, cwd=app, env=aws_env)

    leader, follower = pty.openpty()
    try:
        on_tty = lv(*GUIDE_DEPLOY, cwd=app, env={**aws_env, "COLUMNS": "200"}, stderr=follower)
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert on_tty.returncode == 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", seen.decode())
    assert re.search(r"CREATE_IN_PROGRESS\s+AWS::CloudFormation::Stack\s+" + STACK, text)
    assert re.search(r"CREATE_COMPLETE\s+AWS::CloudFormation::Stack\s+" + STACK, text)


def test_a_create_that_moto_cannot_finish_is_one_line_and_recoverable(app: Path, aws_env: dict[str, str]) -> None:
    """A RestApi without its required Name: moto fails the create with an HTTP 500, leaves the
    stack half made (AWS would roll it back) and answers 500 to every call that reads it. deploy
    says so in one line naming `delete`, which removes it; the next deploy succeeds."""
    template = load_template((app / "packaged.yaml").read_text())
    del template["Resources"]["RestApi"]["Properties"]["Name"]
    (app / "broken.yaml").write_text(dump_template(template))
    broken = [*GUIDE_DEPLOY[:2], "broken.yaml", *GUIDE_DEPLOY[3:]]

    line = one_line_error(lv(*broken, cwd=app, env=aws_env))
    assert "not an AWS response" in line and "500" in line
    busy = one_line_error(lv(*GUIDE_DEPLOY, cwd=app, env=aws_env))
    assert f"`lambdavision delete --stack-name {STACK}` removes it" in busy
    assert lv("delete", "--stack-name", STACK, cwd=app, env=aws_env).returncode == 0
    fixed = lv(*GUIDE_DEPLOY, cwd=app, env=aws_env)
    assert fixed.returncode == 0, fixed.stderr
    assert f"Stack {STACK}: CREATE_COMPLETE" in fixed.stderr


# --- the page, CORS, auth and deploy's overrides on moto -------------------------------------------


def api_methods(stack: str = STACK) -> dict[tuple[str, str], dict[str, Any]]:
    """(HTTP method, path) -> the method as API Gateway on moto describes it."""
    apigw = boto3.client("apigateway")
    api_id = physical_id(stack, "RestApi")
    found = {}
    for resource in apigw.get_resources(restApiId=api_id)["items"]:
        for method in resource.get("resourceMethods") or {}:
            found[(method, resource["path"])] = dict(
                apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
            )
    return found


def test_page_and_cors_variant_deploys_its_methods(tmp_path: Path, aws_env: dict[str, str]) -> None:
    make_packaged_app(tmp_path, TemplateOptions(cors_origin="https://example.org"))
    result = lv(*GUIDE_DEPLOY, cwd=tmp_path, env=aws_env)
    assert result.returncode == 0, result.stderr
    methods = api_methods()
    assert set(methods) == {("POST", "/invocations"), ("OPTIONS", "/invocations"), ("GET", "/"), ("OPTIONS", "/")}
    arn = function_config()["FunctionArn"]
    for method in methods.values():
        assert method["methodIntegration"]["type"] == "AWS_PROXY"
        assert arn in method["methodIntegration"]["uri"]
        assert method["authorizationType"] == "NONE"
    assert function_config()["Environment"]["Variables"]["LAMBDAVISION_CORS_ORIGIN"] == "https://example.org"
    outputs = dict(line.split()[:2] for line in result.stdout.splitlines()[1:] if line.strip())
    assert outputs["PyTorchPage"] == outputs["PyTorchApi"].removesuffix("invocations/")
    # (moto does not create AWS::ApiGateway::GatewayResponse from a template: checked in unit tests.)
    # The stack is managed as usual: logs find the function, delete removes it all.
    assert lv("logs", "-n", "PyTorchFunction", "--stack-name", STACK, cwd=tmp_path, env=aws_env).returncode == 0
    deleted = lv("delete", "--stack-name", STACK, cwd=tmp_path, env=aws_env)
    assert deleted.returncode == 0, deleted.stderr
    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []


@pytest.mark.parametrize("auth", ["iam", "key"])
def test_auth_variants_guard_every_method_but_the_preflights(
    auth: str, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    """moto keeps the methods' AuthorizationType and ApiKeyRequired. It does not create
    AWS::ApiGateway::ApiKey / UsagePlan / UsagePlanKey from a template (blank resource entries, and
    the key-id output vanishes): those are checked on the template (tests/unit/test_template.py)."""
    make_packaged_app(tmp_path, TemplateOptions(auth=auth, cors_origin="https://example.org"))
    result = lv(*GUIDE_DEPLOY, cwd=tmp_path, env=aws_env)
    assert result.returncode == 0, result.stderr
    methods = api_methods()
    assert len(methods) == 4
    for (verb, _), method in methods.items():
        guarded = verb != "OPTIONS"
        assert method["authorizationType"] == ("AWS_IAM" if guarded and auth == "iam" else "NONE")
        assert method["apiKeyRequired"] is (guarded and auth == "key")


def test_deploy_overrides_memory_and_cors_on_create_and_update(app: Path, aws_env: dict[str, str]) -> None:
    packaged = (app / "packaged.yaml").read_text()
    first = lv(*GUIDE_DEPLOY, "--memory", "3008", cwd=app, env=aws_env)
    assert first.returncode == 0, first.stderr
    assert function_config()["MemorySize"] == 3008
    assert set(api_methods()) == {("POST", "/invocations"), ("GET", "/")}

    update = lv(*GUIDE_DEPLOY, "--memory", "3008", "--cors-origin", "https://example.org", cwd=app, env=aws_env)
    assert update.returncode == 0, update.stderr
    assert f"Stack {STACK}: UPDATE_COMPLETE" in update.stderr
    config = function_config()
    assert config["MemorySize"] == 3008
    assert config["Environment"]["Variables"]["LAMBDAVISION_CORS_ORIGIN"] == "https://example.org"
    assert config["Environment"]["Variables"]["MODEL_KEY"] == KEY
    assert set(api_methods()) == {("POST", "/invocations"), ("OPTIONS", "/invocations"), ("GET", "/"), ("OPTIONS", "/")}
    assert (app / "packaged.yaml").read_text() == packaged  # the file is left as it was

    # Without the flags the template's own values come back.
    plain = lv(*GUIDE_DEPLOY, cwd=app, env=aws_env)
    assert plain.returncode == 0, plain.stderr
    assert function_config()["MemorySize"] == 2048


def test_deploy_arch_must_match_the_package(app: Path, aws_env: dict[str, str]) -> None:
    line = one_line_error(lv(*GUIDE_DEPLOY, "--arch", "arm64", cwd=app, env=aws_env))
    assert "packaged.yaml was packaged for x86_64, not arm64" in line
    assert "lambdavision init --arch arm64" in line and "lambdavision package" in line
    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []
    same = lv(*GUIDE_DEPLOY, "--arch", "x86_64", cwd=app, env=aws_env)
    assert same.returncode == 0, same.stderr


def test_deploy_refuses_snapstart_on_a_runtime_without_it(app: Path, aws_env: dict[str, str]) -> None:
    template = load_template((app / "packaged.yaml").read_text())
    template["Resources"]["PyTorchFunction"]["Properties"]["Runtime"] = "python3.11"
    (app / "old.yaml").write_text(dump_template(template))
    line = one_line_error(lv("deploy", "--template-file", "old.yaml", "--stack-name", STACK, "--snapstart",
                             cwd=app, env=aws_env))  # fmt: skip
    assert "SnapStart for Python needs python3.12 or later" in line


def test_effective_parameters_are_overrides_then_the_stacks_values_then_defaults() -> None:
    """What a SnapStart version is named after: the values the stack will have after the deploy."""
    template = build_template(TemplateOptions(bucket_name="default-bucket", object_key="default.tar.gz"))
    stack = {"Parameters": [{"ParameterKey": "ObjectKey", "ParameterValue": "current.tar.gz"}]}
    assert effective_parameters(template, None, {}) == {"BucketName": "default-bucket", "ObjectKey": "default.tar.gz"}
    assert effective_parameters(template, stack, {}) == {"BucketName": "default-bucket", "ObjectKey": "current.tar.gz"}
    assert effective_parameters(template, stack, {"ObjectKey": "new.tar.gz", "BucketName": "b"}) == {
        "BucketName": "b",
        "ObjectKey": "new.tar.gz",
    }


def test_deploy_help_documents_the_overrides(aws_env: dict[str, str], tmp_path: Path) -> None:
    text = lv("deploy", "--help", cwd=tmp_path, env={**aws_env, "COLUMNS": "200"}).stdout
    for flag in ("--memory", "--arch [x86_64|arm64]", "--snapstart / --no-snapstart", "--cors-origin ORIGIN"):
        assert flag in text
    assert "packaged for" in text or "package again" in text


# --- ROLLBACK_COMPLETE --------------------------------------------------------------------------


@pytest.fixture
def inprocess_moto(aws_env: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """A moto server in this process, so a test can put a stack in the state AWS leaves after a
    failed create (ROLLBACK_COMPLETE), which moto itself never reaches."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}", cloudformation_backends["123456789012"]["us-east-1"]
    finally:
        server.stop()
        cloudformation_backends.reset()


def test_a_stack_in_rollback_complete_is_deleted_by_the_next_deploy(
    tmp_path: Path, aws_env: dict[str, str], inprocess_moto: tuple[str, Any]
) -> None:
    url, backend = inprocess_moto
    env = {**aws_env, "AWS_ENDPOINT_URL": url}
    os.environ["AWS_ENDPOINT_URL"] = url  # for this test's own boto3 clients (aws_env restores it)
    make_packaged_app(tmp_path)
    assert lv(*GUIDE_DEPLOY, cwd=tmp_path, env=env).returncode == 0

    (failed,) = backend.stacks.values()
    # What CloudFormation leaves after a create that failed and was rolled back; moto never gets
    # there by itself (a create it cannot finish is a 500 and a half-made stack).
    failed.status = "ROLLBACK_COMPLETE"
    failed_id = failed.stack_id

    # A plain update of such a stack is refused by CloudFormation; the message says what to do.
    cfn = boto3.client("cloudformation")
    with pytest.raises(AwsError, match=r"ROLLBACK_COMPLETE.*lambdavision deploy"), aws_errors(stack=STACK):
        cfn.update_stack(StackName=STACK, TemplateBody=(tmp_path / "packaged.yaml").read_text())

    result = lv(*GUIDE_DEPLOY, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"Stack {STACK} is in ROLLBACK_COMPLETE" in result.stderr
    assert "deleting it before creating it again" in result.stderr
    (stack,) = cfn.describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["StackId"] != failed_id


def test_failed_resources_and_their_reasons_make_the_error(
    tmp_path: Path, aws_env: dict[str, str], inprocess_moto: tuple[str, Any]
) -> None:
    """The events of a create that CloudFormation rolled back (written into moto, which never fails
    a stack itself) are read back over HTTP: the first failure, its cause, comes first."""
    from moto.cloudformation.models import Event

    url, backend = inprocess_moto
    os.environ["AWS_ENDPOINT_URL"] = url  # for this test's own boto3 clients (aws_env restores it)
    make_packaged_app(tmp_path)
    assert lv(*GUIDE_DEPLOY, cwd=tmp_path, env={**aws_env, "AWS_ENDPOINT_URL": url}).returncode == 0
    cfn = boto3.client("cloudformation")
    marker = latest_event_id(cfn, STACK)
    (stack,) = backend.stacks.values()
    for logical_id, kind, status, reason in [
        ("PyTorchFunction", "AWS::Lambda::Function", "CREATE_FAILED", "Memory size 99999 is over 10240"),
        ("RestApi", "AWS::ApiGateway::RestApi", "CREATE_FAILED", "Resource creation cancelled"),
        ("PyTorchFunction", "AWS::Lambda::Function", "DELETE_COMPLETE", None),
    ]:
        stack.events.append(
            Event(
                stack_id=stack.stack_id, stack_name=STACK, logical_resource_id=logical_id,
                physical_resource_id="", resource_type=kind, resource_status=status,
                resource_status_reason=reason, resource_properties=None,
            )
        )  # fmt: skip
    stack.status = "ROLLBACK_COMPLETE"

    printed: list[StackEvent] = []
    final = wait_for_stack(
        cfn, stack.stack_id, after=marker, on_event=printed.append, poll_seconds=0, sleep=lambda _: None
    )
    assert final["StackStatus"] == "ROLLBACK_COMPLETE"
    assert [(e.logical_id, e.status) for e in printed] == [
        ("PyTorchFunction", "CREATE_FAILED"),
        ("RestApi", "CREATE_FAILED"),
        ("PyTorchFunction", "DELETE_COMPLETE"),
    ]
    with pytest.raises(DeployError) as failure:
        raise_if_failed(cfn, STACK, stack.stack_id, action="create", status="ROLLBACK_COMPLETE", after=marker)
    assert failure.value.message == (
        f"create of stack {STACK} failed (ROLLBACK_COMPLETE): "
        "PyTorchFunction (AWS::Lambda::Function): Memory size 99999 is over 10240; "
        "RestApi (AWS::ApiGateway::RestApi): Resource creation cancelled"
        " — fix the template or parameters and deploy again (the failed stack is deleted first)"
    )
    raise_if_failed(cfn, STACK, stack.stack_id, action="update", status="UPDATE_COMPLETE", after=marker)


# --- lambdavision.toml --------------------------------------------------------------------------


def test_config_file_supplies_flag_defaults_and_flags_win(app: Path, aws_env: dict[str, str]) -> None:
    (app / "lambdavision.toml").write_text(
        "[global]\n"
        'region = "us-east-1"\n'
        "[deploy]\n"
        'template-file = "packaged.yaml"\n'
        f'stack-name = "{STACK}"\n'
        'capabilities = ["CAPABILITY_IAM"]\n'
        f'parameter-overrides = {{ BucketName = "{BUCKET}", ObjectKey = "{KEY}" }}\n'
    )
    default_map = load_default_map(cli, app, environ={})
    assert default_map["deploy"]["stack_name"] == STACK
    assert default_map["deploy"]["parameter_overrides"] == [f"BucketName={BUCKET}", f"ObjectKey={KEY}"]
    assert default_map["logs"]["region"] == "us-east-1"  # [global] reaches every command with the flag

    runner = CliRunner()
    cwd = Path.cwd()
    os.chdir(app)
    try:
        first = runner.invoke(cli, ["deploy"], default_map=default_map)
        assert first.exit_code == 0, first.output
        assert function_config()["Environment"]["Variables"]["MODEL_KEY"] == KEY
        flag_wins = runner.invoke(
            cli, ["deploy", "--parameter-overrides", f"ObjectKey={NEW_KEY}"], default_map=default_map
        )
        assert flag_wins.exit_code == 0, flag_wins.output
    finally:
        os.chdir(cwd)
    assert function_config()["Environment"]["Variables"]["MODEL_KEY"] == NEW_KEY


def test_pyproject_table_and_config_errors(tmp_path: Path) -> None:
    deep = tmp_path / "src" / "deep"
    deep.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[tool.lambdavision.deploy]\nstack-name = "from-pyproject"\n')
    assert load_default_map(cli, deep, environ={})["deploy"]["stack_name"] == "from-pyproject"
    (deep / "lambdavision.toml").write_text('[deploy]\nstack-name = "nearer"\n')
    assert load_default_map(cli, deep, environ={})["deploy"]["stack_name"] == "nearer"

    nested = build_default_map(cli, {"local": {"start-api": {"port": 3001}}}, "lambdavision.toml")
    assert nested["local"] == {"start-api": {"port": 3001}}  # [local.start-api]

    from lambdavision.core.errors import OptionsFileError

    for table, message in [
        ({"deploi": {}}, "not a lambdavision command"),
        ({"deploy": {"stak-name": "x"}}, "has no flag 'stak-name'"),
        ({"deploy": {"stack-name": ["a", "b"]}}, "takes one value"),
        ({"deploy": "x"}, "must be a table"),
    ]:
        with pytest.raises(OptionsFileError, match=message):
            build_default_map(cli, table, "lambdavision.toml")
    (deep / "lambdavision.toml").write_text("[deploy\n")
    with pytest.raises(OptionsFileError, match="TOML"):
        load_default_map(cli, deep, environ={})
    explicit = tmp_path / "elsewhere.toml"
    explicit.write_text('[deploy]\nstack-name = "explicit"\n')
    chosen = load_default_map(cli, deep, environ={"LAMBDAVISION_CONFIG": str(explicit)})
    assert chosen["deploy"]["stack_name"] == "explicit"
