"""The API routes a (plain) template declares, as `local start-api` serves them.

REST APIs (v1 events): each `AWS::ApiGateway::Method` with a Lambda proxy integration, and the
operations of an OpenAPI `Body` still in the template. HTTP APIs (`AWS::ApiGatewayV2::Api`, SAM's
`HttpApi` events; payload 2.0 unless the integration says 1.0): the operations of its `Body`, and
explicit `AWS::ApiGatewayV2::Route` + `Integration` resources. A route reaches a function directly
or through an `AWS::Lambda::Alias` / `Version` of it (SnapStart).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lambdavision.cfn.apigateway import (
    HTTP_API,
    METHOD,
    REST_API,
    resource_path,
)
from lambdavision.cfn.intrinsics import Resolver, as_env_value, referenced_ids
from lambdavision.cfn.openapi_body import body_operations, is_api_key_scheme, security_schemes

DEFAULT_STAGE = "Prod"
HTTP_API_STAGE = "$default"


@dataclass(frozen=True)
class ApiRoute:
    method: str  # "POST", "GET", ... or "ANY"
    path: str  # "/invocations", may contain "{name}" or "{proxy+}"
    function_id: str
    payload_version: str = "1.0"  # "2.0": an HTTP API's event (and answer) format
    api_key_required: bool = False  # the caller must send x-api-key


@dataclass(frozen=True)
class ApiSurface:
    routes: list[ApiRoute]
    binary_media_types: list[str]
    stage_name: str


def decode_binary_media_type(value: str) -> str:
    """CloudFormation writes "image~1png" for "image/png" (JSON pointer escaping); accept both."""
    return value.replace("~1", "/").replace("~0", "~")


def normalise_path(path: str) -> str:
    return "/" + path.strip().strip("/") if path.strip("/ ") else "/"


def api_surface(template: Mapping[str, Any], function_ids: set[str], resolver: Resolver) -> ApiSurface:
    """Routes, binary media types and the REST stage of the template's APIs."""
    resources: Mapping[str, Any] = template.get("Resources") or {}
    active = {k: v for k, v in resources.items() if isinstance(v, Mapping) and resolver.active(v)}
    routes: list[ApiRoute] = []
    rest_apis: set[str] = set()
    for resource in active.values():
        if resource.get("Type") == METHOD:
            found = _method_route(resource.get("Properties") or {}, resources, function_ids, resolver)
            if found is not None:
                routes.append(found[0])
                rest_apis.add(found[1])
    for logical_id, resource in active.items():
        kind = resource.get("Type")
        body = (resource.get("Properties") or {}).get("Body")
        if kind in (REST_API, HTTP_API) and isinstance(body, Mapping):
            body_routes = list(_body_routes(body, kind == HTTP_API, resources, function_ids, resolver))
            routes.extend(body_routes)
            if body_routes and kind == REST_API:
                rest_apis.add(logical_id)
        elif kind == "AWS::ApiGatewayV2::Route":
            route = _v2_route(resource.get("Properties") or {}, resources, function_ids, resolver)
            if route is not None:
                routes.append(route)
    binary: list[str] = []
    stage = ""
    for logical_id in rest_apis:
        properties = (active.get(logical_id) or {}).get("Properties") or {}
        body = properties.get("Body")
        body = body if isinstance(body, Mapping) else {}
        binary += resolver.resolve(properties.get("BinaryMediaTypes")) or []
        binary += body.get("x-amazon-apigateway-binary-media-types") or []
    for resource in active.values():
        if resource.get("Type") in ("AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage") and not stage:
            stage = resolver.resolve_str((resource.get("Properties") or {}).get("StageName"))
    return ApiSurface(
        routes=list(dict.fromkeys(routes)),
        binary_media_types=list(dict.fromkeys(decode_binary_media_type(as_env_value(t)) for t in binary)),
        stage_name=stage or DEFAULT_STAGE,
    )


