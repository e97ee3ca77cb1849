"""The SAM transform's output, adjusted the way lambdavision's own template is written.

moto (the AWS stand-in of the tests) deploys plain CloudFormation but not all of it; the template
`lambdavision init` writes avoids what it lacks, and `make_explicit` makes the same three choices
in the transform's output (each deploys the same API on AWS):

1. `AWS::ApiGateway::RestApi` gets a `Name` (moto requires one; the transform names the API in its
   OpenAPI Body only): the Body's title, else the stack's name.
2. The OpenAPI `Body` becomes explicit `AWS::ApiGateway::Resource` + `AWS::ApiGateway::Method`
   resources (moto ignores a Body). Only when every operation is a Lambda proxy integration,
   public, IAM or API-key authorised; a Body saying more (authorizers, mock CORS methods, a
   resource policy, gateway responses, request validation, the Fn::If of conditional functions) is
   kept as it is, which AWS deploys and moto does not.
3. `AWS::ApiGateway::Stage` (unsupported by moto) goes; its `Deployment` takes the `StageName`
   (and the stage's settings, as `StageDescription`), and depends on the API's methods.

HTTP APIs (`AWS::ApiGatewayV2::*`, SAM's `HttpApi` events) are left as they are: moto's
CloudFormation has none of those resources, so no rewrite would make them deploy there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from lambdavision.cfn.apigateway import (
    DEPLOYMENT,
    METHOD,
    REST_API,
    STAGE,
    ensure_path,
    path_id,
    ref,
    replace_resource,
    unique_id,
)
from lambdavision.cfn.openapi_body import BodyOperation, body_operations, is_api_key_scheme, security_schemes

# Stage properties a Deployment's StageDescription also takes.
_STAGE_DESCRIPTION_KEYS = (
    "AccessLogSetting", "CacheClusterEnabled", "CacheClusterSize", "CanarySetting", "ClientCertificateId",
    "Description", "DocumentationVersion", "MethodSettings", "Tags", "TracingEnabled", "Variables",
)  # fmt: skip


def make_explicit(template: Mapping[str, Any], order: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A copy of `template` with the three adjustments above; methods follow `order` ((path, METHOD)
    pairs, the template's events) where given, else the Body's order."""
    out = copy.deepcopy(dict(template))
    resources: dict[str, Any] = out.get("Resources") or {}
    methods_of: dict[str, list[str]] = {}
    for api_id in [k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == REST_API]:
        properties = resources[api_id].setdefault("Properties", {})
        body = properties.get("Body")
        if "Name" not in properties:
            title = body.get("info", {}).get("title") if isinstance(body, Mapping) else None
            properties["Name"] = title if title else ref("AWS::StackName")
        operations = body_operations(body)
        rank = {pair: index for index, pair in enumerate(order or [])}
        operations.sort(key=lambda op: rank.get((op.path, op.method), len(rank)))
        if body is not None and explicit_operations(body, operations):
            methods_of[api_id] = _replace_body(resources, api_id, body, operations)
    _stages_into_deployments(out, methods_of)
    return out


# What a Body may hold besides its operations and still be written as explicit resources: anything
# else (a resource policy, gateway responses, request validators...) would be lost, so the Body stays.
_PLAIN_BODY_KEYS = frozenset(
    {"swagger", "openapi", "info", "paths", "securityDefinitions", "components", "tags",
     "x-amazon-apigateway-binary-media-types"}
)  # fmt: skip


def explicit_operations(body: Any, operations: list[BodyOperation]) -> bool:
    """Whether the whole Body can be written as explicit Methods (nothing it says lost)."""
    schemes = security_schemes(body)
    return (
        isinstance(body, Mapping)
        and set(body) <= _PLAIN_BODY_KEYS
        and bool(operations)
        and all(_method_auth(op, schemes) is not None and _proxied(op) and not op.conditions for op in operations)
    )


def _proxied(operation: BodyOperation) -> bool:
    return str(operation.integration.get("type", "")).lower() == "aws_proxy" and not operation.extra


