"""The socket-free gateway for HTTP API routes (payload 2.0) and for methods that require an API key."""

from __future__ import annotations

import base64
import json

from lambdavision.cfn import ApiRoute
from lambdavision.core.events import infer_source, parse_event
from lambdavision.local.gateway import LocalGateway
from lambdavision.local.http_api import is_text_media_type
from tests.unit.test_gateway import BINARY_TYPES, FakeFunctions, invocation, ok, request

V2_ROUTES = [
    ApiRoute("POST", "/v2/invocations", "Fn", payload_version="2.0"),
    ApiRoute("GET", "/v2/items/{name}", "Fn", payload_version="2.0"),
    ApiRoute("POST", "/keyed", "Fn", api_key_required=True),
    ApiRoute("GET", "/", "Fn"),
]


def gateway(fake: FakeFunctions) -> LocalGateway:
    return LocalGateway(V2_ROUTES, fake, BINARY_TYPES)


def test_an_http_api_route_sends_a_payload_2_event_the_handler_reads_as_one() -> None:
    fake = FakeFunctions()
    gateway(fake).handle(request("GET", "/v2/items/a%20b", query=[("q", "1")], headers=[("X-Thing", "1")]))
    ((function_id, event),) = fake.calls
    assert function_id == "Fn"
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /v2/items/{name}"
    assert event["rawPath"] == "/v2/items/a b" and event["pathParameters"] == {"name": "a b"}
    assert event["queryStringParameters"] == {"q": "1"} and event["headers"]["x-thing"] == "1"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert infer_source(event).__name__ == "HttpApiV2"
    assert parse_event(event)[1].method == "GET"


def test_an_http_api_base64_encodes_a_body_that_is_not_text() -> None:
    fake = FakeFunctions()
    gw = gateway(fake)
    gw.handle(request("POST", "/v2/invocations", headers=[("Content-Type", "image/jpeg")], body=b"\xff\xd8jpeg"))
    gw.handle(request("POST", "/v2/invocations", headers=[("Content-Type", "application/json")], body=b'{"a": 1}'))
    (_, binary), (_, text) = fake.calls
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\xff\xd8jpeg"
    assert text["isBase64Encoded"] is False and text["body"] == '{"a": 1}'
    assert [is_text_media_type(t) for t in ("text/plain; charset=utf-8", "application/ld+json", None, "image/png")] == [
        True,
        True,
        True,
        False,
    ]


def test_an_http_api_answer_may_be_plain_json_and_sends_cookies() -> None:
    plain = gateway(FakeFunctions(lambda event: invocation({"class": "cat"}))).handle(
        request("POST", "/v2/invocations")
    )
    assert (plain.status, json.loads(plain.body), plain.header("Content-Type")) == (
        200,
        {"class": "cat"},
        "application/json",
    )
    proxied = gateway(
        FakeFunctions(
            lambda event: invocation({"statusCode": 201, "body": "aGk=", "isBase64Encoded": True, "cookies": ["a=1"]})
        )
    ).handle(request("POST", "/v2/invocations", headers=[("Accept", "text/plain")]))
    # An HTTP API decodes a base64 answer for every client (a REST API only for binary Accept types).
    assert (proxied.status, proxied.body, proxied.header("Set-Cookie")) == (201, b"hi", "a=1")
    broken = gateway(FakeFunctions(lambda event: invocation({"statusCode": "x"}))).handle(
        request("POST", "/v2/invocations")
    )
    assert broken.status == 502


def test_a_method_that_requires_an_api_key_is_403_forbidden_without_one() -> None:
    fake = FakeFunctions(lambda event: ok('{"ok": true}'))
    gw = gateway(fake)
    refused = gw.handle(request("POST", "/keyed"))
    assert (refused.status, json.loads(refused.body), refused.header("x-amzn-ErrorType")) == (
        403,
        {"message": "Forbidden"},
        "ForbiddenException",
    )
    assert fake.calls == []  # never reached the function
    allowed = gw.handle(request("POST", "/keyed", headers=[("X-API-Key", "any-key-locally")]))
    assert allowed.status == 200 and len(fake.calls) == 1
    assert fake.calls[0][1]["headers"]["X-API-Key"] == "any-key-locally"
    assert gw.handle(request("GET", "/")).status == 200  # an open method needs none
