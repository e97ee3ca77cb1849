"""Event sources: exactly one infers each real event; build -> infer -> parse round-trips."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from lambdavision.core.errors import BadRequest
from lambdavision.core.event_builders import build_http_v2_event, build_rest_v1_event, is_binary_media_type
from lambdavision.core.events import (
    EVENT_SOURCES,
    DirectInvoke,
    FunctionUrl,
    HttpApiV2,
    Response,
    RestApiV1,
    error_response,
    infer_source,
    parse_event,
)
from lambdavision.core.proxy_response import parse_proxy_response

EVENTS = Path(__file__).parent.parent / "events"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("apigw-rest-v1.json", RestApiV1),
        ("apigw-http-v2.json", HttpApiV2),
        ("function-url.json", FunctionUrl),
        ("direct.json", DirectInvoke),
    ],
)
def test_real_events_infer_their_source_first(name: str, source: type) -> None:
    event = load(name)
    assert infer_source(event) is source
    # Specific sources are exclusive: only the expected one (and for Function URL its v2 parent) match.
    specific = [s for s in EVENT_SOURCES if s is not DirectInvoke and s.infer(event)]
    expected = {FunctionUrl: [FunctionUrl, HttpApiV2], DirectInvoke: []}.get(source, [source])
    assert specific == expected


def test_rest_v1_parse() -> None:
    _, request = parse_event(load("apigw-rest-v1.json"))
    assert request.source == "apigateway-rest"
    assert (request.method, request.path) == ("POST", "/invocations")
    assert request.content_type == "application/json"
    assert json.loads(request.body) == {"url": "https://example.com/dog.jpg"}
    assert request.query == {"foo": "bar"}


def test_http_v2_parse_keeps_query_and_cookies() -> None:
    _, request = parse_event(load("apigw-http-v2.json"))
    assert request.source == "apigateway-http"
    assert request.query == {"topk": "2"}
    assert request.headers["cookie"] == "cookie1=value1"


def test_function_url_binary_body_is_decoded() -> None:
    event = load("function-url.json")
    _, request = parse_event(event)
    assert request.source == "function-url"
    assert request.body == base64.b64decode(event["body"])
    assert request.body.startswith(b"\xff\xd8\xff")


def test_direct_invoke_keeps_the_payload() -> None:
    _, request = parse_event({"url": "https://x/y.png"})
    assert request.json_body == {"url": "https://x/y.png"}


@pytest.mark.parametrize(
    "event",
    [
        {"httpMethod": "POST", "requestContext": {}, "body": 12},
        {"httpMethod": "POST", "requestContext": {}, "body": "%%%", "isBase64Encoded": True},
        {"version": "2.0", "requestContext": {"http": {}}, "body": ["x"]},
    ],
)
def test_malformed_events_are_bad_requests(event: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_event(event)


@pytest.mark.parametrize("event", [None, [], "text", 3])
def test_non_object_events_are_bad_requests(event: Any) -> None:
    with pytest.raises(BadRequest, match="JSON object"):
        parse_event(event)


def test_build_rest_v1_round_trip_text_and_multi_values() -> None:
    event = build_rest_v1_event(
        method="post",
        path="/invocations",
        resource="/invocations",
        path_parameters=None,
        query=[("a", "1"), ("a", "2")],
        headers=[("Content-Type", "application/json"), ("X-Many", "1"), ("X-Many", "2")],
        body=b'{"url": "http://x"}',
        binary=False,
        request_id="rid",
        now=1_700_000_000.0,
    )
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueHeaders"]["X-Many"] == ["1", "2"]
    assert event["requestContext"]["requestId"] == "rid"
    assert event["requestContext"]["stage"] == "Prod"
    assert event["isBase64Encoded"] is False
    source, request = parse_event(event)
    assert source is RestApiV1
    assert request.method == "POST"
    assert request.body == b'{"url": "http://x"}'


def test_build_rest_v1_round_trip_binary() -> None:
    payload = bytes(range(256))
    event = build_rest_v1_event(
        method="POST",
        path="/invocations",
        resource="/invocations",
        path_parameters=None,
        query=[],
        headers=[("Content-Type", "image/jpeg")],
        body=payload,
        binary=True,
    )
    assert event["isBase64Encoded"] is True
    assert parse_event(event)[1].body == payload


@pytest.mark.parametrize(("function_url", "source"), [(False, HttpApiV2), (True, FunctionUrl)])
def test_build_v2_round_trip(function_url: bool, source: type) -> None:
    event = build_http_v2_event(
        method="POST",
        path="/invocations",
        query=[("topk", "2")],
        headers=[("Content-Type", "image/png")],
        body=b"\x89PNG",
        binary=True,
        function_url=function_url,
    )
    got_source, request = parse_event(event)
    assert got_source is source
    assert request.body == b"\x89PNG"
    assert request.query == {"topk": "2"}


def test_render_is_a_proxy_answer_that_the_gateway_accepts() -> None:
    rendered = RestApiV1.render(Response(status=200, body={"class": "cat", "confidence": 0.5}))
    assert rendered["headers"]["Content-Type"] == "application/json"
    assert json.loads(rendered["body"]) == {"class": "cat", "confidence": 0.5}
    parsed = parse_proxy_response(rendered)
    assert parsed.status == 200
    assert json.loads(parsed.body) == {"class": "cat", "confidence": 0.5}


def test_error_response_carries_the_status() -> None:
    response = error_response(BadRequest("missing url"))
    assert response.status == 400
    assert response.body == {"error": "missing url"}


@pytest.mark.parametrize(
    "answer",
    [None, "text", {"statusCode": "200"}, {"statusCode": 99}, {"body": 3}, {"nope": 1}, {"headers": []}],
)
def test_parse_proxy_response_refuses_what_api_gateway_refuses(answer: Any) -> None:
    with pytest.raises(ValueError):
        parse_proxy_response(answer)


def test_parse_proxy_response_merges_headers_and_decodes_base64() -> None:
    parsed = parse_proxy_response(
        {
            "statusCode": 201,
            "headers": {"A": "1", "B": "x"},
            "multiValueHeaders": {"B": ["2", "3"]},
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        }
    )
    assert parsed.headers == [("A", "1"), ("B", "2"), ("B", "3")]
    assert parsed.body == b"\x00\x01"


@pytest.mark.parametrize(
    ("ctype", "types", "expected"),
    [
        ("image/jpeg", ["image/*"], True),
        ("image/png; charset=x", ["image/*", "application/octet-stream"], True),
        ("application/octet-stream", ["image/*", "application/octet-stream"], True),
        ("application/json", ["image/*"], False),
        (None, ["*/*"], False),
        ("text/plain", ["*/*"], True),
    ],
)
def test_binary_media_types(ctype: str | None, types: list[str], expected: bool) -> None:
    assert is_binary_media_type(ctype, types) is expected