def _method_auth(operation: BodyOperation, schemes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The Method's authorisation properties for the operation's security, None when not expressible."""
    auth: dict[str, Any] = {"AuthorizationType": "NONE"}
    for name in operation.security:
        scheme = schemes.get(name, {})
        if is_api_key_scheme(scheme):
            auth["ApiKeyRequired"] = True
        elif scheme.get("x-amazon-apigateway-authtype") == "awsSigv4" or name == "AWS_IAM":
            auth["AuthorizationType"] = "AWS_IAM"
        else:  # a Cognito or Lambda authorizer: only the Body can say that much
            return None
    return auth


def _replace_body(resources: dict[str, Any], api_id: str, body: Any, operations: list[BodyOperation]) -> list[str]:
    """The Body's operations as Resources + Methods right after the API; returns the Methods' ids."""
    properties = resources[api_id]["Properties"]
    del properties["Body"]
    binary = body.get("x-amazon-apigateway-binary-media-types") if isinstance(body, Mapping) else None
    if binary and "BinaryMediaTypes" not in properties:
        properties["BinaryMediaTypes"] = [str(t).replace("/", "~1") for t in binary]
    before = set(resources)
    schemes = security_schemes(body)
    methods: list[str] = []
    for operation in operations:
        resource_id = ensure_path(resources, api_id, operation.path, id_prefix=api_id)
        method_id = unique_id(resources, f"{api_id}{path_id(operation.path)}{operation.method.capitalize()}")
        resources[method_id] = {
            "Type": METHOD,
            "Properties": {
                "RestApiId": ref(api_id),
                "ResourceId": resource_id,
                "HttpMethod": operation.method,
                **(_method_auth(operation, schemes) or {}),
                "Integration": {
                    "Type": "AWS_PROXY",
                    # Lambda proxy integrations are always called with POST, whatever the route's method.
                    "IntegrationHttpMethod": "POST",
                    "Uri": operation.integration.get("uri"),
                },
            },
        }
        methods.append(method_id)
    _move_after(resources, api_id, [k for k in resources if k not in before])
    return methods


def _move_after(resources: dict[str, Any], anchor: str, moved: list[str]) -> None:
    """Reorder so `moved` follow `anchor` (the file then reads API -> its paths and methods)."""
    items = list(resources.items())
    resources.clear()
    for logical_id, resource in items:
        if logical_id in moved:
            continue
        resources[logical_id] = resource
        if logical_id == anchor:
            resources.update((k, v) for k, v in items if k in moved)


def _stages_into_deployments(template: dict[str, Any], methods_of: Mapping[str, list[str]]) -> None:
    """Each Stage's name and settings onto the Deployment it names; Refs to the Stage become its name."""
    resources: dict[str, Any] = template.get("Resources") or {}
    for stage_id in [k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == STAGE]:
        stage = resources[stage_id]
        properties = stage.get("Properties") or {}
        deployment_ref = properties.get("DeploymentId")
        deployment_id = deployment_ref.get("Ref") if isinstance(deployment_ref, dict) else None
        deployment = resources.get(str(deployment_id))
        if not (isinstance(deployment, dict) and deployment.get("Type") == DEPLOYMENT):
            continue
        stage_name = properties.get("StageName")
        deployment_properties = deployment.setdefault("Properties", {})
        if deployment_properties.get("StageDescription") or not stage_name:
            continue  # already holds another stage's settings, or nothing to move
        deployment_properties["StageName"] = stage_name
        description = {k: properties[k] for k in _STAGE_DESCRIPTION_KEYS if k in properties}
        if description:
            deployment_properties["StageDescription"] = description
        if "Condition" in stage and "Condition" not in deployment:
            deployment["Condition"] = stage["Condition"]
        # The Stage goes; what depended on it depends on its Deployment, and a Ref to it (its name) is the
        # name — with a DependsOn on the Deployment, which the Ref implied (a usage plan needs the stage).
        replace_resource(resources, stage_id, str(deployment_id), deployment)
        for resource in resources.values():
            if isinstance(resource, dict) and _replace_refs(resource.get("Properties"), stage_id, stage_name):
                depends = resource.get("DependsOn", [])
                depends = [depends] if isinstance(depends, str) else list(depends)
                resource["DependsOn"] = list(dict.fromkeys([*depends, str(deployment_id)]))
        _replace_refs(template.get("Outputs"), stage_id, stage_name)
    for deployment in resources.values():
        if not (isinstance(deployment, dict) and deployment.get("Type") == DEPLOYMENT):
            continue
        api = (deployment.get("Properties") or {}).get("RestApiId")
        methods = methods_of.get(api.get("Ref", "") if isinstance(api, dict) else "", [])
        if methods:  # a deployment of an API before its methods exist fails
            depends = deployment.get("DependsOn", [])
            depends = [depends] if isinstance(depends, str) else list(depends)
            deployment["DependsOn"] = list(dict.fromkeys([*depends, *methods]))


def _replace_refs(value: Any, name: str, replacement: Any) -> bool:
    """Every `{"Ref": name}` inside `value` (edited in place) becomes `replacement`; whether there was one."""
    found = False
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in list(items):
        if item == {"Ref": name}:
            value[key] = replacement
            found = True
        else:
            found = _replace_refs(item, name, replacement) or found
    return found


__all__ = ["explicit_operations", "make_explicit"]
