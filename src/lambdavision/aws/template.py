"""The application's CloudFormation template as a pure function of its options.

`build_template(TemplateOptions(...))` returns the template as a dict; `dump_template` writes it
as YAML with CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`); `load_template` reads YAML
or JSON templates back, short tags included. `apply_overrides` edits a (packaged) template for
`deploy --memory/--arch/--snapstart/--cors-origin` with the same building blocks the builder uses,
and `stamp_version` names the SnapStart version after what it publishes. Nothing here touches AWS
or the file system.

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

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from lambdavision.core.errors import LambdaVisionError

FUNCTION_ID = "PyTorchFunction"
ROLE_ID = "PyTorchFunctionRole"
LOG_GROUP_ID = "PyTorchFunctionLogGroup"
API_ID = "RestApi"
# The version's logical id ends with a hash of what it publishes (see `stamp_version`).
VERSION_PREFIX = "PyTorchFunctionVersion"
ALIAS_ID = "PyTorchFunctionAliaslive"
ALIAS_NAME = "live"
STAGE_NAME = "Prod"
API_KEY_ID = "PyTorchApiKey"
USAGE_PLAN_ID = "PyTorchUsagePlan"
USAGE_PLAN_KEY_ID = "PyTorchUsagePlanKey"
PAGE_ENV = "LAMBDAVISION_PAGE"
CORS_ENV = "LAMBDAVISION_CORS_ORIGIN"

DEFAULT_RUNTIME = "python3.12"
# onnxruntime's manylinux_2_28 wheels need glibc 2.28: only the Amazon Linux 2023 runtimes have it.
# SnapStart for Python also starts at python3.12.
SUPPORTED_RUNTIMES = ("python3.12", "python3.13", "python3.14")
ARCHITECTURES = ("x86_64", "arm64")
AUTH_MODES = ("none", "iam", "key")
# The values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
BINARY_MEDIA_TYPES = ("image/*", "application/octet-stream")

_FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
_LAYER = "AWS::Lambda::LayerVersion"
_ORIGIN = re.compile(r"\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


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
    # The upload page at GET / (served by the same function); off: LAMBDAVISION_PAGE=0.
    page: bool = True
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
        _check_runtime(self.runtime)
        _check_architecture(self.architecture)
        _check_memory(self.memory)
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
        if self.cors_origin is not None:
            check_origin(self.cors_origin)
        if self.auth not in AUTH_MODES:
            raise TemplateOptionError(f"auth {self.auth!r} is not one of {', '.join(AUTH_MODES)}")
        if not (self.rate_limit > 0 and self.burst_limit >= 1 and self.daily_quota >= 1):
            raise TemplateOptionError("the usage plan's rate limit, burst limit and daily quota must be positive")


def check_origin(origin: str) -> None:
    """An Access-Control-Allow-Origin value: `*` or `scheme://host[:port]`, nothing more."""
    if not _ORIGIN.fullmatch(origin):
        raise TemplateOptionError(
            f"CORS origin {origin!r} is not an origin: use scheme://host[:port] "
            "(e.g. https://example.org, no path or trailing slash) or *"
        )


def build_template(options: TemplateOptions) -> dict[str, Any]:
    """The whole template for `options` (validated first)."""
    options.validate()
    resources: dict[str, Any] = {
        ROLE_ID: _role(),
        FUNCTION_ID: _function(options),
        LOG_GROUP_ID: _log_group(options),
        API_ID: _rest_api(options),
    }
    target = _Target.function()
    for route in options.routes:
        _add_route(resources, route, target, options.auth)
    if options.page and not any(r.method.upper() == "GET" and r.path == "/" for r in options.routes):
        _add_route(resources, Route("GET", "/"), target, options.auth)
    if options.cors_origin:
        _enable_cors(resources, options.cors_origin)
    deployment_id = _renew_deployment(resources)
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
            "Value": _ref(API_KEY_ID),
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
        _enable_snapstart(template)
        stamp_version(template, {})
    return template


# --- deploy-time overrides ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeployOverrides:
    """What `deploy` may change in a packaged template; None leaves a setting as it is."""

    memory: int | None = None
    architecture: str | None = None
    snapstart: bool | None = None
    cors_origin: str | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.memory, self.architecture, self.snapstart, self.cors_origin))


def apply_overrides(
    template: Mapping[str, Any], overrides: DeployOverrides, *, source: str = "template"
) -> dict[str, Any]:
    """A copy of `template` with `overrides` applied to its function (and API, for CORS).

    The architecture cannot change here: the packaged zip holds native libraries built for the
    template's architecture, so a different one is refused with what to run instead.
    """
    out = copy.deepcopy(dict(template))
    if not overrides.any():
        return out
    resources: dict[str, Any] = out.get("Resources") or {}
    function_id = _function_id(resources, source)
    function = resources[function_id]
    properties = function.setdefault("Properties", {})
    sam = function.get("Type") == "AWS::Serverless::Function"
    if overrides.architecture is not None:
        _check_architecture(overrides.architecture)
        packaged = properties.get("Architectures", ["x86_64"])
        if packaged != [overrides.architecture]:
            raise TemplateOptionError(
                f"{source} was packaged for {_arch_text(packaged)}, not {overrides.architecture}: its zip holds "
                f"native libraries for that architecture; run `lambdavision init --arch {overrides.architecture}` "
                f"(or edit Architectures in template.yaml) and `lambdavision package` again"
            )
    if overrides.memory is not None:
        _check_memory(overrides.memory)
        properties["MemorySize"] = overrides.memory
    if overrides.cors_origin is not None:
        check_origin(overrides.cors_origin)
        if sam or function_id != FUNCTION_ID or API_ID not in resources:
            raise TemplateOptionError(
                f"deploy --cors-origin edits templates made by `lambdavision init`; {source} has no "
                f"{FUNCTION_ID} behind a {API_ID}: use `lambdavision init --cors-origin` or set CORS in the template"
            )
        _enable_cors(resources, overrides.cors_origin)
    if overrides.snapstart is not None:
        runtime = properties.get("Runtime")
        if overrides.snapstart and runtime not in SUPPORTED_RUNTIMES:
            raise TemplateOptionError(f"SnapStart for Python needs python3.12 or later; {function_id} runs {runtime!r}")
        if sam:
            _sam_snapstart(properties, overrides.snapstart)
        elif function_id != FUNCTION_ID:
            raise TemplateOptionError(
                f"deploy --snapstart edits templates made by `lambdavision init`; {source} has no {FUNCTION_ID}"
            )
        elif overrides.snapstart:
            _enable_snapstart(out)
        else:
            _disable_snapstart(out)
    return out


def stamp_version(template: dict[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """Name the SnapStart version resource after the function's properties and parameter values.

    An `AWS::Lambda::Version` is immutable: CloudFormation publishes a new version only when the
    resource is new. With its logical id carrying a hash of the code location, settings and the
    parameters they use (SAM's AutoPublishAlias does the same), a new zip or a new ObjectKey
    publishes a new version and moves the alias; an unchanged deploy publishes nothing.
    `parameters` are the values the stack will have; missing ones count as their defaults.
    Edits `template` in place and returns it; a template without the version is left as it is.
    """
    resources: dict[str, Any] = template.get("Resources") or {}
    version_ids = [k for k, v in resources.items() if _is_our_version(v)]
    if not version_ids:
        return template
    declared = template.get("Parameters") or {}
    values = {name: str(parameters.get(name, (spec or {}).get("Default", ""))) for name, spec in declared.items()}
    published = {
        "function": resources[FUNCTION_ID].get("Properties", {}),
        # A version pins its layers' versions: new dependencies (`package --layer`) publish too.
        "layers": {k: v for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == _LAYER},
        "parameters": values,
    }
    digest = hashlib.sha256(json.dumps(published, sort_keys=True, default=str).encode()).hexdigest()[:10]
    new_id = f"{VERSION_PREFIX}{digest}"
    _replace(resources, version_ids[0], new_id, resources[version_ids[0]])
    for extra in version_ids[1:]:
        _replace(resources, extra, None, None)
    alias = resources.get(ALIAS_ID)
    if isinstance(alias, dict):
        alias.setdefault("Properties", {})["FunctionVersion"] = {"Fn::GetAtt": [new_id, "Version"]}
    return template


def has_version(template: Mapping[str, Any]) -> bool:
    """Whether the template publishes a SnapStart version of our function (see `stamp_version`)."""
    return any(_is_our_version(v) for v in (template.get("Resources") or {}).values())


def _function_id(resources: Mapping[str, Any], source: str) -> str:
    if isinstance(resources.get(FUNCTION_ID), dict) and resources[FUNCTION_ID].get("Type") in _FUNCTION_TYPES:
        return FUNCTION_ID
    functions = [k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") in _FUNCTION_TYPES]
    if len(functions) != 1:
        found = ", ".join(functions) or "none"
        raise TemplateOptionError(
            f"deploy's --memory/--arch/--snapstart/--cors-origin need one Lambda function in {source} (found: {found})"
        )
    return functions[0]


def _arch_text(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return repr(value)


def _sam_snapstart(properties: dict[str, Any], on: bool) -> None:
    # SAM publishes the version and points the API's events at the alias itself.
    if on:
        properties["SnapStart"] = {"ApplyOn": "PublishedVersions"}
        properties["AutoPublishAlias"] = ALIAS_NAME
    else:
        properties.pop("SnapStart", None)
        properties.pop("AutoPublishAlias", None)


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
    variables: dict[str, Any] = {"MODEL_BUCKET": _ref("BucketName"), "MODEL_KEY": _ref("ObjectKey")}
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


@dataclass(frozen=True)
class _Target:
    """What API Gateway calls: the function, or (SnapStart) the alias of its published version."""

    ref: dict[str, Any]  # the Permission's FunctionName
    arn_sub: str  # the ARN inside the integration URI's Fn::Sub

    @staticmethod
    def function() -> _Target:
        return _Target(_ref(FUNCTION_ID), f"${{{FUNCTION_ID}.Arn}}")

    @staticmethod
    def alias() -> _Target:
        return _Target(_ref(ALIAS_ID), f"${{{ALIAS_ID}}}")


def _add_route(resources: dict[str, Any], route: Route, target: _Target, auth: str) -> None:
    """The path's Resources (reusing existing ones), the Method and its invoke Permission."""
    parent = _root()
    prefix = ""
    for segment in _segments(route.path):
        prefix = f"{prefix}/{segment}"
        existing = _child_resource(resources, parent, segment)
        if existing is None:
            existing = f"{_path_id(prefix)}Resource"
            resources[existing] = {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {"RestApiId": _ref(API_ID), "ParentId": parent, "PathPart": segment},
            }
        parent = _ref(existing)
    method_id = _method_id(route)
    resources[method_id] = _method(route, parent, target, auth)
    resources[f"{method_id}Permission"] = _permission(route, target)


def _child_resource(resources: Mapping[str, Any], parent: Any, segment: str) -> str | None:
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::ApiGateway::Resource":
            properties = resource.get("Properties") or {}
            if properties.get("ParentId") == parent and properties.get("PathPart") == segment:
                return logical_id
    return None


def _method(route: Route, resource_id: Any, target: _Target, auth: str) -> dict[str, Any]:
    # A CORS preflight carries no credentials by design: it must stay open whatever the auth.
    guarded = route.method.upper() != "OPTIONS"
    properties: dict[str, Any] = {
        "RestApiId": _ref(API_ID),
        "ResourceId": resource_id,
        "HttpMethod": route.method.upper(),
        "AuthorizationType": "AWS_IAM" if guarded and auth == "iam" else "NONE",
    }
    if guarded and auth == "key":
        properties["ApiKeyRequired"] = True
    properties["Integration"] = {
        "Type": "AWS_PROXY",
        # Lambda proxy integrations are always called with POST, whatever the route's method.
        "IntegrationHttpMethod": "POST",
        "Uri": {
            "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/"
            f"functions/{target.arn_sub}/invocations"
        },
    }
    return {"Type": "AWS::ApiGateway::Method", "Properties": properties}


def _permission(route: Route, target: _Target) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": target.ref,
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                f"${{{API_ID}}}/*/{route.method.upper()}{_arn_path(route.path)}"
            },
        },
    }


