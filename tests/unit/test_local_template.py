"""Template reading (SAM and plain CloudFormation), env.json, and the pure pieces of the runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdavision.cfn import ApiRoute, AppTemplate, FunctionSpec, build_app, parse_parameter_overrides
from lambdavision.cfn import parse_template as parse_template_text
from lambdavision.core.errors import TemplateError
from lambdavision.local import report
from lambdavision.local.env_file import apply_env_file, parse_env_document
from lambdavision.local.lambda_env import lambda_environment
from lambdavision.local.runtime_api import PendingEvent, RuntimeApiCore

APP = Path("/apps/demo/template.yaml")

SAM_TEMPLATE = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  BucketName: {Type: String, Default: somebucket}
  ObjectKey: {Type: String, Default: somekey}
Globals:
  Function:
    Timeout: 30
    MemorySize: 1024
    Runtime: python3.12
    Environment:
      Variables: {SHARED: from-globals, MODEL_KEY: overridden-below}
  Api:
    BinaryMediaTypes: ["image~1png"]
Resources:
  PyTorchFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: pytorch/
      Handler: app.lambda_handler
      MemorySize: 3008
      Environment:
        Variables:
          MODEL_BUCKET: !Ref BucketName
          MODEL_KEY: !Ref ObjectKey
          MODEL_URI: !Sub "s3://${BucketName}/${ObjectKey}"
          REGION: !Ref AWS::Region
          ROLE: !GetAtt PyTorchFunctionRole.Arn
      Events:
        PyTorch:
          Type: Api
          Properties: {Path: /invocations, Method: post}
        Items:
          Type: Api
          Properties: {Path: "/items/{name}", Method: any}
        Schedule:
          Type: Schedule
          Properties: {Schedule: rate(1 hour)}
  Other:
    Type: AWS::Serverless::Function
    Properties:
      Handler: other.handler
"""

CFN_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  BucketName: {Type: String, Default: somebucket}
  Arch: {Type: String, Default: arm64}
Conditions:
  WantsDebug: !Equals [!Ref BucketName, debug-bucket]
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Code: function/
      Handler: app.handler
      Runtime: python3.13
      Timeout: 29
      Architectures: [!Ref Arch]
      Environment:
        Variables:
          MODEL_BUCKET: !Ref BucketName
          PATH_STYLE: !Join ["/", [models, !Select [1, [a, b, c]]]]
          DEBUG: !If [WantsDebug, "1", "0"]
          FLAG: true
          COUNT: 3
  DebugOnly:
    Type: AWS::Lambda::Function
    Condition: WantsDebug
    Properties: {Code: debug/, Handler: d.handler, Runtime: python3.12}
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: api, BinaryMediaTypes: ["image/*", "application/octet-stream"]}
  Invocations:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: invocations}
  Proxy:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !Ref Invocations, PathPart: "{proxy+}"}
  Post:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Invocations
      HttpMethod: POST
      Integration:
        Type: AWS_PROXY
        Uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations"
  ProxyAny:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Proxy
      HttpMethod: ANY
      Integration:
        Type: AWS_PROXY
        Uri: !Join
          - ""
          - ["arn:aws:apigateway:", !Ref "AWS::Region", ":lambda:path/functions/", !GetAtt [Fn, Arn], "/invocations"]
  RootGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !GetAtt Api.RootResourceId
      HttpMethod: GET
      Integration: {Type: AWS_PROXY, Uri: {"Fn::Sub": "arn:...:${Fn.Arn}/invocations"}}
  Options:
    Type: AWS::ApiGateway::Method
    Properties: {RestApiId: !Ref Api, ResourceId: !Ref Invocations, HttpMethod: OPTIONS, Integration: {Type: MOCK}}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {RestApiId: !Ref Api, StageName: Beta}
"""


def load(text: str, overrides: dict[str, str] | None = None) -> AppTemplate:
    return build_app(parse_template_text(text), APP, overrides)


# --- SAM ---


def test_sam_function_with_globals_parameters_and_intrinsics() -> None:
    app = load(SAM_TEMPLATE)
    assert app.functions["PyTorchFunction"] == FunctionSpec(
        logical_id="PyTorchFunction",
        handler="app.lambda_handler",
        code_dir=Path("/apps/demo/pytorch"),
        runtime="python3.12",
        memory_mb=3008,  # the function's own value beats Globals
        timeout_s=30,  # from Globals
        environment={
            "SHARED": "from-globals",
            "MODEL_KEY": "somekey",
            "MODEL_BUCKET": "somebucket",
            "MODEL_URI": "s3://somebucket/somekey",
            "REGION": "us-east-1",
            "ROLE": "",  # only a deployed stack knows it
        },
        architecture="x86_64",
    )


def test_sam_function_without_code_uri_uses_the_template_folder_and_defaults() -> None:
    other = load(SAM_TEMPLATE).functions["Other"]
    assert (other.code_dir, other.handler, other.memory_mb, other.timeout_s) == (
        Path("/apps/demo"),
        "other.handler",
        1024,
        30,
    )


def test_sam_api_events_become_routes_and_binary_types_are_decoded() -> None:
    app = load(SAM_TEMPLATE)
    assert app.routes == [
        ApiRoute("POST", "/invocations", "PyTorchFunction"),
        ApiRoute("ANY", "/items/{name}", "PyTorchFunction"),
    ]
    assert app.binary_media_types == ["image/png"]
    assert app.stage_name == "Prod"


def test_parameter_overrides_beat_defaults() -> None:
    spec = load(SAM_TEMPLATE, {"BucketName": "real-bucket"}).functions["PyTorchFunction"]
    assert spec.environment["MODEL_BUCKET"] == "real-bucket"
    assert spec.environment["MODEL_URI"] == "s3://real-bucket/somekey"


def test_unknown_parameter_override_is_refused() -> None:
    with pytest.raises(TemplateError, match="no parameter Bucket"):
        load(SAM_TEMPLATE, {"Bucket": "x"})


def test_explicit_sam_api_gives_its_stage_and_binary_types() -> None:
    text = """
