"""`lambdavision.cfn`: the one template model — reader, parameter overrides, the SAM transform made
explicit for moto, the function walker and the routes — on the guide's own template (copied from
../shared/reference/guide-app) and on SAM apps written for these tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from lambdavision.aws.config import write_config
from lambdavision.cfn import (
    ApiRoute,
    build_app,
    dump_template,
    load_app,
    load_functions,
    parse_parameter_overrides,
    parse_template,
    plain_template,
    read_template,
)
from lambdavision.cfn.intrinsics import Resolver
from lambdavision.cfn.parameters import parameter_values
from lambdavision.core.errors import TemplateError
from tests.fixtures.guide_app import copy_guide_app

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
HTTP_APP = FUNCTIONS / "http_api_app" / "template.yaml"


@pytest.fixture
def guide(tmp_path: Path) -> Path:
    """The guide's own folder, copied (its files are read-only)."""
    return copy_guide_app(tmp_path / "guide")


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def lint_errors(template: dict[str, Any]) -> list[str]:
    matches = lint(dump_template(template), config=ManualArgs(regions=["us-east-1"]))
    return [str(m) for m in matches if str(m.rule.id).startswith("E")]


# --- the reader -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties: {Handler: [unclosed\n", 4),
        ("Resources:\n  Fn:\n    Type: x\n   bad: indent\n", 4),
        ('{\n  "Resources": {\n    "Fn": {"Type": "x",}\n  }\n}', 3),
    ],
)
def test_a_template_that_is_not_yaml_or_json_names_the_file_and_line(text: str, line: int) -> None:
    with pytest.raises(TemplateError) as error:
        parse_template(text, "app/template.yaml")
    assert error.value.message.startswith("app/template.yaml, line ")
    assert f"line {line}, column " in error.value.message
    assert "not valid YAML or JSON" in error.value.message
    assert "\n" not in error.value.message


def test_read_template_says_when_the_file_is_missing(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"no such template: .*missing.yaml \(the file does not exist\)"):
        read_template(tmp_path / "missing.yaml")


def test_short_tags_unquoted_dates_and_round_trip() -> None:
    text = "Resources:\n  R:\n    Type: T\n    Properties:\n      A: !GetAtt X.Y.Z\n      V: 2012-10-17\n"
    template = parse_template(text)
    assert template["Resources"]["R"]["Properties"] == {"A": {"Fn::GetAtt": ["X", "Y.Z"]}, "V": "2012-10-17"}
    assert parse_template(dump_template(template)) == template


# --- parameter overrides: one parser ---------------------------------------------------------------


def test_every_parameter_override_form_gives_the_same_answer() -> None:
    expected = {"BucketName": "my-bucket", "ObjectKey": "a b.tar.gz"}
    forms = [
        ["BucketName=my-bucket", "ObjectKey=a b.tar.gz"],  # SAM's words, as the shell hands them over
        ["BucketName=my-bucket ObjectKey='a b.tar.gz'"],  # one quoted string
        ["ParameterKey=BucketName,ParameterValue=my-bucket", 'ParameterKey=ObjectKey,ParameterValue="a b.tar.gz"'],
        ["BucketName=my-bucket", 'ObjectKey="a b.tar.gz"'],
    ]
    # (the first form's second word has a space only because no shell split it: quoted, it is one value)
    forms[0][1] = "ObjectKey='a b.tar.gz'"
    for form in forms:
        assert parse_parameter_overrides(form) == expected, form
    assert parse_parameter_overrides(["ParameterKey=Subnets,ParameterValue=a,b,c", "Name=O'Brien", "Empty="]) == {
        "Subnets": "a,b,c",
        "Name": "O'Brien",
        "Empty": "",
    }


@pytest.mark.parametrize("bad", ["NoEqualsSign", "=value", "A='unclosed B=2", "ParameterKey=,ParameterValue=x"])
def test_a_bad_parameter_override_is_one_clear_error(bad: str) -> None:
    with pytest.raises(TemplateError, match=r"KEY=VALUE|No closing quotation"):
        parse_parameter_overrides([bad])


