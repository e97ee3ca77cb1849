"""Building the events API Gateway and Function URLs send, for local use (the gateway, init's event.json).

The parser is `core.events`; each builder's output goes through it in the round-trip tests, so the
local gateway never sends an event the handler would not receive on AWS.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from typing import Any


def is_binary_media_type(content_type: str | None, binary_media_types: Sequence[str]) -> bool:
    """API Gateway's rule: the request's Content-Type matches one of the API's binary media types."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    for pattern in binary_media_types:
        p = pattern.strip().lower()
        if p in ("*/*", mime):
            return True
        if p.endswith("/*") and mime.startswith(p[:-1]):
            return True
    return False


def _multi(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value  # API Gateway keeps the last value in the single-value map
        multi.setdefault(key, []).append(value)
    return single, multi


def build_rest_v1_event(
    *,
    method: str,
    path: str,
    resource: str,
    path_parameters: dict[str, str] | None,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
    binary: bool,
    stage: str = "Prod",
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as AWS sends it to the function."""
    now = time.time() if now is None else now
    single_headers, multi_headers = _multi(headers)
    single_query, multi_query = _multi(query)
    if binary:
        body_field: str | None = base64.b64encode(body).decode("ascii") if body else None
    else:
        body_field = body.decode("utf-8", "replace") if body else None
    request_id = request_id or str(uuid.uuid4())
    user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "local",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": formatdate(now, usegmt=True),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "resourcePath": resource,
            "path": f"/{stage}{path}",
            "httpMethod": method.upper(),
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "domainName": "localhost",
        },
        "body": body_field,
        "isBase64Encoded": bool(binary and body),
    }


def invocation_event(
    body: bytes | Mapping[str, Any],
    content_type: str = "application/json",
    *,
    binary: bool | None = None,
    headers: Sequence[tuple[str, str]] = (),
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The guide's request as API Gateway REST delivers it: `POST /invocations` with this body.

    A mapping is sent as JSON; raw bytes are base64-encoded (a binary media type) unless `binary`
    says otherwise. `headers` are sent besides Content-Type.
    """
    data = json.dumps(body).encode() if isinstance(body, Mapping) else body
    return build_rest_v1_event(
        method="POST",
        path="/invocations",
        resource="/invocations",
        path_parameters=None,
        query=[],
        headers=[("Content-Type", content_type), *headers],
        body=data,
        binary=(not isinstance(body, Mapping) and content_type != "application/json") if binary is None else binary,
        request_id=request_id,
        now=now,
    )


def build_http_v2_event(
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
    binary: bool,
    function_url: bool = False,
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event; with `function_url` the shape a Function URL sends."""
    now = time.time() if now is None else now
    joined: dict[str, str] = {}
    for key, value in headers:
        k = key.lower()
        joined[k] = f"{joined[k]},{value}" if k in joined else value
    query_map: dict[str, str] = {}
    for key, value in query:
        query_map[key] = f"{query_map[key]},{value}" if key in query_map else value
    raw_query = "&".join(f"{k}={v}" for k, v in query)
    domain = "abcdefgh.lambda-url.us-east-1.on.aws" if function_url else "abcdefgh.execute-api.us-east-1.amazonaws.com"
    if binary:
        body_field: str | None = base64.b64encode(body).decode("ascii") if body else None
    else:
        body_field = body.decode("utf-8", "replace") if body else None
    request_id = request_id or str(uuid.uuid4())
    route_key = "$default" if function_url else route_key or f"{method.upper()} {path}"
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": joined,
        "queryStringParameters": query_map or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdefgh",
            "domainName": domain,
            "domainPrefix": "abcdefgh",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": formatdate(now, usegmt=True),
            "timeEpoch": int(now * 1000),
        },
        "body": body_field,
        "isBase64Encoded": bool(binary and body),
        **({"pathParameters": dict(path_parameters)} if path_parameters else {}),
    }


def dumps_event(event: Mapping[str, Any]) -> str:
    return json.dumps(event, indent=2, sort_keys=False)


__all__ = ["build_http_v2_event", "build_rest_v1_event", "dumps_event", "invocation_event", "is_binary_media_type"]
