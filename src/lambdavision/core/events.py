"""Lambda event sources: infer which one sent an event, parse it, and render the answer.

One class per source, the first whose `infer` matches wins (mangum's habit). Function URLs send
payload-2.0 events, so `FunctionUrl` is an `HttpApiV2` with no code of its own beyond `infer`.
`core.event_builders` builds the same events for local use (round-trip tested against this
parser), so the local gateway never sends an event the handler would not receive on AWS;
`core.proxy_response` reads the function's answer as API Gateway does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
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


__all__ = [
    "EVENT_SOURCES",
    "ApiRequest",
    "DirectInvoke",
    "EventSource",
    "FunctionUrl",
    "HttpApiV2",
    "Response",
    "RestApiV1",
    "error_response",
    "infer_source",
    "parse_event",
]