def test_lambdavision_toml_overrides_with_spaces_reach_the_parser_whole(tmp_path: Path) -> None:
    import click

    from lambdavision.cli.default_map import load_default_map

    @click.group()
    def group() -> None: ...

    @group.command("deploy")
    @click.option("--parameter-overrides", multiple=True)
    def deploy(parameter_overrides: tuple[str, ...]) -> None: ...

    write_config(tmp_path / "lambdavision.toml", {"deploy": {"parameter-overrides": {"Greeting": "hello world"}}})
    values = load_default_map(group, tmp_path, environ={})["deploy"]["parameter_overrides"]
    assert parse_parameter_overrides(values) == {"Greeting": "hello world"}


def test_parameter_values_type_lists_and_leave_out_parameters_without_a_value() -> None:
    template = {
        "Parameters": {
            "Subnets": {"Type": "CommaDelimitedList", "Default": "a, b"},
            "NoDefault": {"Type": "String"},
            "Number": {"Type": "Number", "Default": 3},
        }
    }
    assert parameter_values(template, {}, "t") == {"Subnets": ["a", "b"], "Number": "3"}
    with pytest.raises(TemplateError, match="has no parameter Nope"):
        parameter_values(template, {"Nope": "1"}, "t")


def test_a_required_property_naming_no_parameter_is_an_error() -> None:
    resolver = Resolver({}, {"Known": "python3.12"})
    assert resolver.resolve_required({"Ref": "Known"}, "Fn.Runtime") == "python3.12"
    with pytest.raises(TemplateError, match=r"Fn.Runtime refers to 'Other', which is not a parameter with a Default"):
        resolver.resolve_required({"Fn::Sub": "${Other}"}, "Fn.Runtime")


# --- the SAM transform, made explicit ---------------------------------------------------------------


def test_the_guides_template_becomes_plain_cloudformation_moto_can_deploy(guide: Path) -> None:
    sam = read_template(guide / "template.yaml")
    plain = plain_template(sam, source="template.yaml")

    assert "Transform" not in plain and not [r for r in plain["Resources"].values() if "Serverless" in r["Type"]]
    function = plain["Resources"]["PyTorchFunction"]["Properties"]
    # The local folder comes out as `aws cloudformation package` writes it (package replaces it).
    assert function["Code"] == "pytorch/"
    assert (function["Runtime"], function["MemorySize"], function["Timeout"]) == ("python3.6", 3008, 30)
    assert function["Environment"]["Variables"] == {
        "MODEL_BUCKET": {"Ref": "BucketName"},
        "MODEL_KEY": {"Ref": "ObjectKey"},
    }
    assert function["Role"] == {"Fn::GetAtt": ["PyTorchFunctionRole", "Arn"]}
    (role,) = of_type(plain, "AWS::IAM::Role").values()
    actions = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"]
    assert "s3:GetObject" in actions  # the S3ReadPolicy template, expanded

    # 1. a Name; 2. explicit Resource + Method, no OpenAPI Body; 3. no Stage: the Deployment names it.
    api = plain["Resources"]["ServerlessRestApi"]["Properties"]
    assert "Body" not in api and api["Name"] == {"Ref": "AWS::StackName"}
    ((resource_id, resource),) = of_type(plain, "AWS::ApiGateway::Resource").items()
    assert resource["Properties"]["PathPart"] == "invocations"
    ((method_id, method),) = of_type(plain, "AWS::ApiGateway::Method").items()
    assert method["Properties"]["ResourceId"] == {"Ref": resource_id}
    assert method["Properties"]["HttpMethod"] == "POST"
    assert method["Properties"]["Integration"]["Type"] == "AWS_PROXY"
    assert "${PyTorchFunction.Arn}" in method["Properties"]["Integration"]["Uri"]["Fn::Sub"]
    assert not of_type(plain, "AWS::ApiGateway::Stage")
    ((_, deployment),) = of_type(plain, "AWS::ApiGateway::Deployment").items()
    assert deployment["Properties"]["StageName"] == "Prod"
    assert method_id in deployment["DependsOn"]
    assert plain["Outputs"] == sam["Outputs"]  # the guide's outputs, unchanged
    # cfn-lint finds nothing wrong with it but the guide's own retired runtime.
    (error,) = lint_errors(plain)
    assert "E2533" in error and "python3.6" in error


