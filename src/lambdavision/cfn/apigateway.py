"""API Gateway's part of a template: paths, resources, and the operations of an OpenAPI Body.

The one place that knows how a REST API's `AWS::ApiGateway::Resource` chain spells a path
(`ensure_path` builds it, `resource_path` reads it back) and how an OpenAPI `Body` (SAM's output, or a
hand-written one) lists its operations (`body_operations`). `replace_resource` renames or drops a
resource, `DependsOn` included. Pure dict edits; used by `explicit` (the SAM output made explicit),
`routes` (what `local` serves) and `aws.api_resources` (the routes `init` writes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class BodyOperation:
    """One operation of an OpenAPI Body: `POST /invocations` and how it is integrated."""

    path: str
    method: str  # upper case; "ANY" for x-amazon-apigateway-any-method
    integration: Mapping[str, Any]
    security: tuple[str, ...] = ()  # names of the security schemes it requires
    extra: tuple[str, ...] = field(default=())  # other keys of the operation (request validation...)
    # Conditions that must hold for it to exist (SAM wraps a conditional function's paths in Fn::If).
    conditions: tuple[str, ...] = ()


_PLAIN_OPERATION_KEYS = frozenset(
    {INTEGRATION, "responses", "security", "parameters", "produces", "consumes", "summary", "description",
     "operationId", "tags"}
)  # fmt: skip


def body_operations(body: Any) -> list[BodyOperation]:
    """The operations of an OpenAPI 2 or 3 Body, in the Body's order (none when it is not a mapping)."""
    paths = body.get("paths") if isinstance(body, Mapping) else None
    found: list[BodyOperation] = []
    for path, wrapped_item in (paths or {}).items() if isinstance(paths, Mapping) else ():
        item, path_conditions = _unwrap_if(wrapped_item)
        if not isinstance(item, Mapping):
            continue
        for key, wrapped in item.items():
            name = str(key).lower()
            operation, conditions = _unwrap_if(wrapped)
            if (name not in HTTP_METHODS and name != ANY_METHOD) or not isinstance(operation, Mapping):
                continue
            security = tuple(
                scheme for requirement in operation.get("security") or [] if isinstance(requirement, Mapping)
                for scheme in requirement
            )  # fmt: skip
            found.append(
                BodyOperation(
                    path=str(path),
                    method="ANY" if name == ANY_METHOD else name.upper(),
                    integration=operation.get(INTEGRATION) or {},
                    security=security,
                    extra=tuple(sorted(str(k) for k in operation if k not in _PLAIN_OPERATION_KEYS)),
                    conditions=tuple(dict.fromkeys(path_conditions + conditions)),
                )
            )
    return found


def _unwrap_if(value: Any) -> tuple[Any, tuple[str, ...]]:
    """`{"Fn::If": [C, X, {"Ref": "AWS::NoValue"}]}` (nested too) -> (X, (C, ...)); anything else as it is."""
    conditions: list[str] = []
    while isinstance(value, Mapping) and set(value) == {"Fn::If"}:
        argument = value["Fn::If"]
        if not (isinstance(argument, list) and len(argument) == 3 and argument[2] == {"Ref": "AWS::NoValue"}):
            break
        conditions.append(str(argument[0]))
        value = argument[1]
    return value, tuple(conditions)


def security_schemes(body: Any) -> dict[str, Mapping[str, Any]]:
    """The Body's security schemes by name (OpenAPI 2 securityDefinitions or 3 components)."""
    if not isinstance(body, Mapping):
        return {}
    schemes = body.get("securityDefinitions") or (body.get("components") or {}).get("securitySchemes") or {}
    return {str(k): v for k, v in schemes.items() if isinstance(v, Mapping)} if isinstance(schemes, Mapping) else {}


def is_api_key_scheme(scheme: Mapping[str, Any]) -> bool:
    return scheme.get("type") == "apiKey" and str(scheme.get("name", "")).lower() == "x-api-key"


__all__ = [
    "ANY_METHOD",
    "DEPLOYMENT",
    "HTTP_API",
    "METHOD",
    "RESOURCE",
    "REST_API",
    "STAGE",
    "BodyOperation",
    "body_operations",
    "ensure_path",
    "is_api_key_scheme",
    "path_id",
    "ref",
    "replace_resource",
    "resource_path",
    "root_of",
    "security_schemes",
    "segments",
    "unique_id",
]
