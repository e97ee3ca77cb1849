"""The application's CloudFormation template as a pure function of its options.

`build_template(TemplateOptions(...))` returns the template as a dict; `dump_template` writes it
as YAML with CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`); `load_template` reads YAML
or JSON templates back, short tags included. Nothing here touches AWS or the file system.

The template is plain CloudFormation with explicit resources rather than SAM, because moto (the
AWS stand-in the tests use) does not run the SAM transform, ignores an OpenAPI `Body` and has no
`AWS::ApiGateway::Stage`; plain CloudFormation deploys the same way on AWS, `sam deploy` and moto.
The names are the guide's, so its commands work unchanged: parameters `BucketName`/`ObjectKey`,
function `PyTorchFunction`, `POST /invocations` on stage `Prod`, outputs `PyTorchApi`,
`PyTorchFunction`, `PyTorchFunctionIamRole`.

API routes are data (`Route`), so a later page (`GET /`), CORS or authorisation option adds
routes or method properties without reshaping the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from lambdavision.core.errors import LambdaVisionError

FUNCTION_ID = "PyTorchFunction"
ROLE_ID = "PyTorchFunctionRole"
LOG_GROUP_ID = "PyTorchFunctionLogGroup"
API_ID = "RestApi"
VERSION_ID = "PyTorchFunctionVersion"
ALIAS_ID = "PyTorchFunctionAliaslive"
ALIAS_NAME = "live"
STAGE_NAME = "Prod"

DEFAULT_RUNTIME = "python3.12"
# onnxruntime's manylinux_2_28 wheels need glibc 2.28: only the Amazon Linux 2023 runtimes have it.
SUPPORTED_RUNTIMES = ("python3.12", "python3.13", "python3.14")
ARCHITECTURES = ("x86_64", "arm64")
# The values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
BINARY_MEDIA_TYPES = ("image/*", "application/octet-stream")


class TemplateOptionError(LambdaVisionError):
    """An option the template cannot be built with; the message says which values work."""

    status = 400


@dataclass(frozen=True)
class Route:
    """One API Gateway method that proxies to the function (`POST /invocations`)."""

    method: str
    path: str


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

    def validate(self) -> None:
        """Raise TemplateOptionError naming the first option Lambda or CloudFormation would refuse."""
        if self.runtime not in SUPPORTED_RUNTIMES:
            why = ""
            if re.fullmatch(r"python3\.([0-9]|1[01])", self.runtime):
                why = (
                    f" ({self.runtime} runs on Amazon Linux 2, whose glibc 2.26 cannot load "
                    "onnxruntime's manylinux_2_28 wheels)"
                )
            raise TemplateOptionError(
                f"runtime {self.runtime!r} is not supported{why}: use one of {', '.join(SUPPORTED_RUNTIMES)}"
            )
        if self.architecture not in ARCHITECTURES:
            raise TemplateOptionError(f"architecture {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
        if not 128 <= self.memory <= 10240:
            raise TemplateOptionError(f"memory {self.memory} MB is outside Lambda's 128..10240 MB")
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
            _check_route(route)
        if len({(r.method.upper(), r.path) for r in self.routes}) != len(self.routes):
            raise TemplateOptionError("the same method and path appear twice in the API routes")
        if not self.bucket_name or not self.object_key:
            raise TemplateOptionError("the model's bucket and key must not be empty")


def build_template(options: TemplateOptions) -> dict[str, Any]:
    """The whole template for `options` (validated first)."""
    options.validate()
    # With SnapStart, API Gateway calls the alias: a published version, snapshotted after init.
    target = _ref(ALIAS_ID) if options.snapstart else _ref(FUNCTION_ID)
    target_arn_sub = f"${{{ALIAS_ID}}}" if options.snapstart else f"${{{FUNCTION_ID}.Arn}}"

    resources: dict[str, Any] = {
        ROLE_ID: _role(),
        FUNCTION_ID: _function(options),
        LOG_GROUP_ID: _log_group(options),
    }
    if options.snapstart:
        resources[VERSION_ID] = {
            "Type": "AWS::Lambda::Version",
            "Properties": {"FunctionName": _ref(FUNCTION_ID)},
        }
        resources[ALIAS_ID] = {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": _ref(FUNCTION_ID),
                "FunctionVersion": {"Fn::GetAtt": [VERSION_ID, "Version"]},
                "Name": ALIAS_NAME,
            },
        }
    resources.update(_api(options, target, target_arn_sub))

    first_route = options.routes[0]
    return {
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
        "Outputs": {
            "PyTorchApi": {
                "Description": f"API Gateway endpoint URL for the {STAGE_NAME} stage",
                "Value": {
                    "Fn::Sub": f"https://${{{API_ID}}}.execute-api.${{AWS::Region}}.amazonaws.com/"
                    f"{STAGE_NAME}{_url_path(first_route.path)}"
                },
            },
            "PyTorchFunction": {
                "Description": "Lambda function ARN",
                "Value": {"Fn::GetAtt": [FUNCTION_ID, "Arn"]},
            },
            "PyTorchFunctionIamRole": {
                "Description": "IAM role of the function",
                "Value": {"Fn::GetAtt": [ROLE_ID, "Arn"]},
            },
        },
    }


# --- resources ----------------------------------------------------------------------------------


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
        "Environment": {"Variables": {"MODEL_BUCKET": _ref("BucketName"), "MODEL_KEY": _ref("ObjectKey")}},
    }
    if options.snapstart:
        properties["SnapStart"] = {"ApplyOn": "PublishedVersions"}
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


def _api(options: TemplateOptions, target: dict[str, Any], target_arn_sub: str) -> dict[str, Any]:
    """RestApi + one Resource per path segment + one Method per route + Deployment + Permissions."""
    api: dict[str, Any] = {
        API_ID: {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "Name": {"Fn::Sub": "${AWS::StackName}"},
                "Description": "lambdavision image classifier API",
                "BinaryMediaTypes": list(options.binary_media_types),
            },
        }
    }
    path_resources: dict[str, str] = {}  # path -> logical id of its AWS::ApiGateway::Resource
    for route in options.routes:
        parent: dict[str, Any] = {"Fn::GetAtt": [API_ID, "RootResourceId"]}
        prefix = ""
        for segment in _segments(route.path):
            prefix = f"{prefix}/{segment}"
            if prefix not in path_resources:
                logical_id = f"{_path_id(prefix)}Resource"
                path_resources[prefix] = logical_id
                api[logical_id] = {
                    "Type": "AWS::ApiGateway::Resource",
                    "Properties": {"RestApiId": _ref(API_ID), "ParentId": parent, "PathPart": segment},
                }
            parent = _ref(path_resources[prefix])
        api[_method_id(route)] = _method(route, parent, target_arn_sub)

    method_ids = [_method_id(route) for route in options.routes]
    # CloudFormation deploys an API only when the Deployment resource is new, so its logical id
    # carries a hash of the routes (as SAM does): changing them makes a new deployment.
    digest = hashlib.sha256(
        json.dumps({k: v for k, v in api.items() if k != API_ID}, sort_keys=True).encode()
    ).hexdigest()[:10]
    api[f"ApiDeployment{digest}"] = {
        "Type": "AWS::ApiGateway::Deployment",
        "DependsOn": method_ids,
        "Properties": {"RestApiId": _ref(API_ID), "StageName": STAGE_NAME},
    }
    for route in options.routes:
        api[f"{_method_id(route)}Permission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": target,
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                    f"${{{API_ID}}}/*/{route.method.upper()}{_arn_path(route.path)}"
                },
            },
        }
    return api


def _method(route: Route, resource_id: dict[str, Any], target_arn_sub: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "RestApiId": _ref(API_ID),
            "ResourceId": resource_id,
            "HttpMethod": route.method.upper(),
            "AuthorizationType": "NONE",
            "Integration": {
                "Type": "AWS_PROXY",
                # Lambda proxy integrations are always called with POST, whatever the route's method.
                "IntegrationHttpMethod": "POST",
                "Uri": {
                    "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/"
                    f"functions/{target_arn_sub}/invocations"
                },
            },
        },
    }


_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+|\{[A-Za-z0-9_]+\+?\}")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")


def _check_route(route: Route) -> None:
    if route.method.upper() not in _METHODS:
        raise TemplateOptionError(f"route method {route.method!r} is not one of {', '.join(_METHODS)}")
    if not route.path.startswith("/"):
        raise TemplateOptionError(f"route path {route.path!r} must start with /")
    for segment in _segments(route.path):
        if not _SEGMENT.fullmatch(segment):
            raise TemplateOptionError(f"route path {route.path!r} has an invalid segment {segment!r}")


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _path_id(path: str) -> str:
    """`/invocations` -> `Invocations`; `/items/{id}` -> `ItemsId`; `/` -> `Root`."""
    words = re.findall(r"[A-Za-z0-9]+", path)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Root"


def _method_id(route: Route) -> str:
    return f"{_path_id(route.path)}{route.method.capitalize()}Method"


def _url_path(path: str) -> str:
    return path if path.endswith("/") else f"{path}/"


def _arn_path(path: str) -> str:
    # Path parameters are wildcards in an execute-api ARN.
    return re.sub(r"\{[^}]+\}", "*", path.rstrip("/")) if path != "/" else "/"


def _ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


# --- YAML with CloudFormation tags --------------------------------------------------------------


class _TemplateDumper(yaml.SafeDumper):
    """Block-style YAML; intrinsic functions as short tags; no key sorting; no anchors/aliases
    (CloudFormation rejects them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    if len(data) == 1:
        ((key, value),) = data.items()
        if key == "Ref":
            return dumper.represent_scalar("!Ref", value)
        if key == "Fn::GetAtt" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return dumper.represent_scalar("!GetAtt", ".".join(value))
        if key.startswith("Fn::") and key != "Fn::Transform":
            tag = "!" + key[len("Fn::") :]
            if isinstance(value, list):
                return dumper.represent_sequence(tag, value)
            if isinstance(value, dict):
                return dumper.represent_mapping(tag, value)
            return dumper.represent_scalar(tag, str(value))
    return dumper.represent_dict(data.items())


_TemplateDumper.add_representer(dict, _represent_dict)


def dump_template(template: dict[str, Any]) -> str:
    """The template as YAML, short tags and all, in the dict's own order."""
    text: str = yaml.dump(template, Dumper=_TemplateDumper, sort_keys=False, default_flow_style=False, width=1000)
    return text


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags, read into their long JSON forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_tag)


def _json_safe_timestamps(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    # `Version: 2012-10-17` unquoted is a policy version string, not a date.
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", _json_safe_timestamps)


def load_template(text: str, *, source: str = "template") -> dict[str, Any]:
    """Parse a JSON or YAML CloudFormation template; a malformed one raises TemplateOptionError."""
    try:
        data = yaml.load(text, Loader=_TemplateLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TemplateOptionError(f"{source}: not a valid YAML or JSON template ({exc})".replace("\n", " ")) from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateOptionError(f"{source}: not a CloudFormation template (no Resources mapping)")
    return data


__all__ = [
    "BINARY_MEDIA_TYPES",
    "DEFAULT_RUNTIME",
    "FUNCTION_ID",
    "STAGE_NAME",
    "SUPPORTED_RUNTIMES",
    "Route",
    "TemplateOptionError",
    "TemplateOptions",
    "build_template",
    "dump_template",
    "load_template",
]