def test_local_reads_the_transformed_guide_template(guide: Path) -> None:
    app = load_app(guide / "template.yaml", {"BucketName": "real-bucket"})
    spec = app.functions["PyTorchFunction"]
    assert spec.code_dir == (guide / "pytorch").resolve() and spec.unavailable_reason == ""
    assert (spec.handler, spec.runtime, spec.timeout_s) == ("app.lambda_handler", "python3.6", 30)
    assert spec.environment == {"MODEL_BUCKET": "real-bucket", "MODEL_KEY": "somekey"}
    assert spec.layers == ("arn:aws:lambda:us-east-1:934676248949:layer:pytorchv1-py36:2",)
    assert app.routes == [ApiRoute("POST", "/invocations", "PyTorchFunction")]
    assert app.stage_name == "Prod"


def test_an_http_api_and_globals_code_uri_through_the_transform() -> None:
    app = load_app(HTTP_APP)
    spec = app.functions["ClassifierFunction"]
    assert spec.code_dir == HTTP_APP.parent / "function" and spec.resource_type == "AWS::Serverless::Function"
    assert app.routes == [
        ApiRoute("POST", "/invocations", "ClassifierFunction"),
        ApiRoute("POST", "/keyed", "ClassifierFunction", api_key_required=True),
        ApiRoute("POST", "/v2/invocations", "ClassifierFunction", payload_version="2.0"),
        ApiRoute("GET", "/v2/items/{name}", "ClassifierFunction", payload_version="2.0"),
    ]
    plain = plain_template(read_template(HTTP_APP))
    keyed = [m for m in of_type(plain, "AWS::ApiGateway::Method").values() if m["Properties"].get("ApiKeyRequired")]
    assert len(keyed) == 1
    # HTTP APIs stay as the transform wrote them (moto's CloudFormation has no ApiGatewayV2 at all).
    assert set(of_type(plain, "AWS::ApiGatewayV2::Api")) == {"ServerlessHttpApi"}
    assert lint_errors(plain) == []