def _renew_deployment(resources: dict[str, Any]) -> str:
    """(Re)name the API's Deployment after its RestApi, Resources and Methods; returns its id.

    CloudFormation deploys an API only when the Deployment resource is new, so its logical id
    carries a hash of what it deploys (as SAM does): changing the routes makes a new deployment.
    The Deployment names the stage (moto has no AWS::ApiGateway::Stage) and depends on every
    method (a deployment of an API without methods fails).
    """
    api_types = (
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::GatewayResponse",
    )
    hashed = {k: v for k, v in resources.items() if isinstance(v, dict) and v.get("Type") in api_types}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:10]
    new_id = f"ApiDeployment{digest}"
    deployed = ("AWS::ApiGateway::Method", "AWS::ApiGateway::GatewayResponse")
    methods = [k for k, v in hashed.items() if v["Type"] in deployed]
    old_ids = [
        k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == "AWS::ApiGateway::Deployment"
    ]
    if not old_ids:
        resources[new_id] = {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": methods,
            "Properties": {"RestApiId": _ref(API_ID), "StageName": STAGE_NAME},
        }
        return new_id
    deployment = copy.deepcopy(resources[old_ids[0]])  # keeps whatever else it was given
    deployment["DependsOn"] = methods
    _replace(resources, old_ids[0], new_id, deployment)
    for extra in old_ids[1:]:
        _replace(resources, extra, None, None)
    return new_id


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
                "ApiStages": [{"ApiId": _ref(API_ID), "Stage": STAGE_NAME}],
                "Throttle": {"RateLimit": options.rate_limit, "BurstLimit": options.burst_limit},
                "Quota": {"Limit": options.daily_quota, "Period": "DAY"},
            },
        },
        USAGE_PLAN_KEY_ID: {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {"KeyId": _ref(API_KEY_ID), "KeyType": "API_KEY", "UsagePlanId": _ref(USAGE_PLAN_ID)},
        },
    }