def function_behind(name: str, resources: Mapping[str, Any], function_ids: set[str]) -> str | None:
    """`name` itself, or the function an AWS::Lambda::Alias / Version (SnapStart's) points at."""
    if name in function_ids:
        return name
    resource = resources.get(name)
    if isinstance(resource, Mapping) and resource.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
        properties = resource.get("Properties") or {}
        behind = [n for n in referenced_ids(properties.get("FunctionName")) if n in function_ids]
        if not behind and "FunctionVersion" in properties:  # an Alias names its Version, which names the function
            behind = [
                found
                for n in referenced_ids(properties.get("FunctionVersion"))
                if n != name and (found := function_behind(n, resources, function_ids))
            ]
        return behind[0] if behind else None
    return None


def _target(uri: Any, resources: Mapping[str, Any], function_ids: set[str]) -> str | None:
    targets = [found for name in referenced_ids(uri) if (found := function_behind(name, resources, function_ids))]
    return targets[0] if targets else None


def _method_route(
    properties: Mapping[str, Any], resources: Mapping[str, Any], function_ids: set[str], resolver: Resolver
) -> tuple[ApiRoute, str] | None:
    """(route, its REST API's logical id) of an AWS_PROXY Method."""
    integration = properties.get("Integration") or {}
    if not isinstance(integration, Mapping) or resolver.resolve_str(integration.get("Type", "")).upper() != "AWS_PROXY":
        return None
    function_id = _target(integration.get("Uri"), resources, function_ids)
    path = resource_path(resources, properties.get("ResourceId"), resolver.resolve_str)
    if function_id is None or path is None:
        return None
    apis = list(referenced_ids(properties.get("RestApiId")))
    route = ApiRoute(
        method=resolver.resolve_str(properties.get("HttpMethod", "ANY")).upper(),
        path=normalise_path(path),
        function_id=function_id,
        api_key_required=resolver.resolve(properties.get("ApiKeyRequired")) in (True, "true", "True"),
    )
    return route, apis[0] if apis else ""


def _body_routes(
    body: Mapping[str, Any], http_api: bool, resources: Mapping[str, Any], function_ids: set[str], resolver: Resolver
) -> Iterator[ApiRoute]:
    schemes = security_schemes(body)
    for operation in body_operations(body):
        if str(operation.integration.get("type", "")).lower() != "aws_proxy":
            continue
        if not all(resolver.condition(name) for name in operation.conditions):
            continue
        function_id = _target(operation.integration.get("uri"), resources, function_ids)
        if function_id is None:
            continue
        version = str(operation.integration.get("payloadFormatVersion", "2.0" if http_api else "1.0"))
        path = "/{proxy+}" if operation.path == "/$default" else normalise_path(operation.path)
        yield ApiRoute(
            method=operation.method,
            path=path,
            function_id=function_id,
            payload_version=version,
            api_key_required=any(is_api_key_scheme(schemes.get(name, {})) for name in operation.security),
        )


def _v2_route(
    properties: Mapping[str, Any], resources: Mapping[str, Any], function_ids: set[str], resolver: Resolver
) -> ApiRoute | None:
    """An explicit HTTP API route: `RouteKey: "POST /x"`, `Target: integrations/<IntegrationId>`."""
    method, _, path = resolver.resolve_str(properties.get("RouteKey", "")).partition(" ")
    if method == "$default":
        method, path = "ANY", "/{proxy+}"
    for name in referenced_ids(properties.get("Target")):
        integration = resources.get(name)
        if isinstance(integration, Mapping) and integration.get("Type") == "AWS::ApiGatewayV2::Integration":
            integration_properties = integration.get("Properties") or {}
            function_id = _target(integration_properties.get("IntegrationUri"), resources, function_ids)
            if function_id is not None and path:
                version = resolver.resolve_str(integration_properties.get("PayloadFormatVersion")) or "2.0"
                return ApiRoute(method.upper(), normalise_path(path), function_id, payload_version=version)
    return None


__all__ = ["DEFAULT_STAGE", "ApiRoute", "ApiSurface", "api_surface", "decode_binary_media_type", "function_behind"]