def test_stage_settings_and_refs_move_to_the_deployment() -> None:
    text = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Variables: {colour: blue}
      Auth: {ApiKeyRequired: true, UsagePlan: {CreateUsagePlan: PER_API}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://code-bucket/k.zip
      Handler: app.h
      Runtime: python3.12
      Events:
        Post: {Type: Api, Properties: {Path: /x, Method: post, RestApiId: !Ref Api}}
Outputs:
  Stage: {Value: !Ref Apiv1Stage}
"""
    plain = plain_template(parse_template(text))
    assert not of_type(plain, "AWS::ApiGateway::Stage")
    ((deployment_id, deployment),) = of_type(plain, "AWS::ApiGateway::Deployment").items()
    assert deployment["Properties"]["StageName"] == "v1"
    assert deployment["Properties"]["StageDescription"] == {"Variables": {"colour": "blue"}}
    assert plain["Outputs"]["Stage"]["Value"] == "v1"
    (plan,) = of_type(plain, "AWS::ApiGateway::UsagePlan").values()
    assert plan["Properties"]["ApiStages"][0]["Stage"] == "v1"
    assert deployment_id in ([plan["DependsOn"]] if isinstance(plan["DependsOn"], str) else plan["DependsOn"])
    ((_, method),) = of_type(plain, "AWS::ApiGateway::Method").items()
    assert method["Properties"]["ApiKeyRequired"] is True
    assert lint_errors(plain) == []


def test_a_body_with_more_than_proxy_methods_is_kept_and_still_served_locally(tmp_path: Path) -> None:
    text = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Api:
    Cors: {AllowOrigin: "'https://example.org'"}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.h
      Runtime: python3.12
      Events:
        Post: {Type: Api, Properties: {Path: /x, Method: post}}
"""
    document = parse_template(text)
    plain = plain_template(document)
    assert "Body" in plain["Resources"]["ServerlessRestApi"]["Properties"]  # a mock OPTIONS method: kept
    assert plain["Resources"]["ServerlessRestApi"]["Properties"]["Name"] == {"Ref": "AWS::StackName"}
    assert not of_type(plain, "AWS::ApiGateway::Stage")
    app = build_app(document, tmp_path / "template.yaml")
    assert app.routes == [ApiRoute("POST", "/x", "Fn")]


def test_the_transform_refusing_a_template_is_one_line() -> None:
    text = "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n"
    with pytest.raises(TemplateError, match=r"t.yaml: the SAM transform refused it: .*Fn.*Handler"):
        load_functions(parse_template(text), Path("."), default_runtime="", source="t.yaml")


def test_the_input_template_is_left_untouched(guide: Path) -> None:
    sam = read_template(guide / "template.yaml")
    before = copy.deepcopy(sam)
    plain_template(sam)
    assert sam == before


def test_conditional_functions_keep_their_body_and_locally_only_the_true_ones_are_served(tmp_path: Path) -> None:
    """SAM wraps a conditional function's paths in Fn::If and gives the shared API an Fn::Or condition."""
    text = """
Transform: AWS::Serverless-2016-10-31
Parameters: {Env: {Type: String, Default: dev}}
Conditions:
  IsDev: !Equals [!Ref Env, dev]
  IsProd: !Equals [!Ref Env, prod]
Resources:
  A:
    Type: AWS::Serverless::Function
    Condition: IsDev
    Properties: {CodeUri: a/, Handler: a.h, Runtime: python3.12, Events: {E: {Type: Api, Properties: {Path: /a, Method: get}}}}
  B:
    Type: AWS::Serverless::Function
    Condition: IsProd
    Properties: {CodeUri: b/, Handler: b.h, Runtime: python3.12, Events: {E: {Type: Api, Properties: {Path: /b, Method: get}}}}
"""  # noqa: E501
    document = parse_template(text)
    plain = plain_template(document)
    # Explicit methods could not follow the conditions (a DependsOn cannot be conditional): the Body stays.
    assert "Body" in plain["Resources"]["ServerlessRestApi"]["Properties"]
    assert plain["Conditions"]["ServerlessRestApiCondition"] == {
        "Fn::Or": [{"Condition": "IsDev"}, {"Condition": "IsProd"}]
    }
    dev = build_app(document, tmp_path / "template.yaml")
    assert (set(dev.functions), dev.routes) == ({"A"}, [ApiRoute("GET", "/a", "A")])
    prod = build_app(document, tmp_path / "template.yaml", {"Env": "prod"})
    assert (set(prod.functions), prod.routes) == ({"B"}, [ApiRoute("GET", "/b", "B")])
    assert build_app(document, tmp_path / "template.yaml", {"Env": "test"}).routes == []


def test_and_or_not_conditions_decide_which_functions_run(tmp_path: Path) -> None:
    """Fn::And / Fn::Or / Fn::Not: the SAM transform writes them (Fn::Or above; Fn::Not for the role it
    makes only when a function's own is not given) and hand-written Conditions use them."""
    sam = parse_template("""
Transform: AWS::Serverless-2016-10-31
Parameters: {RoleArn: {Type: String, Default: ""}}
Conditions:
  HasRole: !Not [!Equals [!Ref RoleArn, ""]]
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: f/, Handler: f.h, Runtime: python3.12, Role: !If [HasRole, !Ref RoleArn, !Ref AWS::NoValue]}
""")
    plain = plain_template(sam)
    assert plain["Conditions"]["NOTHasRole"] == {"Fn::Not": [{"Condition": "HasRole"}]}
    assert plain["Resources"]["FRole"]["Condition"] == "NOTHasRole"
    cfn_text = """
Parameters: {Env: {Type: String, Default: dev}, Area: {Type: String, Default: eu}}
Conditions:
  IsDev: !Equals [!Ref Env, dev]
  IsEu: !Equals [!Ref Area, eu]
  NotDev: !Not [{Condition: IsDev}]
  DevInEu: !And [{Condition: IsDev}, {Condition: IsEu}]
  DevOrEu: !Or [{Condition: IsDev}, {Condition: IsEu}]
Resources:
  N: {Type: AWS::Lambda::Function, Condition: NotDev, Properties: {Code: n/, Handler: n.h, Runtime: python3.12}}
  A: {Type: AWS::Lambda::Function, Condition: DevInEu, Properties: {Code: a/, Handler: a.h, Runtime: python3.12}}
  O: {Type: AWS::Lambda::Function, Condition: DevOrEu, Properties: {Code: o/, Handler: o.h, Runtime: python3.12}}
"""
    document = parse_template(cfn_text)
    served = {
        (env, area): set(build_app(document, tmp_path / "template.yaml", {"Env": env, "Area": area}).functions)
        for env in ("dev", "prod")
        for area in ("eu", "us")
    }
    assert served == {
        ("dev", "eu"): {"A", "O"},
        ("dev", "us"): {"O"},
        ("prod", "eu"): {"N", "O"},
        ("prod", "us"): {"N"},
    }


def test_a_repository_app_is_refused_before_the_transform_could_call_aws() -> None:
    text = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Nested:
    Type: AWS::Serverless::Application
    Properties:
      Location: {ApplicationId: "arn:aws:serverlessrepo:us-east-1:123456789012:applications/x", SemanticVersion: 1.0.0}
"""
    with pytest.raises(TemplateError, match="Nested is an app of the Serverless Application Repository"):
        plain_template(parse_template(text), source="t.yaml")


def test_a_body_with_a_resource_policy_is_kept_whole() -> None:
    """Writing methods out of it would silently drop the policy (who may call the API)."""
    text = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Api:
    Auth:
      ResourcePolicy: {IpRangeWhitelist: [10.0.0.0/8]}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://code-bucket/k.zip
      Handler: app.h
      Runtime: python3.12
      Events:
        Post: {Type: Api, Properties: {Path: /x, Method: post}}
"""
    plain = plain_template(parse_template(text))
    body = plain["Resources"]["ServerlessRestApi"]["Properties"]["Body"]
    assert "x-amazon-apigateway-policy" in body
    assert not of_type(plain, "AWS::ApiGateway::Method")


def test_before_a_real_deploy_only_what_is_known_resolves() -> None:
    """deploy's checks resolve with the stack's parameters and region; the account and stack are not
    known there (locally they are the stand-in's), and anything unknown leaves the value unresolved."""
    before_deploy = Resolver({}, {"Bucket": "b"}, "eu-west-1", local_stack=False)
    assert before_deploy.resolve_known({"Fn::Sub": "${Bucket}-${AWS::Region}"}) == "b-eu-west-1"
    assert before_deploy.resolve_known({"Fn::Sub": "models-${AWS::AccountId}"}) is None
    assert before_deploy.resolve_known({"Ref": "Missing"}) is None
    assert before_deploy.resolve_known({"Fn::GetAtt": ["Fn", "Arn"]}) is None
    assert before_deploy.resolve_known("literal") == "literal"
    local = Resolver({}, {})
    assert local.resolve_known({"Fn::Sub": "models-${AWS::AccountId}"}) == "models-123456789012"
