"""`deploy`'s checks before it starts, each from a real bad situation, as subprocesses against moto:
a missing bucket or model, IAM resources without --capabilities, a retired runtime, a layer that does
not exist, and the guide's own app.py (torch, torchvision, requests). Also --no-verify, --debug and
--confirm-changeset."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from lambdavision.cfn import dump_template
from lambdavision.cfn import parse_template as load_template

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))
GUIDE_APP = Path("/work/shared/reference/guide-app")
KEY = "fastai-models/lesson1/model.tar.gz"
STACK = "pytorch-sam-app"
DEPLOY = ["deploy", "--template-file", "packaged.yaml", "--stack-name", STACK]


def lv(
    *args: str, cwd: Path, cache: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**(env or os.environ), "LAMBDAVISION_CACHE_DIR": str(cache)}
    return subprocess.run(
        [LAMBDAVISION, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600, input=stdin
    )


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The `Error:` lines of a refused deploy (one per problem), checked to be nothing more."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    found = [line.removeprefix("Error: ") for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert found, result.stderr
    return found


def no_stack() -> bool:
    return boto3.client("cloudformation").describe_stacks()["Stacks"] == []


@pytest.fixture(scope="module")
def built_app(tmp_path_factory: pytest.TempPathFactory, package_cache: Path) -> Path:
    """`init` + `build` once; each test copies it, so its `package` reuses the zip and only uploads."""
    folder = tmp_path_factory.mktemp("preflight")
    assert lv("init", "app", "--bucket", "models", "--key", KEY, cwd=folder, cache=package_cache).returncode == 0
    built = lv("build", cwd=folder / "app", cache=package_cache)
    assert built.returncode == 0, built.stderr
    return folder / "app"


@pytest.fixture
def app(built_app: Path, tmp_path: Path, aws_env: dict[str, str], package_cache: Path, demo_artifact: Path) -> Path:
    """The app packaged into moto's bucket `models`, with the demo model at KEY."""
    app = tmp_path / "app"
    shutil.copytree(built_app, app)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(demo_artifact), "models", KEY)
    packaged = lv(
        "package",
        "--s3-bucket",
        "models",
        "--output-template-file",
        "packaged.yaml",
        cwd=app,
        cache=package_cache,
        env=aws_env,
    )
    assert packaged.returncode == 0, packaged.stderr
    assert "inputs unchanged, reusing" in packaged.stdout
    return app


def test_a_missing_model_or_bucket_is_refused_and_a_good_deploy_says_what_was_checked(
    app: Path, aws_env: dict[str, str], package_cache: Path
) -> None:
    capabilities = ["--capabilities", "CAPABILITY_IAM"]
    missing_key = lv(
        *DEPLOY,
        *capabilities,
        "--parameter-overrides",
        "ObjectKey=models/nope.tar.gz",
        cwd=app,
        cache=package_cache,
        env=aws_env,
    )
    assert errors(missing_key) == [
        "PyTorchFunction: the model s3://models/models/nope.tar.gz does not exist (BucketName=models, "
        "ObjectKey=models/nope.tar.gz): upload it with `lambdavision upload model.tar.gz "
        "s3://models/models/nope.tar.gz`, or fix the parameters"
    ]
    assert missing_key.stderr.strip().splitlines()[-1] == "Nothing was deployed (to deploy anyway: --no-verify)."
    missing_bucket = lv(
        *DEPLOY,
        *capabilities,
        "--parameter-overrides",
        "BucketName=no-such-bucket",
        cwd=app,
        cache=package_cache,
        env=aws_env,
    )
    [problem] = errors(missing_bucket)
    assert problem.startswith(
        "PyTorchFunction: the model's bucket 'no-such-bucket' does not exist (BucketName=no-such-bucket"
    )
    assert "`aws s3 mb s3://no-such-bucket`" in problem
    assert no_stack()

    good = lv(*DEPLOY, *capabilities, cwd=app, cache=package_cache, env=aws_env)
    assert good.returncode == 0, good.stderr
    assert (
        "Checked before deploy: model object and format, handler imports, runtime, layers, IAM capabilities."
        in good.stderr
    )
    assert f"Stack {STACK}: CREATE_COMPLETE" in good.stderr