Resources:
  MyApi:
    Type: AWS::Serverless::Api
    Properties: {StageName: v1, BinaryMediaTypes: ["application~1octet-stream"]}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Timeout: 5
      Events:
        Post: {Type: Api, Properties: {Path: /x, Method: POST, RestApiId: !Ref MyApi}}
"""
    app = load(text)
    assert (app.routes, app.binary_media_types, app.stage_name) == (
        [ApiRoute("POST", "/x", "Fn")],
        ["application/octet-stream"],
        "v1",
    )
    assert (app.functions["Fn"].memory_mb, app.functions["Fn"].runtime) == (128, "python3.12")


# --- plain CloudFormation ---


def test_cfn_function_properties_and_intrinsics() -> None:
    spec = load(CFN_TEMPLATE).functions["Fn"]
    assert spec == FunctionSpec(
        logical_id="Fn",
        handler="app.handler",
        code_dir=Path("/apps/demo/function"),
        runtime="python3.13",
        memory_mb=128,
        timeout_s=29,
        environment={
            "MODEL_BUCKET": "somebucket",
            "PATH_STYLE": "models/b",
            "DEBUG": "0",
            "FLAG": "true",
            "COUNT": "3",
        },
        architecture="arm64",
    )


def test_cfn_conditions_decide_resources_and_values() -> None:
    app = load(CFN_TEMPLATE, {"BucketName": "debug-bucket"})
    assert set(app.functions) == {"Fn", "DebugOnly"}
    assert app.functions["Fn"].environment["DEBUG"] == "1"
    assert set(load(CFN_TEMPLATE).functions) == {"Fn"}


def test_cfn_methods_with_proxy_integration_become_routes() -> None:
    app = load(CFN_TEMPLATE)
    assert app.routes == [
        ApiRoute("POST", "/invocations", "Fn"),
        ApiRoute("ANY", "/invocations/{proxy+}", "Fn"),
        ApiRoute("GET", "/", "Fn"),
    ]
    assert app.binary_media_types == ["image/*", "application/octet-stream"]
    assert app.stage_name == "Beta"


def test_json_template_is_read_too() -> None:
    document = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": "src", "Handler": "m.h", "Runtime": "python3.12", "MemorySize": "256"},
            }
        }
    }
    app = build_app(parse_template_text(json.dumps(document)), APP)
    assert (app.functions["Fn"].code_dir, app.functions["Fn"].memory_mb) == (Path("/apps/demo/src"), 256)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("{S3Bucket: b, S3Key: k.zip}", "s3://b/k.zip"),
        ("{ZipFile: 'def handler(e, c): pass'}", "inline"),
        ("s3://b/k.zip", "s3://b/k.zip"),
    ],
)
def test_code_that_cannot_run_locally_says_why(code: str, reason: str) -> None:
    text = f"Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties: {{Code: {code}, Handler: a.b}}\n"
    assert reason in load(text).functions["Fn"].unavailable_reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Resources: [", "not valid YAML"),
        ("- a list", "no mapping"),
        ("Parameters: {}", "no Resources"),
        ("Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties: {MemorySize: lots}", "MemorySize"),
    ],
)
def test_malformed_templates_get_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load(text)


# --- env.json and overrides ---


def test_env_file_sets_undeclared_variables_and_function_section_wins() -> None:
    spec = load(SAM_TEMPLATE).functions["PyTorchFunction"]
    env_file = parse_env_document(
        {
            "PyTorchFunction": {"MODEL_BUCKET": "envbucket", "ONLY_HERE": 1, "FROM_BOTH": "function"},
            "Parameters": {"FROM_BOTH": "parameters", "EVERYONE": True},
            "SomeoneElse": {"MODEL_KEY": "not mine"},
        }
    )
    environment = apply_env_file(spec, env_file).environment
    assert environment["MODEL_BUCKET"] == "envbucket"
    assert environment["MODEL_KEY"] == "somekey"
    assert (environment["ONLY_HERE"], environment["FROM_BOTH"], environment["EVERYONE"]) == ("1", "function", "true")


@pytest.mark.parametrize("document", [[], "x", {"Fn": "not an object"}, {"Fn": [1, 2]}])
def test_malformed_env_file_is_refused(document: object) -> None:
    with pytest.raises(TemplateError):
        parse_env_document(document)


def test_parameter_overrides_forms() -> None:
    assert parse_parameter_overrides(["A=1 B='two words'", "ParameterKey=C,ParameterValue=x=y", "D="]) == {
        "A": "1",
        "B": "two words",
        "C": "x=y",
        "D": "",
    }
    with pytest.raises(TemplateError):
        parse_parameter_overrides(["novalue"])


# --- the runtime's pure pieces ---


def spec_with(environment: dict[str, str]) -> FunctionSpec:
    return FunctionSpec("Fn", "app.handler", Path("/code"), "python3.12", 512, 3, environment)


def test_lambda_environment_layers() -> None:
    shell = {
        "AWS_ACCESS_KEY_ID": "AKIA-shell",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:5001",
        "LAMBDAVISION_TRACE": "1",
        "SECRET_OF_THE_SHELL": "never passed",
        "PYTHONPATH": "/elsewhere",
    }
    environment = lambda_environment(
        spec_with({"MODEL_BUCKET": "b", "AWS_ENDPOINT_URL": "http://from-env-json"}),
        runtime_api="127.0.0.1:4321",
        shell_env=shell,
        extra_env={"EXTRA": "x"},
    )
    assert "SECRET_OF_THE_SHELL" not in environment
    assert environment["PYTHONPATH"] == "/code"  # the shell's own PYTHONPATH stays out
    expected = {
        "AWS_ACCESS_KEY_ID": "AKIA-shell",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://from-env-json",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:5001",
        "LAMBDAVISION_TRACE": "1",
        "AWS_LAMBDA_FUNCTION_NAME": "Fn",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/Fn",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": "/code",
        "_HANDLER": "app.handler",
        "TZ": ":UTC",
        "MODEL_BUCKET": "b",
        "EXTRA": "x",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:4321",
    }
    assert {name: environment.get(name) for name in expected} == expected
    assert environment["AWS_LAMBDA_LOG_STREAM_NAME"].count("/[$LATEST]") == 1


def test_report_line_is_lambdas() -> None:
    assert report.report_line(
        "id-1", duration_ms=12.344, billed_duration_ms=13, memory_size_mb=2048, max_memory_used_mb=87
    ) == (
        "REPORT RequestId: id-1\tDuration: 12.34 ms\tBilled Duration: 13 ms"
        "\tMemory Size: 2048 MB\tMax Memory Used: 87 MB"
    )
    assert report.report_line(
        "id-2",
        duration_ms=1,
        billed_duration_ms=282,
        memory_size_mb=128,
        max_memory_used_mb=30,
        init_duration_ms=280.123,
    ).endswith("\tInit Duration: 280.12 ms")
    assert report.billed_ms(0.2, None) == 1
    assert report.billed_ms(12.01, 280.5) == 293


def test_timeout_and_exit_errors() -> None:
    timeout = json.loads(report.timeout_error("abc", 3))
    assert timeout["errorType"] == "Sandbox.Timedout"
    assert timeout["errorMessage"].endswith(" abc Task timed out after 3.00 seconds")
    assert report.describe_exit(3) == "exit status 3"
    assert report.describe_exit(-9) == "signal: killed"
    assert report.describe_exit(-11) == "signal: segmentation fault"


def test_runtime_api_core_hands_out_one_event_and_keeps_answers_per_request() -> None:
    now = [100.0]
    core = RuntimeApiCore(clock=lambda: now[0])
    core.submit(PendingEvent("r1", b"{}", 3000, "arn", "trace"))
    with pytest.raises(RuntimeError):
        core.submit(PendingEvent("r2", b"{}", 3000, "arn", "trace"))
    event = core.next_event(timeout=0)
    assert event is not None and event.request_id == "r1"
    assert core.first_next_at == 100.0 and core.picked_up_at("r1") == 100.0
    core.post("response", "someone-else", b"x", 1, None)  # not running here: ignored
    assert core.outcome("r1") is None
    now[0] = 100.5
    core.post("response", "r1", b'{"ok": true}', 12, None)
    outcome = core.outcome("r1")
    assert outcome is not None and (outcome.kind, outcome.body, outcome.at) == ("response", b'{"ok": true}', 100.5)
    core.close()
    assert core.next_event() is None


def test_snapstart_routes_reach_the_function_behind_the_alias(tmp_path: Path) -> None:
    """With SnapStart the API integrates with the alias `live`; locally that is the function itself."""
    from lambdavision.aws.appdir import AppOptions, app_files, write_app_dir
    from lambdavision.aws.template import TemplateOptions

    write_app_dir(tmp_path, app_files(AppOptions(template=TemplateOptions(snapstart=True))), force=False)
    from lambdavision.cfn import load_app as load_template

    routes = load_template(tmp_path / "template.yaml").routes
    assert {(r.method, r.path, r.function_id) for r in routes} == {
        ("POST", "/invocations", "PyTorchFunction"),
        ("GET", "/", "PyTorchFunction"),
    }
