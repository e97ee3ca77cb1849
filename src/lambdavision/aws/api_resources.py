"""API Gateway's part of a template, as edits on its `Resources` dict.

`add_route` adds a route's path Resources, Method and invoke Permission; `proxied_routes` finds the
methods that proxy to the function (or its alias) and `retarget` points them elsewhere;
`renew_deployment` names the Deployment after what it deploys, so CloudFormation redeploys the
API when its routes change. Paths and resource renames are `lambdavision.cfn.apigateway`'s.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdavision.aws.template_names import ALIAS_ID, API_ID, FUNCTION_ID, STAGE_NAME, Route, ref
from lambdavision.cfn.apigateway import ensure_path, path_id, replace_resource, resource_path


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
    parent = ensure_path(resources, API_ID, route.path)
    method_id = _method_id(route)
    resources[method_id] = _method(route, parent, target, auth)
    resources[f"{method_id}Permission"] = _permission(route, target)


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
                path = resource_path(resources, properties.get("ResourceId"))
                if path is not None:
                    found.append((Route(str(properties.get("HttpMethod", "")).upper(), path), target))
    return found


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


def _method_id(route: Route) -> str:
    return f"{path_id(route.path)}{route.method.capitalize()}Method"


def _arn_path(path: str) -> str:
    # Path parameters are wildcards in an execute-api ARN.
    return re.sub(r"\{[^}]+\}", "*", path.rstrip("/")) if path != "/" else "/"


__all__ = [
    "Target",
    "add_route",
    "proxied_routes",
    "renew_deployment",
    "retarget",
]
