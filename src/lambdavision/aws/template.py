"""The application's CloudFormation template as a pure function of its options.

`build_template(TemplateOptions(...))` returns the template as a dict; `lambdavision.cfn` writes and reads
it as YAML. SnapStart and CORS are applied with the edits `deploy` shares (`template_edits`), the
API's routes with `api_resources`; the ids and accepted values live in `template_names`. Nothing
here touches AWS or the file system.

The template is plain CloudFormation with explicit resources rather than SAM, because moto (the
AWS stand-in the tests use) does not run the SAM transform, ignores an OpenAPI `Body` and has no
`AWS::ApiGateway::Stage`; plain CloudFormation deploys the same way on AWS, `sam deploy` and moto.
The names are the guide's, so its commands work unchanged: parameters `BucketName`/`ObjectKey`,
function `PyTorchFunction`, `POST /invocations` on stage `Prod`, outputs `PyTorchApi`,
`PyTorchFunction`, `PyTorchFunctionIamRole`.

API routes are data (`Route`): the page (`GET /` on the API's root resource), CORS preflights
(`OPTIONS`, proxied to the function, which answers them) and authorisation (IAM or an API key
with a usage plan) are routes or method properties added without reshaping the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdavision.aws.api_resources import Target, add_route, renew_deployment
from lambdavision.aws.snapstart import enable_snapstart, stamp_version
from lambdavision.aws.template_edits import enable_cors
from lambdavision.aws.template_names import (
    API_ID,
    API_KEY_ID,
    AUTH_MODES,
    BINARY_MEDIA_TYPES,
    CORS_ENV,
    DEFAULT_RUNTIME,
    FUNCTION_ID,
    LOG_GROUP_ID,
    LOG_RETENTION_DAYS,
    PAGE_ENV,
    ROLE_ID,
    STAGE_NAME,
    USAGE_PLAN_ID,
    USAGE_PLAN_KEY_ID,
    Route,
    check_architecture,
    check_memory,
    check_origin,
    check_route,
    check_runtime,
    ref,
)
from lambdavision.core.errors import TemplateOptionError


@dataclass(frozen=True)
class TemplateOptions:
    """Everything the template depends on. Defaults are the guide's app, modernised."""

    runtime: str = DEFAULT_RUNTIME
    memory: int = 2048
    # API Gateway REST's integration timeout is 29 s: a longer function timeout only keeps a
    # function running after its caller has been given a 504.
    timeout: int = 29
    architecture: str = "x86_64"
    snapstart: bool = False
    log_retention_days: int = 14
    code_uri: str = "function/"
    handler: str = "app.lambda_handler"
    bucket_name: str = "my-bucket"
    object_key: str = "fastai-models/lesson1/model.tar.gz"
    routes: tuple[Route, ...] = (Route("POST", "/invocations"),)
    binary_media_types: tuple[str, ...] = BINARY_MEDIA_TYPES
    # The upload page at GET / (served by the same function); off: LAMBDAVISION_PAGE=0.
    page: bool = True
    # With auth "key": the page itself needs no key (a browser cannot send one when it opens a URL);
    # it asks for the key and sends it with each request. The API's other methods still need it.
    open_page: bool = False
    # An origin allowed to call the API from another site: OPTIONS preflights + CORS headers.
    cors_origin: str | None = None
    # none: public; iam: SigV4-signed callers with execute-api:Invoke; key: x-api-key + usage plan.
    auth: str = "none"
    # The usage plan of --auth key: steady requests per second, burst, and requests per day.
    rate_limit: float = 10.0
    burst_limit: int = 20
    daily_quota: int = 10_000

    def api_routes(self) -> tuple[Route, ...]:
        """The routes the API serves: the given ones, the page, and a preflight per path with CORS."""
        routes = list(self.routes)
        if self.page and not any(r.method.upper() == "GET" and r.path == "/" for r in routes):
            routes.append(Route("GET", "/"))
        if self.cors_origin:
            for path in dict.fromkeys(r.path for r in routes):
                if not any(r.method.upper() == "OPTIONS" and r.path == path for r in routes):
                    routes.append(Route("OPTIONS", path))
        return tuple(routes)

    def validate(self) -> None:
        """Raise TemplateOptionError naming the first option Lambda or CloudFormation would refuse."""
        check_runtime(self.runtime)
        check_architecture(self.architecture)
        check_memory(self.memory)
        if not 1 <= self.timeout <= 900:
            raise TemplateOptionError(f"timeout {self.timeout} s is outside Lambda's 1..900 s")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise TemplateOptionError(
                f"log retention {self.log_retention_days} days is not a CloudWatch value: use one of "
                + ", ".join(map(str, LOG_RETENTION_DAYS))
            )
        if not self.routes:
            raise TemplateOptionError("the API needs at least one route")
        for route in self.routes:
            check_route(route)
        if len({(r.method.upper(), r.path) for r in self.routes}) != len(self.routes):
            raise TemplateOptionError("the same method and path appear twice in the API routes")
        if self.open_page and not (self.page and self.auth == "key"):
            raise TemplateOptionError("an open page is for --auth key with the page (GET /) on")
        if not self.bucket_name or not self.object_key:
            raise TemplateOptionError("the model's bucket and key must not be empty")
        if self.cors_origin is not None:
            check_origin(self.cors_origin)
        if self.auth not in AUTH_MODES:
            raise TemplateOptionError(f"auth {self.auth!r} is not one of {', '.join(AUTH_MODES)}")
        if not (self.rate_limit > 0 and self.burst_limit >= 1 and self.daily_quota >= 1):
            raise TemplateOptionError("the usage plan's rate limit, burst limit and daily quota must be positive")


