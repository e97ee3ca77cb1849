"""Lambda event sources: infer which one sent an event, parse it, render the answer, and build events.

One class per source, the first whose `infer` matches wins (mangum's habit). Function URLs send
payload-2.0 events, so `FunctionUrl` is an `HttpApiV2` with no code of its own beyond `infer`.
The same module builds events for local use, so the local gateway never sends an event the
handler would not receive on AWS (round-trip tested).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, ClassVar

from lambdavision.core.errors import BadRequest, LambdaVisionError, http_answer


@dataclass(frozen=True)
class ApiRequest:
    """What the handler needs from any event, whatever its source."""

    source: str
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]
    body: bytes
    json_body: Any = None  # set when the event itself was the JSON payload (direct invoke)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass
class Response:
    """An answer before it is rendered for an event source."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def body_text(self) -> str:
        if isinstance(self.body, str):
            return self.body
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False)


def error_response(exc: BaseException) -> Response:
    """An error as a Response (`core.errors.http_answer` decides its status, body and headers)."""
    status, body, headers = http_answer(exc)
    return Response(status=status, body=body, headers=headers)


def _lower_headers(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k).lower(): str(v) for k, v in raw.items() if v is not None}


def _str_map(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): str(v) for k, v in raw.items() if v is not None}


def _decode_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadRequest("event body must be a string")
    if event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("event body is marked isBase64Encoded but is not valid base64") from None
    return body.encode("utf-8", "surrogatepass")


class EventSource:
    """Base of the event sources."""

    name: ClassVar[str] = "base"

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    @staticmethod
    def parse(event: Mapping[str, Any]) -> ApiRequest:
        raise NotImplementedError

    @staticmethod
    def render(response: Response) -> dict[str, Any]:
        """API Gateway's proxy integration and Function URLs take the same response shape."""
        headers = {"Content-Type": response.content_type, **response.headers}
        return {
            "statusCode": response.status,
            "headers": headers,
            "body": response.body_text(),
            "isBase64Encoded": False,
        }


class RestApiV1(EventSource):
    """API Gateway REST API proxy integration (payload 1.0) — the guide's event.json."""

    name = "apigateway-rest"

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        return "httpMethod" in event and isinstance(event.get("requestContext"), Mapping)

    @staticmethod
    def parse(event: Mapping[str, Any]) -> ApiRequest:
        return ApiRequest(
            source=RestApiV1.name,
            method=str(event.get("httpMethod") or "").upper(),
            path=str(event.get("path") or "/"),
            headers=_lower_headers(event.get("headers")),
            query=_str_map(event.get("queryStringParameters")),
            body=_decode_body(event),
        )


class HttpApiV2(EventSource):
    """API Gateway HTTP API (payload 2.0)."""

    name = "apigateway-http"

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        ctx = event.get("requestContext")
        return event.get("version") == "2.0" and isinstance(ctx, Mapping) and isinstance(ctx.get("http"), Mapping)

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> ApiRequest:
        http = event["requestContext"]["http"]
        headers = _lower_headers(event.get("headers"))
        cookies = event.get("cookies")
        if isinstance(cookies, list) and cookies:
            headers.setdefault("cookie", "; ".join(str(c) for c in cookies))
        return ApiRequest(
            source=cls.name,
            method=str(http.get("method") or "").upper(),
            path=str(event.get("rawPath") or http.get("path") or "/"),
            headers=headers,
            query=_str_map(event.get("queryStringParameters")),
            body=_decode_body(event),
        )


class FunctionUrl(HttpApiV2):
    """Lambda Function URL: a payload-2.0 event whose domain is `*.lambda-url.*`."""

    name = "function-url"

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        if not HttpApiV2.infer(event):
            return False
        domain = str(event["requestContext"].get("domainName") or "")
        return ".lambda-url." in domain


class DirectInvoke(EventSource):
    """A plain dict sent with `aws lambda invoke` (or the SDK): the event is the JSON payload."""

    name = "direct"

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        return True

    @staticmethod
    def parse(event: Mapping[str, Any]) -> ApiRequest:
        return ApiRequest(
            source=DirectInvoke.name,
            method="POST",
            path="/invocations",
            headers={"content-type": "application/json"},
            query={},
            body=b"",
            json_body=dict(event),
        )


# Order matters: the first match wins; FunctionUrl before its parent, DirectInvoke last.
EVENT_SOURCES: tuple[type[EventSource], ...] = (RestApiV1, FunctionUrl, HttpApiV2, DirectInvoke)


def infer_source(event: Any) -> type[EventSource]:
    if not isinstance(event, Mapping):
        raise BadRequest("the event must be a JSON object")
    for source in EVENT_SOURCES:
        if source.infer(event):
            return source
    raise AssertionError("DirectInvoke matches every mapping")  # pragma: no cover


def parse_event(event: Any) -> tuple[type[EventSource], ApiRequest]:
    """Infer the source and parse; a malformed event of a known source is a BadRequest."""
    source = infer_source(event)
    try:
        return source, source.parse(event)
    except LambdaVisionError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BadRequest(f"malformed {source.name} event: {exc}") from None


# ---- building events (local gateway, init's event.json, tests) ----


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


@dataclass(frozen=True)
class ProxyResponse:
    """A function's proxy answer as the gateway sends it to the client."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def parse_proxy_response(result: Any) -> ProxyResponse:
    """Validate a function's answer the way API Gateway's proxy integration does.

    Raises ValueError for anything API Gateway would turn into a 502.
    """
    if not isinstance(result, Mapping):
        raise ValueError("the function's answer is not a JSON object")
    allowed = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "cookies"}
    extra = set(result) - allowed
    if extra:
        raise ValueError(f"unexpected fields in the proxy answer: {sorted(extra)}")
    status = result.get("statusCode", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"invalid statusCode: {status!r}")
    headers: list[tuple[str, str]] = []
    single = result.get("headers")
    multi = result.get("multiValueHeaders")
    single = {} if single is None else single
    multi = {} if multi is None else multi
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        raise ValueError("headers must be objects")
    for key, value in single.items():
        if key not in multi:
            headers.append((str(key), str(value)))
    for key, values in multi.items():
        if not isinstance(values, list):
            raise ValueError(f"multiValueHeaders[{key!r}] must be a list")
        headers.extend((str(key), str(v)) for v in values)
    body = result.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if result.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("isBase64Encoded body is not valid base64") from None
        else:
            data = body.encode("utf-8")
    else:
        raise ValueError("body must be a string")
    return ProxyResponse(status=status, headers=headers, body=data)


def dumps_event(event: Mapping[str, Any]) -> str:
    return json.dumps(event, indent=2, sort_keys=False)
