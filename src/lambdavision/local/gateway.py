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
from typing import Any
from urllib.parse import unquote

from lambdavision.cfn import ApiRoute
from lambdavision.core.event_builders import build_http_v2_event, build_rest_v1_event, is_binary_media_type
from lambdavision.core.proxy_response import parse_proxy_response
from lambdavision.local.environment import new_request_id
from lambdavision.local.http_api import http_api_answer, is_text_media_type
from lambdavision.local.http_messages import (
    MAX_REQUEST_BODY_BYTES,
    HttpRequest,
    HttpResponse,
    endpoint_request_timed_out,
    forbidden,
    internal_server_error,
    missing_authentication_token,
    request_too_long,
)
from lambdavision.local.pool import Invocation, RequestEntityTooLarge
from lambdavision.local.report import MAX_RESPONSE_BYTES
from lambdavision.local.route_table import RouteTable

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


__all__ = ["DEFAULT_INTEGRATION_TIMEOUT_S", "LAMBDA_REQUEST_ID_HEADER", "LocalGateway"]