def test_iam_resources_without_capabilities_are_refused_and_no_verify_skips_saying_so(
    app: Path, aws_env: dict[str, str], package_cache: Path
) -> None:
    refused = lv(*DEPLOY, cwd=app, cache=package_cache, env=aws_env)
    assert errors(refused) == [
        "the template creates IAM resources (PyTorchFunctionRole (AWS::IAM::Role)), which CloudFormation refuses "
        "without acknowledgement (InsufficientCapabilities): add --capabilities CAPABILITY_IAM"
    ]
    assert no_stack()
    # moto itself would have taken it: the refusal is ours, as CloudFormation's would be.
    skipped = lv(*DEPLOY, "--no-verify", cwd=app, cache=package_cache, env=aws_env)
    assert skipped.returncode == 0, skipped.stderr
    assert (
        "Skipping the checks before deploy (--no-verify): model object and format, handler imports, runtime, "
        in skipped.stderr
    )
    assert "Checked before deploy" not in skipped.stderr


def test_a_retired_runtime_and_a_layer_that_does_not_exist_are_refused(
    app: Path, aws_env: dict[str, str], package_cache: Path
) -> None:
    template = load_template((app / "packaged.yaml").read_text())
    function = template["Resources"]["PyTorchFunction"]["Properties"]
    function["Runtime"] = "python3.6"  # what the guide's template says
    lam = boto3.client("lambda")
    real = lam.publish_layer_version(LayerName="real-layer", Content={"ZipFile": b"PK\x05\x06" + b"\0" * 18})
    guide_layer = "arn:aws:lambda:us-east-1:934676248949:layer:pytorchv1-py36:2"  # the guide's default
    other_region = "arn:aws:lambda:eu-west-1:123456789012:layer:elsewhere:1"
    function["Layers"] = [real["LayerVersionArn"], guide_layer, other_region]
    (app / "packaged.yaml").write_text(dump_template(template))

    found = errors(lv(*DEPLOY, "--capabilities", "CAPABILITY_IAM", cwd=app, cache=package_cache, env=aws_env))

    assert found == [
        "PyTorchFunction: python3.6 is retired on Lambda (deprecated 2022-07-18; new functions refused since "
        "2022-07-18): set Runtime: python3.12 or python3.13 and package again",
        f"PyTorchFunction: layer {guide_layer} does not exist (or is not shared with this account): remove it "
        "from Layers (a lambdavision package needs no layer) or fix the ARN",
        f"PyTorchFunction: layer {other_region} is in eu-west-1, and a function in us-east-1 can only use layers of "
        "its own region: remove it from Layers or use that region's ARN",
    ]  # the layer that exists passes
    assert no_stack()