# --- SnapStart and CORS as edits (the builder and deploy's overrides share them) ----------------


def _enable_snapstart(template: dict[str, Any]) -> None:
    """SnapStart on published versions; a version + alias `live`; the API calls the alias."""
    resources: dict[str, Any] = template["Resources"]
    resources[FUNCTION_ID].setdefault("Properties", {})["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    if ALIAS_ID in resources:
        return
    snapstart_resources = {
        VERSION_PREFIX: {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": _ref(FUNCTION_ID)}},
        ALIAS_ID: {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": _ref(FUNCTION_ID),
                "FunctionVersion": {"Fn::GetAtt": [VERSION_PREFIX, "Version"]},
                "Name": ALIAS_NAME,
            },
        },
    }
    # Right after the function, so the file reads function -> version -> alias -> API.
    items = list(resources.items())
    resources.clear()
    for logical_id, resource in items:
        resources[logical_id] = resource
        if logical_id == FUNCTION_ID:
            resources.update(snapstart_resources)
    _retarget(resources, _Target.function(), _Target.alias())
    _renew_deployment(resources)


def _disable_snapstart(template: dict[str, Any]) -> None:
    resources: dict[str, Any] = template["Resources"]
    resources[FUNCTION_ID].get("Properties", {}).pop("SnapStart", None)
    for logical_id in [k for k, v in resources.items() if _is_our_version(v)] + [ALIAS_ID]:
        resources.pop(logical_id, None)
    _retarget(resources, _Target.alias(), _Target.function())
    _renew_deployment(resources)


def _is_our_version(resource: Any) -> bool:
    return (
        isinstance(resource, dict)
        and resource.get("Type") == "AWS::Lambda::Version"
        and (resource.get("Properties") or {}).get("FunctionName") == _ref(FUNCTION_ID)
    )


def _retarget(resources: dict[str, Any], old: _Target, new: _Target) -> None:
    for resource in resources.values():
        if not isinstance(resource, dict):
            continue
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::ApiGateway::Method":
            uri = (properties.get("Integration") or {}).get("Uri")
            if isinstance(uri, dict) and isinstance(uri.get("Fn::Sub"), str):
                uri["Fn::Sub"] = uri["Fn::Sub"].replace(old.arn_sub, new.arn_sub)
        elif resource.get("Type") == "AWS::Lambda::Permission" and properties.get("FunctionName") == old.ref:
            properties["FunctionName"] = new.ref


def _enable_cors(resources: dict[str, Any], origin: str) -> None:
    """The origin in the function's environment, a preflight method beside each proxied path, and
    the header on API Gateway's own error answers (403 without a key, 429 throttled, 504 timeout)
    so a page on that origin can read them rather than see an opaque network error."""
    function = resources[FUNCTION_ID].setdefault("Properties", {})
    function.setdefault("Environment", {}).setdefault("Variables", {})[CORS_ENV] = origin
    routes = _proxied_routes(resources)
    for path, target in {route.path: target for route, target in routes}.items():
        if not any(route.method == "OPTIONS" and route.path == path for route, _ in routes):
            _add_route(resources, Route("OPTIONS", path), target, "none")
    for kind in ("4XX", "5XX"):
        resources[f"GatewayResponseDefault{kind}"] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "RestApiId": _ref(API_ID),
                "ResponseType": f"DEFAULT_{kind}",
                # A header mapping value is a quoted literal.
                "ResponseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'"},
            },
        }
    _renew_deployment(resources)


