"""API Gateway (REST, and HTTP APIs) + Lambda proxy integration, without a socket.

`LocalGateway.handle` turns one HTTP request into one HTTP response: it matches the request
against the template's routes the way API Gateway does, builds the proxy event with `core.events`
(v1 for a REST route, payload 2.0 for an HTTP API's), calls the function through an injected
`invoke` callable, and translates the function's answer (or failure) into what API Gateway would
send. A route that requires an API key answers 403 `Forbidden` without an `x-api-key` header, as API
Gateway does (locally any key is accepted: the real ones live in API Gateway). The HTTP shell
(`local.http_server`) only moves bytes; tests drive this class directly.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lambdavision.cfn import ApiRoute, TemplateError
from lambdavision.core.events import (
    build_http_v2_event,
    build_rest_v1_event,
    is_binary_media_type,
    parse_proxy_response,
)
from lambdavision.local.environment import new_request_id
from lambdavision.local.http_api import http_api_answer, is_text_media_type
from lambdavision.local.pool import Invocation, RequestEntityTooLarge
from lambdavision.local.report import MAX_RESPONSE_BYTES

# API Gateway's payload limits: 10 MB per request, 6 MB for a synchronous Lambda answer.
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024
# API Gateway REST's integration timeout: the client gets a 504 then, whatever the function's Timeout.
DEFAULT_INTEGRATION_TIMEOUT_S = 29.0

# The header carrying the Lambda request id, so a response can be matched to its REPORT line.
LAMBDA_REQUEST_ID_HEADER = "Lambda-Runtime-Aws-Request-Id"

# Hop-by-hop and framing headers belong to the HTTP shell, never to the function's answer.
_SHELL_OWNED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

Invoke = Callable[[str, dict[str, Any]], Invocation]
Log = Callable[[str], None]


@dataclass
class HttpRequest:
    """One HTTP request as received: `path` still percent-encoded, without the query string."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        """The first value of a header, by case-insensitive name."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def gateway_error(status: int, message: str, error_type: str, request_id: str) -> HttpResponse:
    """An answer API Gateway itself gives (not the function): JSON `{"message": ...}`."""
    body = json.dumps({"message": message}).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error_type),
    ]
    return HttpResponse(status, headers, body)


def missing_authentication_token(request_id: str) -> HttpResponse:
    """API Gateway's answer for a path or method no route declares."""
    return gateway_error(403, "Missing Authentication Token", "MissingAuthenticationTokenException", request_id)


def forbidden(request_id: str) -> HttpResponse:
    """API Gateway's answer to a request without the API key a method requires."""
    return gateway_error(403, "Forbidden", "ForbiddenException", request_id)


def internal_server_error(request_id: str) -> HttpResponse:
    """API Gateway's answer when the Lambda integration fails."""
    return gateway_error(502, "Internal server error", "InternalServerErrorException", request_id)


def endpoint_request_timed_out(request_id: str) -> HttpResponse:
    """API Gateway's answer when the integration outlasts its timeout (the function goes on)."""
    return gateway_error(504, "Endpoint request timed out", "InternalServerErrorException", request_id)


def request_too_long(request_id: str | None = None) -> HttpResponse:
    """API Gateway's answer for a request body over 10 MB (the HTTP shell uses it before reading)."""
    return gateway_error(413, "Request Too Long", "RequestTooLongException", request_id or new_request_id())


# Segment kinds, in API Gateway's order of precedence: a literal beats {param} beats {proxy+}.
_LITERAL, _PARAM, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class _Segment:
    kind: int
    text: str  # the literal text, or the parameter's name


@dataclass(frozen=True)
class CompiledRoute:
    route: ApiRoute
    segments: tuple[_Segment, ...]

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        """Path parameters when `parts` (decoded path segments) fit this route, else None."""
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.kind == _GREEDY:
                if index >= len(parts):  # {proxy+} needs at least one segment
                    return None
                params[segment.text] = "/".join(parts[index:])
                return params
            if index >= len(parts):
                return None
            if segment.kind == _LITERAL:
                if parts[index] != segment.text:
                    return None
            else:
                params[segment.text] = parts[index]
        return params if len(parts) == len(self.segments) else None

    def precedence(self) -> tuple[tuple[int, ...], int]:
        """Sort key: most specific first, segment by segment; an exact method before ANY."""
        kinds = tuple(segment.kind for segment in self.segments)
        return kinds, 1 if self.route.method.upper() == "ANY" else 0