def build_template(options: TemplateOptions) -> dict[str, Any]:
    """The whole template for `options` (validated first)."""
    options.validate()
    resources: dict[str, Any] = {
        ROLE_ID: _role(),
        FUNCTION_ID: _function(options),
        LOG_GROUP_ID: _log_group(options),
        API_ID: _rest_api(options),
    }
    target = Target.function()
    for route in options.routes:
        add_route(resources, route, target, options.auth)
    if options.page and not any(r.method.upper() == "GET" and r.path == "/" for r in options.routes):
        add_route(resources, Route("GET", "/"), target, "none" if options.open_page else options.auth)
    if options.cors_origin:
        enable_cors(resources, options.cors_origin)
    deployment_id = renew_deployment(resources)
    outputs: dict[str, Any] = {
        "PyTorchApi": {
            "Description": f"API Gateway endpoint URL for the {STAGE_NAME} stage",
            "Value": _stage_url(options.routes[0].path),
        },
    }
    if options.page:
        outputs["PyTorchPage"] = {"Description": "The upload page (GET /)", "Value": _stage_url("/")}
    outputs["PyTorchFunction"] = {"Description": "Lambda function ARN", "Value": {"Fn::GetAtt": [FUNCTION_ID, "Arn"]}}
    outputs["PyTorchFunctionIamRole"] = {
        "Description": "IAM role of the function",
        "Value": {"Fn::GetAtt": [ROLE_ID, "Arn"]},
    }
    if options.auth == "key":
        resources.update(_usage_plan(options, deployment_id))
        outputs["PyTorchApiKeyId"] = {
            # The id, never the value: outputs are readable by anyone who can describe the stack.
            "Description": "API key id; its value: aws apigateway get-api-key --include-value --api-key ID",
            "Value": ref(API_KEY_ID),
        }
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "lambdavision: an image classifier served by ONNX Runtime on AWS Lambda behind API Gateway",
        "Parameters": {
            "BucketName": {
                "Type": "String",
                "Default": options.bucket_name,
                "Description": "S3 bucket holding the model artifact (model.tar.gz)",
            },
            "ObjectKey": {
                "Type": "String",
                "Default": options.object_key,
                "Description": "S3 key of the model artifact",
            },
        },
        "Resources": resources,
        "Outputs": outputs,
    }
    if options.snapstart:
        enable_snapstart(template)
        stamp_version(template, {})
    return template


