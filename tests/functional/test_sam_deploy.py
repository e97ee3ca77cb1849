"""SAM templates through AWS's transform, deployed to a real moto server: the guide's own template
(copied from ../shared/reference/guide-app) and one with HTTP API events, each "packaged" as
`sam package` leaves it (its code zipped into S3, CodeUri an s3:// URI), then given to deploy's own
steps (`deployable_template` + `deploy_stack`; the CLI's pre-deploy checks would rightly refuse
the guide's retired python3.6, which is what `init --from-sam` fixes — see test_readme.py).

moto creates no AWS::ApiGatewayV2::* from CloudFormation (nor can it then describe that stack's
resources one by one): the HTTP API app's functions, role and REST API are checked, and its HTTP
API output is the one left unresolved.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdavision.aws import deploy as stacks
from lambdavision.aws.deploy_template import deployable_template
from lambdavision.aws.template_edits import DeployOverrides
from lambdavision.cfn import read_template
from tests.fixtures.guide_app import GUIDE_APP, copy_guide_app

HTTP_APP = Path(__file__).resolve().parents[1] / "functions" / "http_api_app"
CODE_BUCKET = "code-bucket"
MODEL_BUCKET = "model-bucket"
MODEL_KEY = "fastai-models/lesson1/model.tar.gz"


def sam_package(template_path: Path, code_dir: Path) -> tuple[dict[str, Any], bytes]:
    """What `sam package` leaves: the function folder zipped into S3 and CodeUri pointing at it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in sorted(code_dir.rglob("*.py")):
            archive.write(file, file.relative_to(code_dir).as_posix())
    code = buffer.getvalue()
    key = f"{hashlib.sha256(code).hexdigest()}.zip"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=CODE_BUCKET)
    s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=code)
    template = read_template(template_path)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{CODE_BUCKET}/{key}"
    return template, code


def deploy(template: dict[str, Any], stack: str, overrides: dict[str, str]) -> stacks.DeployResult:
    plain, notes = deployable_template(template, DeployOverrides(), overrides, region="us-east-1", source="packaged")
    assert notes == ["packaged is a SAM template: transformed to plain CloudFormation (aws-sam-translator)"]
    assert "Transform" not in plain
    return stacks.deploy_stack(
        boto3.client("cloudformation"), stack_name=stack, template_body=stacks.template_body(plain, "packaged"),
        template=plain, overrides=overrides, capabilities=["CAPABILITY_IAM"],
        on_event=lambda event: None, on_notice=lambda message: None, poll_seconds=0.1,
    )  # fmt: skip


def role_s3_resources(role_arn: str) -> list[Any]:
    iam = boto3.client("iam")
    role = role_arn.rsplit("/", 1)[1]
    found: list[Any] = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document: Any = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):  # moto returns CloudFormation-made inline policies as a Python repr
            document = ast.literal_eval(document)
        found += [s["Resource"] for s in document["Statement"] if "s3:GetObject" in s["Action"]]
    return found


