"""The template builder: a pure function from options to a CloudFormation dict.

What moto silently drops when the stack is deployed (Architectures, SnapStart, AWS::Lambda::Alias,
the REST API's BinaryMediaTypes) is checked here, on the template itself and with cfn-lint.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from lambdavision.aws.snapstart import has_version, stamp_version
from lambdavision.aws.template import TemplateOptions, build_template
from lambdavision.aws.template_edits import DeployOverrides, apply_overrides
from lambdavision.aws.template_names import BINARY_MEDIA_TYPES, Route, TemplateOptionError
from lambdavision.cfn import TemplateError, dump_template
from lambdavision.cfn import parse_template as load_template

CORS = "https://example.org"
VARIANTS = {
    "default": TemplateOptions(),
    "no-page": TemplateOptions(page=False),
    "arm64": TemplateOptions(architecture="arm64", memory=4096, timeout=60),
    "snapstart": TemplateOptions(snapstart=True),
    "snapstart-arm64-py313": TemplateOptions(snapstart=True, architecture="arm64", runtime="python3.13"),
    "page-route": TemplateOptions(routes=(Route("POST", "/invocations"), Route("GET", "/"))),
    "small": TemplateOptions(memory=128, timeout=1, log_retention_days=1, runtime="python3.14"),
    "cors": TemplateOptions(cors_origin=CORS),
    "cors-no-page": TemplateOptions(cors_origin="*", page=False),
    "iam": TemplateOptions(auth="iam"),
    "iam-cors": TemplateOptions(auth="iam", cors_origin=CORS),
    "key": TemplateOptions(auth="key"),
    "key-cors-snapstart": TemplateOptions(auth="key", cors_origin=CORS, snapstart=True),
    "key-no-page-custom-plan": TemplateOptions(auth="key", page=False, rate_limit=2.5, burst_limit=5, daily_quota=100),
    "key-open-page": TemplateOptions(auth="key", open_page=True, cors_origin=CORS),
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
    assert set(t["Outputs"]) == {"PyTorchApi", "PyTorchPage", "PyTorchFunction", "PyTorchFunctionIamRole"}
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


def _methods(t: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(HTTP method, path) -> the Method's properties; the root resource's path is `/`."""
    resources = t["Resources"]
    found = {}
    for method in _of_type(t, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource_id, parts = props["ResourceId"], []
        while resource_id != {"Fn::GetAtt": ["RestApi", "RootResourceId"]}:
            resource = resources[resource_id["Ref"]]["Properties"]
            parts.insert(0, resource["PathPart"])
            resource_id = resource["ParentId"]
        found[(props["HttpMethod"], "/" + "/".join(parts))] = props
    return found


def _environment(t: dict[str, Any]) -> dict[str, Any]:
    return dict(t["Resources"]["PyTorchFunction"]["Properties"]["Environment"]["Variables"])


def test_api_is_explicit_post_invocations_and_the_page_proxied_on_stage_prod() -> None:
    t = build_template(TemplateOptions())
    (api,) = _of_type(t, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}"}
    assert api["Properties"]["BinaryMediaTypes"] == ["image/*", "application/octet-stream"] == list(BINARY_MEDIA_TYPES)
    assert "Body" not in api["Properties"]  # moto ignores OpenAPI bodies
    (resource,) = _of_type(t, "AWS::ApiGateway::Resource").values()
    assert resource["Properties"]["PathPart"] == "invocations"
    assert resource["Properties"]["ParentId"] == {"Fn::GetAtt": ["RestApi", "RootResourceId"]}
    methods = _methods(t)
    assert set(methods) == {("POST", "/invocations"), ("GET", "/")}
    # The page is a Resource-less method on the API's root, proxied to the same function.
    assert methods[("GET", "/")]["ResourceId"] == {"Fn::GetAtt": ["RestApi", "RootResourceId"]}
    for props in methods.values():
        assert props["AuthorizationType"] == "NONE" and "ApiKeyRequired" not in props
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert props["Integration"]["IntegrationHttpMethod"] == "POST"
        assert "${PyTorchFunction.Arn}" in props["Integration"]["Uri"]["Fn::Sub"]
    (deployment,) = _of_type(t, "AWS::ApiGateway::Deployment").values()
    assert deployment["Properties"]["StageName"] == "Prod"
    assert sorted(deployment["DependsOn"]) == sorted(_of_type(t, "AWS::ApiGateway::Method"))
    assert not _of_type(t, "AWS::ApiGateway::Stage")  # moto has no AWS::ApiGateway::Stage
    permissions = [p["Properties"] for p in _of_type(t, "AWS::Lambda::Permission").values()]
    assert {p["SourceArn"]["Fn::Sub"].rsplit("${RestApi}", 1)[1] for p in permissions} == {
        "/*/POST/invocations",
        "/*/GET/",
    }
    for permission in permissions:
        assert permission["FunctionName"] == {"Ref": "PyTorchFunction"}
        assert permission["Principal"] == "apigateway.amazonaws.com"
    assert t["Outputs"]["PyTorchPage"]["Value"] == {
        "Fn::Sub": "https://${RestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/"
    }
    assert "LAMBDAVISION_PAGE" not in _environment(t)


def test_no_page_leaves_the_route_out_and_switches_the_handler_off() -> None:
    t = build_template(TemplateOptions(page=False))
    assert set(_methods(t)) == {("POST", "/invocations")}
    assert _environment(t)["LAMBDAVISION_PAGE"] == "0"
    assert "PyTorchPage" not in t["Outputs"]


@pytest.mark.parametrize(("page", "paths"), [(True, {"/invocations", "/"}), (False, {"/invocations"})])
def test_cors_adds_a_proxied_preflight_per_path_and_the_origin(page: bool, paths: set[str]) -> None:
    t = build_template(TemplateOptions(cors_origin=CORS, page=page))
    methods = _methods(t)
    assert {path for method, path in methods if method == "OPTIONS"} == paths
    for path in paths:
        preflight = methods[("OPTIONS", path)]
        # The function answers the preflight (the handler knows the origin), not a MOCK integration.
        assert preflight["Integration"]["Type"] == "AWS_PROXY"
        assert preflight["AuthorizationType"] == "NONE"
    assert _environment(t)["LAMBDAVISION_CORS_ORIGIN"] == CORS
    # API Gateway's own errors (403 no key, 429 throttled, 504 timeout) carry the origin too.
    responses = _of_type(t, "AWS::ApiGateway::GatewayResponse")
    assert sorted(r["Properties"]["ResponseType"] for r in responses.values()) == ["DEFAULT_4XX", "DEFAULT_5XX"]
    for response in responses.values():
        assert response["Properties"]["ResponseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": f"'{CORS}'"
        }
    (deployment,) = _of_type(t, "AWS::ApiGateway::Deployment").values()
    assert set(responses) <= set(deployment["DependsOn"])  # deployed with the API
    arns = [p["Properties"]["SourceArn"]["Fn::Sub"] for p in _of_type(t, "AWS::Lambda::Permission").values()]
    assert any(arn.endswith("/*/OPTIONS/invocations") for arn in arns)
    assert "LAMBDAVISION_CORS_ORIGIN" not in _environment(build_template(TemplateOptions()))
    assert not _of_type(build_template(TemplateOptions()), "AWS::ApiGateway::GatewayResponse")


def test_iam_auth_guards_every_method_but_the_preflights() -> None:
    methods = _methods(build_template(TemplateOptions(auth="iam", cors_origin=CORS)))
    for (method, _), props in methods.items():
        assert props["AuthorizationType"] == ("NONE" if method == "OPTIONS" else "AWS_IAM")
        assert "ApiKeyRequired" not in props


def test_key_auth_requires_the_key_and_binds_a_usage_plan_to_the_stage() -> None:
    t = build_template(TemplateOptions(auth="key", cors_origin=CORS))
    for (method, _), props in _methods(t).items():
        assert props["AuthorizationType"] == "NONE"
        assert props.get("ApiKeyRequired", False) is (method != "OPTIONS")
    ((key_id, key),) = _of_type(t, "AWS::ApiGateway::ApiKey").items()
    assert key["Properties"]["Enabled"] is True
    ((plan_id, plan),) = _of_type(t, "AWS::ApiGateway::UsagePlan").items()
    (deployment_id,) = _of_type(t, "AWS::ApiGateway::Deployment")
    # No AWS::ApiGateway::Stage (moto lacks it): the stage is the Deployment's, so wait for it.
    assert plan["DependsOn"] == deployment_id
    assert plan["Properties"]["ApiStages"] == [{"ApiId": {"Ref": "RestApi"}, "Stage": "Prod"}]
    defaults = TemplateOptions()
    assert plan["Properties"]["Throttle"] == {"RateLimit": defaults.rate_limit, "BurstLimit": defaults.burst_limit}
    assert plan["Properties"]["Quota"] == {"Limit": defaults.daily_quota, "Period": "DAY"}
    (binding,) = _of_type(t, "AWS::ApiGateway::UsagePlanKey").values()
    assert binding["Properties"] == {"KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}}
    # The output is the key's id (Ref), never its value.
    assert t["Outputs"]["PyTorchApiKeyId"]["Value"] == {"Ref": key_id}
    assert "Value" not in json.dumps(t["Outputs"]["PyTorchApiKeyId"]["Value"])

    custom = build_template(VARIANTS["key-no-page-custom-plan"])
    (plan,) = _of_type(custom, "AWS::ApiGateway::UsagePlan").values()
    assert plan["Properties"]["Throttle"] == {"RateLimit": 2.5, "BurstLimit": 5}
    assert plan["Properties"]["Quota"]["Limit"] == 100
    assert not _of_type(build_template(TemplateOptions(auth="iam")), "AWS::ApiGateway::UsagePlan")


def test_options_reach_the_function() -> None:
    props = build_template(VARIANTS["arm64"])["Resources"]["PyTorchFunction"]["Properties"]
    assert (props["Architectures"], props["MemorySize"], props["Timeout"]) == (["arm64"], 4096, 60)
    t = build_template(TemplateOptions(bucket_name="models-here", object_key="a/b.tar.gz"))
    assert t["Parameters"]["BucketName"]["Default"] == "models-here"
    assert t["Parameters"]["ObjectKey"]["Default"] == "a/b.tar.gz"


def test_snapstart_publishes_a_version_and_the_api_calls_its_alias() -> None:
    t = build_template(TemplateOptions(snapstart=True, cors_origin=CORS, auth="key"))
    props = t["Resources"]["PyTorchFunction"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    ((version_id, version),) = _of_type(t, "AWS::Lambda::Version").items()
    assert version_id.startswith("PyTorchFunctionVersion")
    assert version["Properties"]["FunctionName"] == {"Ref": "PyTorchFunction"}
    ((alias_id, alias),) = _of_type(t, "AWS::Lambda::Alias").items()
    assert alias["Properties"] == {
        "FunctionName": {"Ref": "PyTorchFunction"},
        "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]},
        "Name": "live",
    }
    methods = _methods(t)
    assert len(methods) == 4  # POST /invocations, GET /, and their preflights: all call the alias
    for method in methods.values():
        assert f"${{{alias_id}}}" in method["Integration"]["Uri"]["Fn::Sub"]
        assert "PyTorchFunction.Arn" not in method["Integration"]["Uri"]["Fn::Sub"]
    for permission in _of_type(t, "AWS::Lambda::Permission").values():
        assert permission["Properties"]["FunctionName"] == {"Ref": alias_id}
    (plan,) = _of_type(t, "AWS::ApiGateway::UsagePlan").values()
    assert plan["DependsOn"] in _of_type(t, "AWS::ApiGateway::Deployment")
    # GetAtt Version in Outputs makes every output vanish on moto; none is used.
    assert "Version" not in json.dumps(t["Outputs"])


def test_routes_are_data_a_page_at_root_hangs_on_the_root_resource() -> None:
    t = build_template(VARIANTS["page-route"])
    assert t == build_template(TemplateOptions())  # the page route given or added: the same API
    methods = _of_type(t, "AWS::ApiGateway::Method")
    root = [m for m in methods.values() if m["Properties"]["HttpMethod"] == "GET"]
    assert len(root) == 1
    assert root[0]["Properties"]["ResourceId"] == {"Fn::GetAtt": ["RestApi", "RootResourceId"]}
    (deployment,) = _of_type(t, "AWS::ApiGateway::Deployment").values()
    assert sorted(deployment["DependsOn"]) == sorted(methods)
    assert len(_of_type(t, "AWS::Lambda::Permission")) == 2


def _deployment_id(template: dict[str, Any]) -> str:
    (logical_id,) = _of_type(template, "AWS::ApiGateway::Deployment")
    return logical_id


def test_deployment_id_changes_with_the_api_only() -> None:
    base = _deployment_id(build_template(TemplateOptions()))
    assert base == _deployment_id(build_template(TemplateOptions(memory=4096)))
    assert base == _deployment_id(build_template(TemplateOptions(cors_origin=None, auth="none")))
    others = [
        build_template(TemplateOptions(page=False)),
        build_template(TemplateOptions(cors_origin=CORS)),
        build_template(TemplateOptions(auth="iam")),
        build_template(TemplateOptions(auth="key")),
        build_template(TemplateOptions(snapstart=True)),
    ]
    ids = [_deployment_id(t) for t in others]
    assert base not in ids and len(set(ids)) == len(ids)


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
        (TemplateOptions(cors_origin="https://example.org/"), "not an origin"),
        (TemplateOptions(cors_origin="example.org"), "not an origin"),
        (TemplateOptions(cors_origin="https://a.org\r\nSet-Cookie: x"), "not an origin"),
        (TemplateOptions(auth="basic"), "auth"),
        (TemplateOptions(auth="key", rate_limit=0), "positive"),
        (TemplateOptions(auth="key", daily_quota=0), "positive"),
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
    with pytest.raises(TemplateError, match="template"):
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


# --- deploy's overrides (a pure edit of the packaged template) -----------------------------------


def _packaged_build(options: TemplateOptions) -> dict[str, Any]:
    """What `package` makes of init's template: the same, with the code in S3."""
    return _packaged(build_template(options))


def test_no_overrides_change_nothing() -> None:
    template = _packaged_build(TemplateOptions())
    edited = apply_overrides(template, DeployOverrides())
    assert edited == template and edited is not template


def test_memory_is_a_plain_edit() -> None:
    template = _packaged_build(TemplateOptions(cors_origin=CORS, auth="key"))
    edited = apply_overrides(template, DeployOverrides(memory=4096))
    assert edited["Resources"]["PyTorchFunction"]["Properties"]["MemorySize"] == 4096
    edited["Resources"]["PyTorchFunction"]["Properties"]["MemorySize"] = 2048
    assert edited == template
    with pytest.raises(TemplateOptionError, match=r"128\.\.10240"):
        apply_overrides(template, DeployOverrides(memory=64))


def test_arch_must_be_the_one_the_zip_was_packaged_for() -> None:
    template = _packaged_build(TemplateOptions(architecture="arm64"))
    assert apply_overrides(template, DeployOverrides(architecture="arm64")) == template
    with pytest.raises(TemplateOptionError) as refused:
        apply_overrides(_packaged_build(TemplateOptions()), DeployOverrides(architecture="arm64"), source="p.yaml")
    message = refused.value.message
    assert "p.yaml was packaged for x86_64, not arm64" in message
    assert "lambdavision init --arch arm64" in message and "lambdavision package" in message
    with pytest.raises(TemplateOptionError, match="architecture"):
        apply_overrides(template, DeployOverrides(architecture="sparc"))


@pytest.mark.parametrize(
    "options",
    [TemplateOptions(), TemplateOptions(cors_origin=CORS, auth="key"), TemplateOptions(page=False, auth="iam")],
    ids=["default", "cors-key", "no-page-iam"],
)
def test_snapstart_override_is_what_init_snapstart_builds(options: TemplateOptions) -> None:
    """Same building blocks: deploy --snapstart on init's template == init --snapstart's template."""
    from dataclasses import replace

    plain = _packaged_build(options)
    snap = _packaged_build(replace(options, snapstart=True))
    turned_on = apply_overrides(plain, DeployOverrides(snapstart=True))
    assert stamp_version(turned_on, {}) == stamp_version(snap, {})
    assert has_version(turned_on) and not has_version(plain)
    assert apply_overrides(snap, DeployOverrides(snapstart=False)) == plain
    assert apply_overrides(snap, DeployOverrides(snapstart=True)) == snap
    assert _lint(turned_on) == []


@pytest.mark.parametrize(
    "options",
    [TemplateOptions(), TemplateOptions(page=False), TemplateOptions(auth="key"), TemplateOptions(snapstart=True)],
    ids=["default", "no-page", "key", "snapstart"],
)
def test_cors_override_is_what_init_cors_origin_builds(options: TemplateOptions) -> None:
    from dataclasses import replace

    edited = apply_overrides(_packaged_build(options), DeployOverrides(cors_origin=CORS))
    # (deploy names a SnapStart version after the final function: stamp both the same way)
    assert stamp_version(edited, {}) == stamp_version(_packaged_build(replace(options, cors_origin=CORS)), {})
    # A second origin replaces the first without adding methods again.
    again = apply_overrides(edited, DeployOverrides(cors_origin="http://localhost:8080"))
    assert _environment(again)["LAMBDAVISION_CORS_ORIGIN"] == "http://localhost:8080"
    assert set(_methods(again)) == set(_methods(edited))
    for response in _of_type(again, "AWS::ApiGateway::GatewayResponse").values():
        assert "'http://localhost:8080'" in response["Properties"]["ResponseParameters"].values()
    assert _lint(again) == []
    with pytest.raises(TemplateOptionError, match="not an origin"):
        apply_overrides(edited, DeployOverrides(cors_origin="https://example.org/path"))


def test_snapstart_needs_python312_and_overrides_need_one_function() -> None:
    template = _packaged_build(TemplateOptions())
    template["Resources"]["PyTorchFunction"]["Properties"]["Runtime"] = "python3.11"
    with pytest.raises(TemplateOptionError, match=r"python3\.12 or later"):
        apply_overrides(template, DeployOverrides(snapstart=True))
    two = _packaged_build(TemplateOptions())
    two["Resources"]["Other"] = {"Type": "AWS::Lambda::Function", "Properties": {}}
    del two["Resources"]["PyTorchFunction"]
    two["Resources"]["Third"] = {"Type": "AWS::Serverless::Function", "Properties": {}}
    with pytest.raises(TemplateOptionError, match="need one Lambda function"):
        apply_overrides(two, DeployOverrides(memory=1024))


SAM_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  ClassifierFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://code-bucket/abc.zip
      Handler: app.lambda_handler
      Runtime: python3.12
      Architectures: [x86_64]
      Events:
        Api:
          Type: Api
          Properties: {Path: /invocations, Method: post}
"""


def test_a_sam_function_takes_memory_and_snapstart_through_auto_publish_alias() -> None:
    template = load_template(SAM_TEMPLATE)
    edited = apply_overrides(template, DeployOverrides(memory=3008, snapstart=True, architecture="x86_64"))
    props = edited["Resources"]["ClassifierFunction"]["Properties"]
    assert props["MemorySize"] == 3008
    # SAM publishes the version and points the Api event at the alias itself.
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"} and props["AutoPublishAlias"] == "live"
    off = apply_overrides(edited, DeployOverrides(snapstart=False))
    assert "SnapStart" not in off["Resources"]["ClassifierFunction"]["Properties"]
    assert "AutoPublishAlias" not in off["Resources"]["ClassifierFunction"]["Properties"]
    with pytest.raises(TemplateOptionError, match="templates made by `lambdavision init`"):
        apply_overrides(template, DeployOverrides(cors_origin=CORS))


def test_the_snapstart_version_is_named_after_what_it_publishes() -> None:
    """A Version is immutable: a new code zip or model key must make a new resource to publish."""
    template = _packaged_build(TemplateOptions(snapstart=True))

    def version_id(t: dict[str, Any]) -> str:
        (logical_id,) = _of_type(t, "AWS::Lambda::Version")
        (alias,) = _of_type(t, "AWS::Lambda::Alias").values()
        assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [logical_id, "Version"]}
        return logical_id

    first = version_id(stamp_version(load_template(dump_template(template)), {"ObjectKey": "a.tar.gz"}))
    assert first == version_id(stamp_version(load_template(dump_template(template)), {"ObjectKey": "a.tar.gz"}))
    assert first != version_id(stamp_version(load_template(dump_template(template)), {"ObjectKey": "b.tar.gz"}))
    # Missing values count as the defaults.
    defaults = {"BucketName": "my-bucket", "ObjectKey": "fastai-models/lesson1/model.tar.gz"}
    assert version_id(stamp_version(load_template(dump_template(template)), {})) == version_id(
        stamp_version(load_template(dump_template(template)), defaults)
    )
    new_code = load_template(dump_template(template))
    new_code["Resources"]["PyTorchFunction"]["Properties"]["Code"]["S3Key"] = "def.zip"
    assert first != version_id(stamp_version(new_code, {"ObjectKey": "a.tar.gz"}))
    new_layer = load_template(dump_template(template))
    new_layer["Resources"]["DepsLayer"] = {
        "Type": "AWS::Lambda::LayerVersion",
        "Properties": {"Content": {"S3Key": "1"}},
    }
    layered = version_id(stamp_version(load_template(dump_template(new_layer)), {"ObjectKey": "a.tar.gz"}))
    new_layer["Resources"]["DepsLayer"]["Properties"]["Content"]["S3Key"] = "2"
    assert layered != version_id(stamp_version(new_layer, {"ObjectKey": "a.tar.gz"}))
    plain = _packaged_build(TemplateOptions())
    assert stamp_version(plain, {"ObjectKey": "x"}) == _packaged_build(TemplateOptions())