def _proxied_routes(resources: Mapping[str, Any]) -> list[tuple[Route, _Target]]:
    """The API's methods that proxy to our function or its alias, with their paths."""
    found: list[tuple[Route, _Target]] = []
    for resource in resources.values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::ApiGateway::Method":
            continue
        properties = resource.get("Properties") or {}
        uri = json.dumps((properties.get("Integration") or {}).get("Uri"))
        for target in (_Target.function(), _Target.alias()):
            if target.arn_sub in uri:
                path = _path_of(resources, properties.get("ResourceId"))
                if path is not None:
                    found.append((Route(str(properties.get("HttpMethod", "")).upper(), path), target))
    return found


def _path_of(resources: Mapping[str, Any], resource_id: Any) -> str | None:
    """`/a/b` for a Ref to the Resource of b (following ParentId to the root); None if unknown."""
    parts: list[str] = []
    seen: set[str] = set()
    while resource_id != _root():
        if not (isinstance(resource_id, dict) and set(resource_id) == {"Ref"}):
            return None
        logical_id = resource_id["Ref"]
        resource = resources.get(logical_id)
        if logical_id in seen or not isinstance(resource, dict) or resource.get("Type") != "AWS::ApiGateway::Resource":
            return None
        seen.add(logical_id)
        properties = resource.get("Properties") or {}
        parts.append(str(properties.get("PathPart", "")))
        resource_id = properties.get("ParentId")
    return "/" + "/".join(reversed(parts))