def rest_api(api_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> the method, of a deployed REST API."""
    client = boto3.client("apigateway")
    methods = {}
    for resource in client.get_resources(restApiId=api_id)["items"]:
        for verb in resource.get("resourceMethods", {}):
            methods[verb, resource["path"]] = client.get_method(
                restApiId=api_id, resourceId=resource["id"], httpMethod=verb
            )
    return methods


def test_the_guides_own_sam_template_deploys_to_moto(tmp_path: Path, aws_env: dict[str, str]) -> None:
    guide = tmp_path / "guide"
    copy_guide_app(guide)
    template, code = sam_package(guide / "template.yaml", guide / "pytorch")

    result = deploy(template, "pytorch-sam-app", {"BucketName": MODEL_BUCKET, "ObjectKey": MODEL_KEY})

    assert (result.action, result.status) == ("create", "CREATE_COMPLETE")
    outputs = {o.key: o.value for o in result.outputs}
    cfn = boto3.client("cloudformation")

    def physical(logical_id: str) -> str:
        detail = cfn.describe_stack_resource(StackName="pytorch-sam-app", LogicalResourceId=logical_id)
        return str(detail["StackResourceDetail"]["PhysicalResourceId"])

    function = boto3.client("lambda").get_function_configuration(FunctionName=physical("PyTorchFunction"))
    assert (function["Runtime"], function["Handler"], function["MemorySize"], function["Timeout"]) == (
        "python3.6", "app.lambda_handler", 3008, 30,
    )  # fmt: skip
    assert function["Environment"]["Variables"] == {"MODEL_BUCKET": MODEL_BUCKET, "MODEL_KEY": MODEL_KEY}
    assert function["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    assert outputs["PyTorchFunction"] == function["FunctionArn"]
    assert outputs["PyTorchFunctionIamRole"] == function["Role"]
    # The S3ReadPolicy the transform expanded, on the bucket the deploy named.
    assert [f"arn:aws:s3:::{MODEL_BUCKET}", f"arn:aws:s3:::{MODEL_BUCKET}/*"] in role_s3_resources(function["Role"])

    api_id = physical("ServerlessRestApi")
    assert boto3.client("apigateway").get_rest_api(restApiId=api_id)["name"] == "pytorch-sam-app"
    ((key, method),) = rest_api(api_id).items()
    assert key == ("POST", "/invocations")
    assert method["methodIntegration"]["type"] == "AWS_PROXY"
    assert function["FunctionArn"] in method["methodIntegration"]["uri"]
    stages = boto3.client("apigateway").get_stages(restApiId=api_id)["item"]
    assert [stage["stageName"] for stage in stages] == ["Prod"]
    # The guide's output, resolved as the guide's describe-stacks query prints it.
    assert outputs["PyTorchApi"] == f"https://{api_id}.execute-api.us-east-1.amazonaws.com/Prod/invocations/"


def test_a_sam_template_with_an_http_api_deploys_what_moto_can_create(aws_env: dict[str, str]) -> None:
    template, _ = sam_package(HTTP_APP / "template.yaml", HTTP_APP / "function")

    result = deploy(template, "http-app", {"BucketName": MODEL_BUCKET})

    assert result.status == "CREATE_COMPLETE"
    outputs = {o.key: o.value for o in result.outputs}
    (function,) = boto3.client("lambda").list_functions()["Functions"]
    assert function["FunctionArn"] == outputs["FunctionArn"] and function["Role"] == outputs["FunctionRole"]
    assert (function["Runtime"], function["MemorySize"], function["Timeout"]) == ("python3.12", 1024, 29)
    assert function["Environment"]["Variables"] == {"MODEL_BUCKET": MODEL_BUCKET, "MODEL_KEY": "somekey"}
    assert [f"arn:aws:s3:::{MODEL_BUCKET}", f"arn:aws:s3:::{MODEL_BUCKET}/*"] in role_s3_resources(function["Role"])
    (api,) = boto3.client("apigateway").get_rest_apis()["items"]
    methods = rest_api(api["id"])
    assert set(methods) == {("POST", "/invocations"), ("POST", "/keyed")}
    assert methods["POST", "/keyed"]["apiKeyRequired"] is True
    assert methods["POST", "/invocations"].get("apiKeyRequired", False) is False
    assert outputs["RestApiUrl"] == f"https://{api['id']}.execute-api.us-east-1.amazonaws.com/Prod/invocations/"
    assert outputs["HttpApiUrl"].startswith("https://${ServerlessHttpApi}")  # moto: no HTTP API from a template


@pytest.mark.parametrize("app", ["guide", "http"])
def test_deploy_refuses_a_sam_template_whose_code_is_still_local(app: str, tmp_path: Path) -> None:
    source = GUIDE_APP if app == "guide" else HTTP_APP
    template = read_template(source / "template.yaml")
    with pytest.raises(
        stacks.NotPackagedError, match=r"still points at local code: \w+Function \((pytorch|function)/\)"
    ):
        deployable_template(template, DeployOverrides(), {}, region="us-east-1", source="template.yaml")
