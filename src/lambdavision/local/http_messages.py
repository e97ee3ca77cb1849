"""One HTTP request and response as the socket-free gateway sees them, and the answers API Gateway
gives itself, not the function (403, 413, 502, 504: JSON `{"message": ...}`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lambdavision.local.environment import new_request_id

# API Gateway's payload limits: 10 MB per request, 6 MB for a synchronous Lambda answer.
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024


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


__all__ = [
    "MAX_REQUEST_BODY_BYTES",
    "HttpRequest",
    "HttpResponse",
    "endpoint_request_timed_out",
    "forbidden",
    "gateway_error",
    "internal_server_error",
    "missing_authentication_token",
    "request_too_long",
]
