"""The template builder: a pure function from options to a CloudFormation dict.

What moto silently drops when the stack is deployed (Architectures, SnapStart, AWS::Lambda::Alias,
the REST API's BinaryMediaTypes) is checked here, on the template itself and with cfn-lint.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from lambdavision.aws.template import (
    BINARY_MEDIA_TYPES,
    Route,
    TemplateOptionError,
    TemplateOptions,
    build_template,
    dump_template,
    load_template,
)

VARIANTS = {
    "default": TemplateOptions(),
    "arm64": TemplateOptions(architecture="arm64", memory=4096, timeout=60),
    "snapstart": TemplateOptions(snapstart=True),
    "snapstart-arm64-py313": TemplateOptions(snapstart=True, architecture="arm64", runtime="python3.13"),
    "page-route": TemplateOptions(routes=(Route("POST", "/invocations"), Route("GET", "/"))),
    "small": TemplateOptions(memory=128, timeout=1, log_retention_days=1, runtime="python3.14"),
}


def _lint(template: dict[str, Any]) -> list[str]:
    return [str(match) for match in lint(dump_template(template), config=ManualArgs(regions=["us-east-1"]))]


def _packaged(template: dict[str, Any]) -> dict[str, Any]:
    resources = template["Resources"]
    resources["PyTorchFunction"]["Properties"]["Code"] = {"S3Bucket": "code-bucket", "S3Key": "abc.zip"}
    return template


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_default_template_has_the_guides_names_and_todays_defaults() -> None:
    t = build_template(TemplateOptions())
    assert set(t["Parameters"]) == {"BucketName", "ObjectKey"}
    fn = t["Resources"]["PyTorchFunction"]
    assert fn["Type"] == "AWS::Lambda::Function"
    props = fn["Properties"]
    assert props["Code"] == "function/"
    assert props["Handler"] == "app.lambda_handler"
    assert props["Runtime"] == "python3.12"
    assert props["MemorySize"] == 2048
    assert props["Timeout"] == 29
    assert props["Architectures"] == ["x86_64"]
    assert "SnapStart" not in props
    assert props["Environment"]["Variables"] == {
        "MODEL_BUCKET": {"Ref": "BucketName"},
        "MODEL_KEY": {"Ref": "ObjectKey"},
    }
    assert set(t["Outputs"]) == {"PyTorchApi", "PyTorchFunction", "PyTorchFunctionIamRole"}
    assert t["Outputs"]["PyTorchApi"]["Value"] == {
        "Fn::Sub": "https://${RestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/invocations/"
    }
    assert t["Outputs"]["PyTorchFunction"]["Value"] == {"Fn::GetAtt": ["PyTorchFunction", "Arn"]}
    assert t["Outputs"]["PyTorchFunctionIamRole"]["Value"] == {"Fn::GetAtt": ["PyTorchFunctionRole", "Arn"]}


def test_role_reads_only_the_one_model_object() -> None:
    t = build_template(TemplateOptions())
    role = t["Resources"]["PyTorchFunctionRole"]["Properties"]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    s3 = [s for s in statements if str(s["Action"]).startswith("s3:")]
    assert s3 == [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}/${ObjectKey}"},
        }
    ]
    logs = [s for s in statements if s not in s3]
    assert logs and all(a.startswith("logs:") for s in logs for a in s["Action"])
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_log_group_is_the_functions_with_a_retention() -> None:
    t = build_template(TemplateOptions(log_retention_days=30))
    (group,) = _of_type(t, "AWS::Logs::LogGroup").values()
    assert group["Properties"] == {
        "LogGroupName": {"Fn::Sub": "/aws/lambda/${PyTorchFunction}"},
        "RetentionInDays": 30,
    }


def test_api_is_explicit_post_invocations_proxy_on_stage_prod() -> None:
    t = build_template(TemplateOptions())
    (api,) = _of_type(t, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}"}
    assert api["Properties"]["BinaryMediaTypes"] == ["image/*", "application/octet-stream"] == list(BINARY_MEDIA_TYPES)
    assert "Body" not in api["Properties"]  # moto ignores OpenAPI bodies
    (resource,) = _of_type(t, "AWS::ApiGateway::Resource").values()
    assert resource["Properties"]["PathPart"] == "invocations"
    assert resource["Properties"]["ParentId"] == {"Fn::GetAtt": ["RestApi", "RootResourceId"]}
    ((method_id, method),) = _of_type(t, "AWS::ApiGateway::Method").items()
    props = method["Properties"]
    assert props["HttpMethod"] == "POST"
    assert props["Integration"]["Type"] == "AWS_PROXY"
    assert props["Integration"]["IntegrationHttpMethod"] == "POST"
    assert "${PyTorchFunction.Arn}" in props["Integration"]["Uri"]["Fn::Sub"]
    (deployment,) = _of_type(t, "AWS::ApiGateway::Deployment").values()
    assert deployment["Properties"]["StageName"] == "Prod"
    assert deployment["DependsOn"] == [method_id]
    assert not _of_type(t, "AWS::ApiGateway::Stage")  # moto has no AWS::ApiGateway::Stage
    (permission,) = _of_type(t, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["FunctionName"] == {"Ref": "PyTorchFunction"}
    assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    assert permission["Properties"]["SourceArn"]["Fn::Sub"].endswith("${RestApi}/*/POST/invocations")


def test_options_reach_the_function() -> None:
    props = build_template(VARIANTS["arm64"])["Resources"]["PyTorchFunction"]["Properties"]
    assert (props["Architectures"], props["MemorySize"], props["Timeout"]) == (["arm64"], 4096, 60)
    t = build_template(TemplateOptions(bucket_name="models-here", object_key="a/b.tar.gz"))
    assert t["Parameters"]["BucketName"]["Default"] == "models-here"
    assert t["Parameters"]["ObjectKey"]["Default"] == "a/b.tar.gz"


def test_snapstart_publishes_a_version_and_the_api_calls_its_alias() -> None:
    t = build_template(TemplateOptions(snapstart=True))
    props = t["Resources"]["PyTorchFunction"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    ((version_id, version),) = _of_type(t, "AWS::Lambda::Version").items()
    assert version["Properties"]["FunctionName"] == {"Ref": "PyTorchFunction"}
    ((alias_id, alias),) = _of_type(t, "AWS::Lambda::Alias").items()
    assert alias["Properties"] == {
        "FunctionName": {"Ref": "PyTorchFunction"},
        "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]},
        "Name": "live",
    }
    (method,) = _of_type(t, "AWS::ApiGateway::Method").values()
    assert f"${{{alias_id}}}" in method["Properties"]["Integration"]["Uri"]["Fn::Sub"]
    assert "PyTorchFunction.Arn" not in method["Properties"]["Integration"]["Uri"]["Fn::Sub"]
    (permission,) = _of_type(t, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["FunctionName"] == {"Ref": alias_id}
    # GetAtt Version in Outputs makes every output vanish on moto; none is used.
    assert "Version" not in json.dumps(t["Outputs"])


def test_routes_are_data_a_page_at_root_hangs_on_the_root_resource() -> None:
    t = build_template(VARIANTS["page-route"])
    methods = _of_type(t, "AWS::ApiGateway::Method")
    root = [m for m in methods.values() if m["Properties"]["HttpMethod"] == "GET"]
    assert len(root) == 1
    assert root[0]["Properties"]["ResourceId"] == {"Fn::GetAtt": ["RestApi", "RootResourceId"]}
    (deployment,) = _of_type(t, "AWS::ApiGateway::Deployment").values()
    assert sorted(deployment["DependsOn"]) == sorted(methods)
    assert len(_of_type(t, "AWS::Lambda::Permission")) == 2


def test_deployment_id_changes_with_the_routes_only() -> None:
    def deployment_id(options: TemplateOptions) -> str:
        (logical_id,) = _of_type(build_template(options), "AWS::ApiGateway::Deployment")
        return logical_id

    base = deployment_id(TemplateOptions())
    assert base == deployment_id(TemplateOptions(memory=4096))
    assert base != deployment_id(VARIANTS["page-route"])


def test_nested_paths_share_parent_resources() -> None:
    t = build_template(TemplateOptions(routes=(Route("POST", "/v1/classify"), Route("GET", "/v1/items/{id}"))))
    resources = _of_type(t, "AWS::ApiGateway::Resource")
    parts = sorted(r["Properties"]["PathPart"] for r in resources.values())
    assert parts == ["classify", "items", "v1", "{id}"]
    permissions = [p["Properties"]["SourceArn"]["Fn::Sub"] for p in _of_type(t, "AWS::Lambda::Permission").values()]
    assert any(arn.endswith("/*/GET/v1/items/*") for arn in permissions)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (TemplateOptions(runtime="python3.11"), "glibc 2.26"),
        (TemplateOptions(runtime="python3.9"), "glibc 2.26"),
        (TemplateOptions(runtime="nodejs22.x"), "not supported"),
        (TemplateOptions(architecture="arm"), "architecture"),
        (TemplateOptions(memory=64), "128..10240"),
        (TemplateOptions(memory=20000), "128..10240"),
        (TemplateOptions(timeout=0), "1..900"),
        (TemplateOptions(log_retention_days=13), "retention"),
        (TemplateOptions(routes=()), "at least one route"),
        (TemplateOptions(routes=(Route("FETCH", "/x"),)), "method"),
        (TemplateOptions(routes=(Route("GET", "x"),)), "start with /"),
        (TemplateOptions(routes=(Route("GET", "/a b"),)), "invalid segment"),
        (TemplateOptions(routes=(Route("GET", "/x"), Route("get", "/x"))), "twice"),
        (TemplateOptions(bucket_name=""), "empty"),
    ],
)
def test_bad_options_are_refused_with_a_reason(options: TemplateOptions, message: str) -> None:
    with pytest.raises(TemplateOptionError, match=message):
        build_template(options)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_yaml_round_trip_uses_short_tags(name: str) -> None:
    template = build_template(VARIANTS[name])
    text = dump_template(template)
    assert load_template(text) == template
    assert "!Ref" in text and "!GetAtt" in text and "!Sub" in text
    assert "Fn::" not in text
    assert "&id" not in text and "*id" not in text  # CloudFormation rejects YAML aliases
    assert load_template(json.dumps(template)) == template


def test_load_template_reads_hand_written_short_forms() -> None:
    text = """
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Role: !GetAtt Role.Arn
      Code: !If [IsProd, !Ref Bucket, other]
      Policy:
        Version: 2012-10-17
"""
    template = load_template(text)
    props = template["Resources"]["Fn"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["Role", "Arn"]}
    assert props["Code"] == {"Fn::If": ["IsProd", {"Ref": "Bucket"}, "other"]}
    assert props["Policy"]["Version"] == "2012-10-17"


@pytest.mark.parametrize("text", ["", "Resources: [1, 2]", "a: [unclosed", "just a string"])
def test_load_template_refuses_what_is_not_a_template(text: str) -> None:
    with pytest.raises(TemplateOptionError, match="template"):
        load_template(text, source="broken.yaml")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cfn_lint_passes_on_every_variant_before_and_after_packaging(name: str) -> None:
    assert _lint(build_template(VARIANTS[name])) == []
    assert _lint(_packaged(build_template(VARIANTS[name]))) == []


def test_cfn_lint_is_not_vacuous() -> None:
    """A SnapStart function on python3.11 (possible only by editing the template) is an error."""
    template = build_template(TemplateOptions(snapstart=True))
    template["Resources"]["PyTorchFunction"]["Properties"]["Runtime"] = "python3.11"
    assert any("E2530" in m for m in _lint(template))