def _split_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def compile_route(route: ApiRoute) -> CompiledRoute:
    """Parse a resource path like `/items/{id}/{proxy+}`; a malformed one is a template error."""
    segments: list[_Segment] = []
    parts = _split_path(route.path)
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if name.endswith("+"):
                if index != len(parts) - 1:
                    raise TemplateError(f"route {route.path}: a greedy {{{name}}} must be the last segment")
                segments.append(_Segment(_GREEDY, name[:-1]))
            else:
                segments.append(_Segment(_PARAM, name))
        else:
            segments.append(_Segment(_LITERAL, part))
    return CompiledRoute(route, tuple(segments))


class RouteTable:
    """The template's routes, matched like API Gateway REST."""

    def __init__(self, routes: Sequence[ApiRoute]) -> None:
        compiled = [compile_route(route) for route in routes]
        self._routes = sorted(compiled, key=CompiledRoute.precedence)

    def match(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        """The best route for a method and a percent-encoded path, with its (decoded) path parameters."""
        # Split before decoding: an encoded slash (%2F) stays inside its segment.
        parts = [unquote(part) for part in _split_path(path)]
        method = method.upper()
        # Sorted most specific first, so the first route that fits both method and path wins.
        for candidate in self._routes:
            if candidate.route.method.upper() not in (method, "ANY"):
                continue
            params = candidate.match(parts)
            if params is not None:
                return candidate.route, params
        return None


class LocalGateway:
    """API Gateway REST (v1 proxy integration) in front of local functions."""

    def __init__(
        self,
        routes: Sequence[ApiRoute],
        invoke: Invoke,
        binary_media_types: Sequence[str],
        stage: str = "Prod",
        log: Log | None = None,
        integration_timeout_s: float = DEFAULT_INTEGRATION_TIMEOUT_S,
    ) -> None:
        self._table = RouteTable(routes)
        self._integration_timeout_s = integration_timeout_s
        self._invoke = invoke
        self._binary_media_types = list(binary_media_types)
        self._stage = stage
        self._log = log or (lambda _message: None)

    @property
    def integration_timeout_s(self) -> float:
        return self._integration_timeout_s

    def handle(self, request: HttpRequest) -> HttpResponse:
        api_request_id = new_request_id()
        if len(request.body) > MAX_REQUEST_BODY_BYTES:
            return request_too_long(api_request_id)
        matched = self._table.match(request.method, request.path)
        if matched is None:
            return missing_authentication_token(api_request_id)
        route, path_parameters = matched
        if route.api_key_required and not request.header("x-api-key"):
            return forbidden(api_request_id)
        event = self._event(request, route, path_parameters, api_request_id)
        try:
            invocation = self._invoke_within_timeout(route.function_id, event)
            if invocation is None:
                self._log(
                    f"{route.function_id} did not answer within the {self._integration_timeout_s:g} s integration "
                    "timeout: answering 504 (the invocation goes on)"
                )
                return endpoint_request_timed_out(api_request_id)
        except RequestEntityTooLarge as exc:  # the event (body, base64 and headers) is over Lambda's 6 MB
            self._log(f"{route.function_id}: {exc}: answering 413")
            return request_too_long(api_request_id)
        except Exception as exc:  # a broken pool must not take the server down
            self._log(f"Lambda invocation of {route.function_id} failed: {exc!r}")
            return internal_server_error(api_request_id)
        if route.payload_version == "2.0":
            response = self._translate_v2(route.function_id, invocation, api_request_id)
        else:
            response = self._translate(route.function_id, invocation, api_request_id, request.header("Accept"))
        response.headers.append((LAMBDA_REQUEST_ID_HEADER, invocation.request_id))
        return response

    def _event(
        self, request: HttpRequest, route: ApiRoute, path_parameters: dict[str, str], request_id: str
    ) -> dict[str, Any]:
        if route.payload_version == "2.0":
            return build_http_v2_event(
                method=request.method.upper(),
                path=unquote(request.path),
                query=request.query,
                headers=request.headers,
                body=request.body,
                # An HTTP API has no binary media types: it base64-encodes any body that is not text.
                binary=not is_text_media_type(request.header("Content-Type")),
                route_key=f"{route.method.upper()} {route.path}",
                path_parameters=path_parameters or None,
                source_ip=request.source_ip,
                request_id=request_id,
            )
        return build_rest_v1_event(
            method=request.method.upper(),
            path=unquote(request.path),
            resource=route.path,
            path_parameters=path_parameters or None,
            query=request.query,
            headers=request.headers,
            body=request.body,
            binary=is_binary_media_type(request.header("Content-Type"), self._binary_media_types),
            stage=self._stage,
            source_ip=request.source_ip,
            request_id=request_id,
        )

    def _invoke_within_timeout(self, function_id: str, event: dict[str, Any]) -> Invocation | None:
        """The invocation, None when it outlasts the integration timeout, or what it raised."""
        outcome: list[Invocation] = []
        failure: list[Exception] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append(self._invoke(function_id, event))
            except Exception as exc:  # handed to the request's thread
                failure.append(exc)
            finally:
                done.set()

        # Its own thread, so a late invocation still finishes (logs, REPORT) after the 504.
        threading.Thread(target=run, name=f"lambdavision-invoke-{function_id}", daemon=True).start()
        if not done.wait(self._integration_timeout_s):
            return None
        if failure:
            raise failure[0]
        return outcome[0]

    def _failed(self, function_id: str, invocation: Invocation) -> bool:
        """Whether the invocation failed or answered too much (API Gateway then answers 502)."""
        if invocation.error_type is not None:
            self._log(f"{function_id} failed ({invocation.error_type}): answering 502")
            return True
        if len(invocation.payload) > MAX_RESPONSE_BYTES:
            self._log(
                f"{function_id} answered {len(invocation.payload)} bytes, over Lambda's "
                f"{MAX_RESPONSE_BYTES}-byte limit: answering 502"
            )
            return True
        return False

    def _translate(
        self, function_id: str, invocation: Invocation, api_request_id: str, accept: str | None
    ) -> HttpResponse:
        """The function's answer as API Gateway REST would send it, or a 502 saying why not."""
        if self._failed(function_id, invocation):
            return internal_server_error(api_request_id)
        try:
            answer = json.loads(invocation.payload)
            proxy = parse_proxy_response(answer)
            headers = _clean_headers(proxy.headers)
            if not 100 <= proxy.status <= 599:
                raise ValueError(f"statusCode {proxy.status} is not an HTTP status")
        except ValueError as exc:  # JSONDecodeError is a ValueError too
            self._log(f"Invalid lambda response received from {function_id}: {exc}: answering 502")
            return internal_server_error(api_request_id)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))  # API Gateway's default
        headers.append(("x-amzn-RequestId", api_request_id))
        body = proxy.body
        if answer.get("isBase64Encoded") and not self._wants_binary(accept):
            # API Gateway REST decodes only for a client whose first Accept type is a binary media
            # type of the API; any other client receives the base64 text as the function sent it.
            body = str(answer.get("body") or "").encode("utf-8")
        return HttpResponse(proxy.status, headers, body)

    def _translate_v2(self, function_id: str, invocation: Invocation, api_request_id: str) -> HttpResponse:
        """The function's answer as an HTTP API (payload 2.0) sends it, or a 502 saying why not."""
        if self._failed(function_id, invocation):
            return internal_server_error(api_request_id)
        try:
            status, raw_headers, body = http_api_answer(invocation.payload)
            headers = _clean_headers(raw_headers)
        except ValueError as exc:
            self._log(f"Invalid lambda response received from {function_id}: {exc}: answering 502")
            return internal_server_error(api_request_id)
        headers.append(("apigw-requestid", api_request_id))
        return HttpResponse(status, headers, body)

    def _wants_binary(self, accept: str | None) -> bool:
        first = (accept or "").split(",", 1)[0]
        return is_binary_media_type(first, self._binary_media_types)


