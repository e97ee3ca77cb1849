"""The socket-free gateway: routing, the v1 proxy event it sends, and API Gateway's answers.

The function behind it is a fake `invoke` callable that records the events it gets and answers
with a prepared `Invocation` (real environments are exercised in tests/functional).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdavision.cfn import ApiRoute, TemplateError
from lambdavision.local.gateway import (
    LAMBDA_REQUEST_ID_HEADER,
    MAX_REQUEST_BODY_BYTES,
    HttpRequest,
    HttpResponse,
    LocalGateway,
    RouteTable,
)
from lambdavision.local.pool import Invocation, RequestEntityTooLarge
from lambdavision.local.report import MAX_RESPONSE_BYTES

ROUTES = [
    ApiRoute("POST", "/invocations", "Classify"),
    ApiRoute("GET", "/items/{id}", "GetItem"),
    ApiRoute("GET", "/items/special", "Special"),
    ApiRoute("ANY", "/items/{id}", "AnyItem"),
    ApiRoute("ANY", "/files/{proxy+}", "Files"),
    ApiRoute("GET", "/files/{name}/meta", "Meta"),
    ApiRoute("GET", "/users/{user}/posts/{post}", "Post"),
]
BINARY_TYPES = ["image/*", "application/octet-stream"]


def invocation(payload: Any, error_type: str | None = None, request_id: str = "lambda-req-1") -> Invocation:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Invocation(
        request_id=request_id,
        payload=data,
        error_type=error_type,
        duration_ms=1.0,
        billed_ms=1,
        init_duration_ms=None,
        max_memory_mb=30,
        report_line=f"REPORT RequestId: {request_id}",
    )


def ok(body: str = "{}", **extra: Any) -> Invocation:
    return invocation({"statusCode": 200, "body": body, **extra})


@dataclass
class FakeFunctions:
    """Records (function id, event) pairs; answers with `answer(event)`."""

    answer: Callable[[dict[str, Any]], Invocation] = lambda event: ok()
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, function_id: str, event: dict[str, Any]) -> Invocation:
        self.calls.append((function_id, event))
        return self.answer(event)


def request(
    method: str = "POST",
    path: str = "/invocations",
    *,
    query: list[tuple[str, str]] | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> HttpRequest:
    return HttpRequest(method, path, query or [], headers or [], body, source_ip="127.0.0.9")


def gateway(fake: FakeFunctions, routes: list[ApiRoute] | None = None, **kwargs: Any) -> LocalGateway:
    return LocalGateway(routes if routes is not None else ROUTES, fake, BINARY_TYPES, **kwargs)


def json_body(response: HttpResponse) -> Any:
    return json.loads(response.body)


# ---- routing ----


@pytest.mark.parametrize(
    ("method", "path", "function_id", "resource", "path_parameters"),
    [
        ("POST", "/invocations", "Classify", "/invocations", None),
        ("post", "/invocations/", "Classify", "/invocations", None),
        ("GET", "/items/special", "Special", "/items/special", None),
        ("GET", "/items/42", "GetItem", "/items/{id}", {"id": "42"}),
        ("DELETE", "/items/42", "AnyItem", "/items/{id}", {"id": "42"}),
        ("DELETE", "/items/special", "AnyItem", "/items/{id}", {"id": "special"}),
        ("GET", "/items/a%20b", "GetItem", "/items/{id}", {"id": "a b"}),
        ("GET", "/items/a%2Fb", "GetItem", "/items/{id}", {"id": "a/b"}),
        ("GET", "/files/a/b/c.txt", "Files", "/files/{proxy+}", {"proxy": "a/b/c.txt"}),
        ("GET", "/files/x/meta", "Meta", "/files/{name}/meta", {"name": "x"}),
        ("POST", "/files/x/meta", "Files", "/files/{proxy+}", {"proxy": "x/meta"}),
        ("GET", "/files/x", "Files", "/files/{proxy+}", {"proxy": "x"}),
        ("GET", "/users/7/posts/9", "Post", "/users/{user}/posts/{post}", {"user": "7", "post": "9"}),
    ],
)
def test_a_request_reaches_the_most_specific_route(
    method: str, path: str, function_id: str, resource: str, path_parameters: dict[str, str] | None
) -> None:
    fake = FakeFunctions()
    response = gateway(fake).handle(request(method, path))
    assert response.status == 200
    [(called, event)] = fake.calls
    assert called == function_id
    assert event["resource"] == resource
    assert event["requestContext"]["resourcePath"] == resource
    assert event["pathParameters"] == path_parameters
    assert event["httpMethod"] == method.upper()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/invocations"),  # right path, method not declared
        ("POST", "/nowhere"),
        ("GET", "/files"),  # {proxy+} needs at least one segment
        ("GET", "/items/1/2"),
        ("GET", "/"),  # left free: nothing special unless a route declares it
    ],
)
def test_unknown_route_is_403_missing_authentication_token(method: str, path: str) -> None:
    fake = FakeFunctions()
    response = gateway(fake).handle(request(method, path))
    assert response.status == 403
    assert json_body(response) == {"message": "Missing Authentication Token"}
    assert response.header("Content-Type") == "application/json"
    assert response.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    assert fake.calls == []


def test_a_catch_all_proxy_route_takes_every_path_but_the_root() -> None:
    fake = FakeFunctions()
    routes = [ApiRoute("ANY", "/{proxy+}", "All")]
    assert gateway(fake, routes).handle(request("PUT", "/a/b")).status == 200
    assert fake.calls[0][1]["pathParameters"] == {"proxy": "a/b"}
    assert gateway(fake, routes).handle(request("GET", "/")).status == 403


def test_a_root_route_is_an_ordinary_route() -> None:
    fake = FakeFunctions()
    response = gateway(fake, [ApiRoute("GET", "/", "Root")]).handle(request("GET", "/"))
    assert response.status == 200
    assert fake.calls[0][1]["resource"] == "/"


def test_a_greedy_segment_must_be_last() -> None:
    with pytest.raises(TemplateError, match="last segment"):
        RouteTable([ApiRoute("GET", "/{proxy+}/x", "F")])


# ---- the event ----


def test_the_event_carries_method_path_query_headers_and_context() -> None:
    fake = FakeFunctions()
    response = gateway(fake, stage="Dev").handle(
        request(
            "POST",
            "/invocations",
            query=[("top", "3"), ("tag", "a"), ("tag", "b")],
            headers=[("Content-Type", "application/json"), ("X-Multi", "1"), ("X-Multi", "2")],
            body=b'{"url": "http://127.0.0.1/x.jpg"}',
        )
    )
    [(_, event)] = fake.calls
    assert event["path"] == "/invocations"
    assert event["queryStringParameters"] == {"top": "3", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"top": ["3"], "tag": ["a", "b"]}
    assert event["headers"]["X-Multi"] == "2"
    assert event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["body"] == '{"url": "http://127.0.0.1/x.jpg"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "Dev"
    assert context["identity"]["sourceIp"] == "127.0.0.9"
    # The API request id in the event is the one in the response header, as on AWS.
    assert response.header("x-amzn-RequestId") == context["requestId"]
    assert response.header(LAMBDA_REQUEST_ID_HEADER) == "lambda-req-1"


def test_a_request_without_body_or_query_has_null_fields() -> None:
    fake = FakeFunctions()
    gateway(fake).handle(request("GET", "/items/1"))
    [(_, event)] = fake.calls
    assert event["body"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_a_binary_media_type_body_is_sent_base64_encoded() -> None:
    jpeg = bytes(range(256)) * 4
    fake = FakeFunctions()
    gateway(fake).handle(request(headers=[("Content-Type", "image/jpeg")], body=jpeg))
    [(_, event)] = fake.calls
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == jpeg


def test_a_text_body_is_sent_as_text_even_when_it_looks_binary() -> None:
    fake = FakeFunctions()
    gateway(fake).handle(request(headers=[("Content-Type", "text/plain")], body=b"caf\xc3\xa9"))
    [(_, event)] = fake.calls
    assert event["isBase64Encoded"] is False
    assert event["body"] == "café"


# ---- the answer ----


def test_the_function_answer_becomes_the_response() -> None:
    fake = FakeFunctions(
        answer=lambda event: invocation(
            {
                "statusCode": 201,
                "headers": {"Content-Type": "text/plain", "X-One": "1", "Content-Length": "999"},
                "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
                "body": "created",
            }
        )
    )
    response = gateway(fake).handle(request())
    assert response.status == 201
    assert response.body == b"created"
    assert response.header("Content-Type") == "text/plain"
    assert response.header("X-One") == "1"
    assert [value for name, value in response.headers if name == "Set-Cookie"] == ["a=1", "b=2"]
    # Framing is the HTTP shell's job: the function's Content-Length is not passed on.
    assert response.header("Content-Length") is None


def test_a_base64_answer_is_decoded() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    fake = FakeFunctions(
        answer=lambda event: ok(
            base64.b64encode(png).decode(), isBase64Encoded=True, headers={"Content-Type": "image/png"}
        )
    )
    response = gateway(fake).handle(request(headers=[("Accept", "image/png, */*;q=0.8")]))
    assert response.status == 200
    assert response.body == png
    assert response.header("Content-Type") == "image/png"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html, image/png"])
def test_a_base64_answer_is_sent_as_base64_text_unless_the_first_accept_type_is_binary(accept: str | None) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    text = base64.b64encode(png).decode()
    fake = FakeFunctions(answer=lambda event: ok(text, isBase64Encoded=True, headers={"Content-Type": "image/png"}))
    headers = [("Accept", accept)] if accept is not None else []
    response = gateway(fake).handle(request(headers=headers))
    assert (response.status, response.body) == (200, text.encode())


def test_an_answer_without_content_type_is_json_like_api_gateway() -> None:
    response = gateway(FakeFunctions()).handle(request())
    assert response.header("Content-Type") == "application/json"


def test_an_answer_with_only_a_status_has_an_empty_body() -> None:
    fake = FakeFunctions(answer=lambda event: invocation({"statusCode": 204}))
    response = gateway(fake).handle(request())
    assert (response.status, response.body) == (204, b"")


BAD_ANSWERS: dict[str, Invocation] = {
    "handler exception": invocation(
        {"errorMessage": "boom", "errorType": "RuntimeError", "stackTrace": []}, error_type="Unhandled"
    ),
    "timeout": invocation({"errorMessage": "Task timed out after 1.00 seconds"}, error_type="Sandbox.Timedout"),
    "not JSON": invocation(b"this is not json"),
    "not an object": invocation(["statusCode", 200]),
    "status not a number": invocation({"statusCode": "200 OK", "body": ""}),
    "status out of range": invocation({"statusCode": 99, "body": ""}),
    "body not a string": invocation({"statusCode": 200, "body": {"class": "cat"}}),
    "unknown field": invocation({"statusCode": 200, "body": "", "extra": 1}),
    "bad base64": invocation({"statusCode": 200, "body": "@@@", "isBase64Encoded": True}),
    "header with a newline": invocation({"statusCode": 200, "headers": {"X-Evil": "a\r\nSet-Cookie: x=1"}}),
    "header value outside Latin-1": invocation({"statusCode": 200, "headers": {"X-Name": "caf\u00e9 \u2615"}}),
    "header name outside Latin-1": invocation({"statusCode": 200, "headers": {"X-\u2615": "tea"}}),
    "over 6 MB": invocation({"statusCode": 200, "body": "x" * MAX_RESPONSE_BYTES}),
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_a_failed_or_malformed_answer_is_502(case: str) -> None:
    logged: list[str] = []
    fake = FakeFunctions(answer=lambda event: BAD_ANSWERS[case])
    response = gateway(fake, log=logged.append).handle(request())
    assert response.status == 502
    assert json_body(response) == {"message": "Internal server error"}
    assert response.header(LAMBDA_REQUEST_ID_HEADER) == "lambda-req-1"
    assert len(logged) == 1  # the terminal says why


def test_an_invoke_that_raises_is_502_and_the_gateway_keeps_working() -> None:
    calls = {"n": 0}

    def flaky(event: dict[str, Any]) -> Invocation:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("pool closed")
        return ok()

    gw = gateway(FakeFunctions(answer=flaky), log=lambda message: None)
    assert gw.handle(request()).status == 502
    assert gw.handle(request()).status == 200


def test_a_body_over_10_mb_is_413_and_never_reaches_the_function() -> None:
    fake = FakeFunctions()
    gw = gateway(fake)
    too_long = gw.handle(request(body=b"x" * (MAX_REQUEST_BODY_BYTES + 1)))
    assert too_long.status == 413
    assert json_body(too_long) == {"message": "Request Too Long"}
    assert fake.calls == []
    assert gw.handle(request(body=b"x" * MAX_REQUEST_BODY_BYTES)).status == 200


def test_the_event_path_is_decoded() -> None:
    fake = FakeFunctions()
    gateway(fake).handle(request("GET", "/items/caf%C3%A9%20au%20lait"))
    [(_, event)] = fake.calls
    assert event["path"] == "/items/café au lait"
    assert event["pathParameters"] == {"id": "café au lait"}


def test_an_event_lambda_refuses_as_too_large_is_413_request_too_long() -> None:
    logged: list[str] = []

    def refuse(event: dict[str, Any]) -> Invocation:
        raise RequestEntityTooLarge("RequestEntityTooLargeException: the event is 7000000 bytes")

    response = gateway(FakeFunctions(answer=refuse), log=logged.append).handle(request())
    assert (response.status, json_body(response)) == (413, {"message": "Request Too Long"})
    assert len(logged) == 1


def test_an_invocation_over_the_integration_timeout_is_504_and_still_finishes() -> None:
    release, finished = threading.Event(), threading.Event()

    def slow(event: dict[str, Any]) -> Invocation:
        release.wait(60)
        finished.set()
        return ok()

    logged: list[str] = []
    gw = gateway(FakeFunctions(answer=slow), log=logged.append, integration_timeout_s=0.2)
    response = gw.handle(request())
    assert (response.status, json_body(response)) == (504, {"message": "Endpoint request timed out"})
    assert len(logged) == 1
    release.set()
    assert finished.wait(60)  # the invocation went on after the client's 504
