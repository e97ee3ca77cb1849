"""API Gateway's part of a template: paths and resources.

The one place that knows how a REST API's `AWS::ApiGateway::Resource` chain spells a path
(`ensure_path` builds it, `resource_path` reads it back); an OpenAPI `Body`'s operations are
`openapi_body`. `replace_resource` renames or drops a resource, `DependsOn` included. Pure dict
edits; used by `explicit` (the SAM output made explicit), `routes` (what `local` serves) and
`aws.api_resources` (the routes `init` writes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

REST_API = "AWS::ApiGateway::RestApi"
HTTP_API = "AWS::ApiGatewayV2::Api"
RESOURCE = "AWS::ApiGateway::Resource"
METHOD = "AWS::ApiGateway::Method"
DEPLOYMENT = "AWS::ApiGateway::Deployment"
STAGE = "AWS::ApiGateway::Stage"
ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def root_of(api_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [api_id, "RootResourceId"]}


def segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def path_id(path: str) -> str:
    """`/invocations` -> `Invocations`; `/items/{id}` -> `ItemsId`; `/` -> `Root`."""
    words = re.findall(r"[A-Za-z0-9]+", path)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Root"


def ensure_path(resources: dict[str, Any], api_id: str, path: str, id_prefix: str = "") -> dict[str, Any]:
    """The ResourceId of `path` in the API: its Resources chain, reusing what exists, made as needed."""
    parent = root_of(api_id)
    prefix = ""
    for segment in segments(path):
        prefix = f"{prefix}/{segment}"
        existing = _child_resource(resources, parent, segment)
        if existing is None:
            existing = unique_id(resources, f"{id_prefix}{path_id(prefix)}Resource")
            resources[existing] = {
                "Type": RESOURCE,
                "Properties": {"RestApiId": ref(api_id), "ParentId": parent, "PathPart": segment},
            }
        parent = ref(existing)
    return parent


def _child_resource(resources: Mapping[str, Any], parent: Any, segment: str) -> str | None:
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and resource.get("Type") == RESOURCE:
            properties = resource.get("Properties") or {}
            if properties.get("ParentId") == parent and properties.get("PathPart") == segment:
                return logical_id
    return None


def unique_id(resources: Mapping[str, Any], wanted: str) -> str:
    """`wanted`, or `wanted2`, `wanted3`... when a resource already has that id."""
    candidate, number = wanted, 1
    while candidate in resources:
        number += 1
        candidate = f"{wanted}{number}"
    return candidate


def resource_path(resources: Mapping[str, Any], resource_id: Any, text: Callable[[Any], str] = str) -> str | None:
    """`/a/b` for a ResourceId (a Ref to the Resource of b, or the API's root); None if unknown.

    `text` turns a PathPart into its string (a resolver, when PathParts use intrinsics).
    """
    parts: list[str] = []
    seen: set[str] = set()
    current = resource_id
    while not (isinstance(current, dict) and "Fn::GetAtt" in current):
        if not (isinstance(current, dict) and set(current) == {"Ref"}):
            return None
        logical_id = str(current["Ref"])
        resource = resources.get(logical_id)
        if logical_id in seen or not isinstance(resource, dict) or resource.get("Type") != RESOURCE:
            return None
        seen.add(logical_id)
        properties = resource.get("Properties") or {}
        parts.append(text(properties.get("PathPart", "")))
        current = properties.get("ParentId")
    return "/" + "/".join(reversed(parts))


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


__all__ = [
    "ANY_METHOD",
    "DEPLOYMENT",
    "HTTP_API",
    "METHOD",
    "RESOURCE",
    "REST_API",
    "STAGE",
    "ensure_path",
    "path_id",
    "ref",
    "replace_resource",
    "resource_path",
    "root_of",
    "segments",
    "unique_id",
]