def _clean_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop framing headers the shell sets itself; refuse ones that would split the response."""
    cleaned: list[tuple[str, str]] = []
    for name, value in headers:
        # RFC 9110: a name is a token; a value is visible characters, spaces and tabs (no CR, LF, NUL...).
        if not _TOKEN.fullmatch(name) or _FIELD_VALUE_FORBIDDEN.search(value):
            raise ValueError(f"header {name!r} has a control character or is not a valid header")
        try:  # HTTP/1.1 sends header bytes as Latin-1; anything else cannot go on the wire
            name.encode("latin-1")
            value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ValueError(f"header {name!r} has a character outside Latin-1 ({exc.object[exc.start]!r})") from None
        if name.lower() in _SHELL_OWNED_HEADERS:
            continue
        cleaned.append((name, value))
    return cleaned


__all__ = [
    "DEFAULT_INTEGRATION_TIMEOUT_S",
    "LAMBDA_REQUEST_ID_HEADER",
    "MAX_REQUEST_BODY_BYTES",
    "MAX_RESPONSE_BYTES",
    "HttpRequest",
    "HttpResponse",
    "LocalGateway",
    "RouteTable",
    "endpoint_request_timed_out",
    "forbidden",
    "internal_server_error",
    "missing_authentication_token",
    "request_too_long",
]