def _replace(resources: dict[str, Any], old_id: str, new_id: str | None, value: Any) -> None:
    """Put `value` under `new_id` where `old_id` was (or drop it when new_id is None); DependsOn follows."""
    items = list(resources.items())
    resources.clear()
    for logical_id, resource in items:
        if logical_id != old_id:
            resources[logical_id] = resource
        elif new_id is not None:
            resources[new_id] = value
    for resource in resources.values():
        if not isinstance(resource, dict) or "DependsOn" not in resource:
            continue
        depends = resource["DependsOn"]
        if depends == old_id:
            if new_id is None:
                del resource["DependsOn"]
            else:
                resource["DependsOn"] = new_id
        elif isinstance(depends, list) and old_id in depends:
            renamed = [new_id if d == old_id else d for d in depends]
            resource["DependsOn"] = list(dict.fromkeys(d for d in renamed if d is not None))


# --- checks and names ---------------------------------------------------------------------------

_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+|\{[A-Za-z0-9_]+\+?\}")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")


def _check_runtime(runtime: str) -> None:
    if runtime not in SUPPORTED_RUNTIMES:
        why = ""
        if re.fullmatch(r"python3\.([0-9]|1[01])", runtime):
            why = (
                f" ({runtime} runs on Amazon Linux 2, whose glibc 2.26 cannot load onnxruntime's manylinux_2_28 wheels)"
            )
        raise TemplateOptionError(
            f"runtime {runtime!r} is not supported{why}: use one of {', '.join(SUPPORTED_RUNTIMES)}"
        )


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise TemplateOptionError(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")


def _check_memory(memory: int) -> None:
    if not 128 <= memory <= 10240:
        raise TemplateOptionError(f"memory {memory} MB is outside Lambda's 128..10240 MB")


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


def _stage_url(path: str) -> dict[str, Any]:
    return {
        "Fn::Sub": f"https://${{{API_ID}}}.execute-api.${{AWS::Region}}.amazonaws.com/{STAGE_NAME}{_url_path(path)}"
    }


def _url_path(path: str) -> str:
    return path if path.endswith("/") else f"{path}/"


def _arn_path(path: str) -> str:
    # Path parameters are wildcards in an execute-api ARN.
    return re.sub(r"\{[^}]+\}", "*", path.rstrip("/")) if path != "/" else "/"


def _root() -> dict[str, Any]:
    return {"Fn::GetAtt": [API_ID, "RootResourceId"]}


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
    "ALIAS_ID",
    "API_ID",
    "API_KEY_ID",
    "ARCHITECTURES",
    "AUTH_MODES",
    "BINARY_MEDIA_TYPES",
    "CORS_ENV",
    "DEFAULT_RUNTIME",
    "FUNCTION_ID",
    "PAGE_ENV",
    "STAGE_NAME",
    "SUPPORTED_RUNTIMES",
    "USAGE_PLAN_ID",
    "USAGE_PLAN_KEY_ID",
    "VERSION_PREFIX",
    "DeployOverrides",
    "Route",
    "TemplateOptionError",
    "TemplateOptions",
    "apply_overrides",
    "build_template",
    "check_origin",
    "dump_template",
    "has_version",
    "load_template",
    "stamp_version",
]
