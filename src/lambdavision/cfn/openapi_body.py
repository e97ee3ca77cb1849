"""How an OpenAPI `Body` of a REST API (SAM's output, or a hand-written one) lists its operations, their
integrations and security (OpenAPI 2 or 3); a conditional function's paths come wrapped in Fn::If."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdavision.cfn.apigateway import ANY_METHOD, HTTP_METHODS, INTEGRATION


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


__all__ = ["BodyOperation", "body_operations", "is_api_key_scheme", "security_schemes"]