def _role() -> dict[str, Any]:
    # Inline policies only (moto drops ManagedPolicyArns, so they could not be checked there):
    # writing to Lambda log groups, and reading the one model object, not the bucket.
    log_groups = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/*"
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "WriteLogs",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": {"Fn::Sub": log_groups},
                            }
                        ],
                    },
                },
                {
                    "PolicyName": "ReadModelArtifact",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "s3:GetObject",
                                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}/${ObjectKey}"},
                            }
                        ],
                    },
                },
            ],
        },
    }


def _function(options: TemplateOptions) -> dict[str, Any]:
    variables: dict[str, Any] = {"MODEL_BUCKET": ref("BucketName"), "MODEL_KEY": ref("ObjectKey")}
    if not options.page:
        variables[PAGE_ENV] = "0"
    if options.cors_origin:
        variables[CORS_ENV] = options.cors_origin
    properties: dict[str, Any] = {
        "Description": "lambdavision image classifier (ONNX Runtime)",
        # A local folder until `lambdavision package` uploads it and rewrites this to S3.
        "Code": options.code_uri,
        "Handler": options.handler,
        "Runtime": options.runtime,
        "Architectures": [options.architecture],
        "MemorySize": options.memory,
        "Timeout": options.timeout,
        "Role": {"Fn::GetAtt": [ROLE_ID, "Arn"]},
        "Environment": {"Variables": variables},
    }
    return {
        "Type": "AWS::Lambda::Function",
        # W3002: a local Code path is the `package` convention, not a mistake.
        "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W3002"]}}},
        "Properties": properties,
    }


def _log_group(options: TemplateOptions) -> dict[str, Any]:
    # Declared so the retention applies and `delete` removes the logs with the stack.
    return {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{FUNCTION_ID}}}"},
            "RetentionInDays": options.log_retention_days,
        },
    }


def _rest_api(options: TemplateOptions) -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGateway::RestApi",
        "Properties": {
            "Name": {"Fn::Sub": "${AWS::StackName}"},
            "Description": "lambdavision image classifier API",
            "BinaryMediaTypes": list(options.binary_media_types),
        },
    }


def _usage_plan(options: TemplateOptions, deployment_id: str) -> dict[str, Any]:
    """API key + usage plan (throttle, daily quota) on the stage + the key's place in the plan."""
    return {
        API_KEY_ID: {
            "Type": "AWS::ApiGateway::ApiKey",
            "Properties": {
                "Name": {"Fn::Sub": "${AWS::StackName}-key"},
                "Description": "lambdavision API key: callers send it as the x-api-key header",
                "Enabled": True,
            },
        },
        USAGE_PLAN_ID: {
            "Type": "AWS::ApiGateway::UsagePlan",
            # The stage exists once the Deployment that names it does.
            "DependsOn": deployment_id,
            "Properties": {
                "UsagePlanName": {"Fn::Sub": "${AWS::StackName}-plan"},
                "Description": "Throttle and daily quota for the lambdavision API key",
                "ApiStages": [{"ApiId": ref(API_ID), "Stage": STAGE_NAME}],
                "Throttle": {"RateLimit": options.rate_limit, "BurstLimit": options.burst_limit},
                "Quota": {"Limit": options.daily_quota, "Period": "DAY"},
            },
        },
        USAGE_PLAN_KEY_ID: {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {"KeyId": ref(API_KEY_ID), "KeyType": "API_KEY", "UsagePlanId": ref(USAGE_PLAN_ID)},
        },
    }


def _stage_url(path: str) -> dict[str, Any]:
    return {
        "Fn::Sub": f"https://${{{API_ID}}}.execute-api.${{AWS::Region}}.amazonaws.com/{STAGE_NAME}{_url_path(path)}"
    }


def _url_path(path: str) -> str:
    return path if path.endswith("/") else f"{path}/"


__all__ = [
    "TemplateOptions",
    "build_template",
]