def test_the_guides_app_is_refused_naming_torch_torchvision_and_requests(
    tmp_path: Path, aws_env: dict[str, str], package_cache: Path, demo_artifact: Path
) -> None:
    guide = tmp_path / "guide-app"
    shutil.copytree(GUIDE_APP, guide)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(demo_artifact), "models", KEY)
    package = ["package", "--s3-bucket", "models", "--output-template-file", "packaged.yaml"]

    # As the guide has it: python3.6, refused in one line.
    retired = lv(*package, cwd=guide, cache=package_cache, env=aws_env)
    assert retired.returncode == 1 and "Traceback" not in retired.stderr
    assert retired.stderr.strip() == (
        "Error: PyTorchFunction: cannot package for python3.6: python3.6 is retired on Lambda (deprecated "
        "2022-07-18; new functions refused since 2022-07-18); use Runtime: python3.12 or python3.13"
    )
    # With a current runtime it packages, and warns (not silently) about what app.py imports.
    template = guide / "template.yaml"
    template.write_text(template.read_text().replace("Runtime: python3.6", "Runtime: python3.12"))
    packaged = lv(*package, cwd=guide, cache=package_cache, env=aws_env)
    assert packaged.returncode == 0, packaged.stderr
    [warning] = [line for line in packaged.stdout.splitlines() if line.startswith("warning: PyTorchFunction: app.py")]
    assert "imports requests (line 17), torch (line 20), torchvision (line 22)" in warning

    deploy = lv(
        *DEPLOY, "--capabilities", "CAPABILITY_IAM", "--parameter-overrides", "BucketName=models", f"ObjectKey={KEY}",
        cwd=guide, cache=package_cache, env=aws_env,
    )  # fmt: skip
    found = errors(deploy)
    assert found == [
        "PyTorchFunction: layer arn:aws:lambda:us-east-1:934676248949:layer:pytorchv1-py36:2 does not exist (or is "
        "not shared with this account): remove it from Layers (a lambdavision package needs no layer) or fix the ARN",
        "PyTorchFunction: app.py imports requests (line 17), torch (line 20), torchvision (line 22), which are not in "
        "its package nor in Lambda's python3.12 runtime, so it would fail with Runtime.ImportModuleError; torch and "
        "torchvision cannot ship in a Lambda zip (250 MB limit): serve the model with lambdavision's handler instead "
        "(`lambdavision init --from-sam` rewrites the guide's app)",
    ]  # the model exists and its format is the guide's handler's business: no model error
    assert no_stack()


def test_debug_prints_the_wire_log_and_the_traceback(app: Path, aws_env: dict[str, str], package_cache: Path) -> None:
    plain = lv("endpoint", "--stack-name", "missing", cwd=app, cache=package_cache, env=aws_env)
    assert plain.returncode == 1 and len(plain.stderr.strip().splitlines()) == 1
    debug = lv("endpoint", "--stack-name", "missing", "--debug", cwd=app, cache=package_cache, env=aws_env)
    assert debug.returncode == 1
    assert re.search(
        r"botocore\.endpoint \[DEBUG\] Making request for OperationModel\(name=DescribeStacks", debug.stderr
    )
    assert "botocore.parsers [DEBUG] Response body:" in debug.stderr
    assert "Traceback (most recent call last):" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()  # the same one-line error ends it
    # Before the command too, and on a group's subcommand; LAMBDAVISION_DEBUG=1 does the same.
    assert (
        "Traceback"
        in lv("--debug", "endpoint", "--stack-name", "missing", cwd=app, cache=package_cache, env=aws_env).stderr
    )
    by_env = lv(
        "endpoint", "--stack-name", "missing", cwd=app, cache=package_cache, env={**aws_env, "LAMBDAVISION_DEBUG": "1"}
    )
    assert "botocore.parsers [DEBUG]" in by_env.stderr
    assert "--debug" in lv("local", "invoke", "--help", cwd=app, cache=package_cache).stdout


def test_confirm_changeset_asks_and_no_confirm_changeset_is_accepted(
    app: Path, aws_env: dict[str, str], package_cache: Path
) -> None:
    deploy = [*DEPLOY, "--capabilities", "CAPABILITY_IAM"]
    declined = lv(*deploy, "--confirm-changeset", cwd=app, cache=package_cache, env=aws_env, stdin="n\n")
    assert declined.returncode == 1
    assert f"About to create stack {STACK} from packaged.yaml. Deploy? [y/N]" in declined.stderr
    assert no_stack()
    accepted = lv(*deploy, "--no-confirm-changeset", cwd=app, cache=package_cache, env=aws_env)
    assert accepted.returncode == 0, accepted.stderr
    assert "Deploy?" not in accepted.stderr
