"""API Gateway's part of a template, as edits on its `Resources` dict.

`add_route` adds a route's path Resources, Method and invoke Permission; `proxied_routes` finds the
methods that proxy to the function (or its alias) and `retarget` points them elsewhere;
`renew_deployment` names the Deployment after what it deploys, so CloudFormation redeploys the
API when its routes change. `replace_resource` renames or drops a resource, `DependsOn` included.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdavision.aws.template_names import ALIAS_ID, API_ID, FUNCTION_ID, STAGE_NAME, Route, ref, segments


@dataclass(frozen=True)
class Target:
    """What API Gateway calls: the function, or (SnapStart) the alias of its published version."""

    ref: dict[str, Any]  # the Permission's FunctionName
    arn_sub: str  # the ARN inside the integration URI's Fn::Sub

    @staticmethod
    def function() -> Target:
        return Target(ref(FUNCTION_ID), f"${{{FUNCTION_ID}.Arn}}")

    @staticmethod
    def alias() -> Target:
        return Target(ref(ALIAS_ID), f"${{{ALIAS_ID}}}")


def add_route(resources: dict[str, Any], route: Route, target: Target, auth: str) -> None:
    """The path's Resources (reusing existing ones), the Method and its invoke Permission."""
    parent = _root()
    prefix = ""
    for segment in segments(route.path):
        prefix = f"{prefix}/{segment}"
        existing = _child_resource(resources, parent, segment)
        if existing is None:
            existing = f"{_path_id(prefix)}Resource"
            resources[existing] = {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {"RestApiId": ref(API_ID), "ParentId": parent, "PathPart": segment},
            }
        parent = ref(existing)
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


def _method(route: Route, resource_id: Any, target: Target, auth: str) -> dict[str, Any]:
    # A CORS preflight carries no credentials by design: it must stay open whatever the auth.
    guarded = route.method.upper() != "OPTIONS"
    properties: dict[str, Any] = {
        "RestApiId": ref(API_ID),
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


def _permission(route: Route, target: Target) -> dict[str, Any]:
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


def renew_deployment(resources: dict[str, Any]) -> str:
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
            "Properties": {"RestApiId": ref(API_ID), "StageName": STAGE_NAME},
        }
        return new_id
    deployment = copy.deepcopy(resources[old_ids[0]])  # keeps whatever else it was given
    deployment["DependsOn"] = methods
    replace_resource(resources, old_ids[0], new_id, deployment)
    for extra in old_ids[1:]:
        replace_resource(resources, extra, None, None)
    return new_id


def proxied_routes(resources: Mapping[str, Any]) -> list[tuple[Route, Target]]:
    """The API's methods that proxy to our function or its alias, with their paths."""
    found: list[tuple[Route, Target]] = []
    for resource in resources.values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::ApiGateway::Method":
            continue
        properties = resource.get("Properties") or {}
        uri = json.dumps((properties.get("Integration") or {}).get("Uri"))
        for target in (Target.function(), Target.alias()):
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


def retarget(resources: dict[str, Any], old: Target, new: Target) -> None:
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


def replace_resource(resources: dict[str, Any], old_id: str, new_id: str | None, value: Any) -> None:
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


def _path_id(path: str) -> str:
    """`/invocations` -> `Invocations`; `/items/{id}` -> `ItemsId`; `/` -> `Root`."""
    words = re.findall(r"[A-Za-z0-9]+", path)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Root"


def _method_id(route: Route) -> str:
    return f"{_path_id(route.path)}{route.method.capitalize()}Method"


def _arn_path(path: str) -> str:
    # Path parameters are wildcards in an execute-api ARN.
    return re.sub(r"\{[^}]+\}", "*", path.rstrip("/")) if path != "/" else "/"


def _root() -> dict[str, Any]:
    return {"Fn::GetAtt": [API_ID, "RootResourceId"]}


__all__ = [
    "Target",
    "add_route",
    "proxied_routes",
    "renew_deployment",
    "replace_resource",
    "retarget",
]
