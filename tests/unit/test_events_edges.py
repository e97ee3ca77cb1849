"""Event parsing at its edges: what mutation testing (`make mutate`) found unpinned.

Which field each source's path, method, headers and body come from (rawPath before
requestContext.http.path; header names lower-cased; cookies joined as one header; base64 only when
marked), what a direct invoke looks like, and the words of each refusal. All through parse_event.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from lambdavision.core.errors import BadRequest
from lambdavision.core.events import ApiRequest, DirectInvoke, infer_source, parse_event


def http_v2(**fields: Any) -> dict[str, Any]:
    http = fields.pop("http", {"method": "post", "path": "/from-context"})
    return {"version": "2.0", "requestContext": {"http": http}, **fields}


def rest_v1(**fields: Any) -> dict[str, Any]:
    return {"httpMethod": "POST", "requestContext": {}, **fields}


def test_http_api_path_prefers_raw_path_then_the_context_path_then_slash() -> None:
    """Rule: rawPath, else requestContext.http.path, else '/'."""
    assert parse_event(http_v2(rawPath="/raw"))[1].path == "/raw"
    assert parse_event(http_v2())[1].path == "/from-context"
    assert parse_event(http_v2(http={"method": "GET"}))[1].path == "/"
    assert parse_event(http_v2(http={}))[1].method == ""


def test_rest_api_defaults_for_a_missing_method_and_path() -> None:
    """Rule: a missing path is '/', a missing method is '' (then refused by the handler, not guessed)."""
    request = parse_event(rest_v1(httpMethod=None))[1]
    assert (request.method, request.path) == ("", "/")


def test_http_api_headers_are_read_and_lower_cased_and_cookies_joined() -> None:
    """Rule: header names are lower-cased; a cookies list becomes one Cookie header."""
    source, request = parse_event(
        http_v2(headers={"Content-Type": "image/png", "X-Gone": None}, cookies=["a=1", "b=2"])
    )
    assert source.name == "apigateway-http"
    assert request.headers == {"content-type": "image/png", "cookie": "a=1; b=2"}
    assert request.content_type == "image/png"


@pytest.mark.parametrize("cookies", [[], "a=1", None])
def test_only_a_non_empty_cookies_list_makes_a_cookie_header(cookies: Any) -> None:
    """Rule: an empty list, a string or null adds no Cookie header."""
    assert "cookie" not in parse_event(http_v2(cookies=cookies))[1].headers


def test_version_2_without_an_http_context_is_not_an_http_api_event() -> None:
    """Rule: payload 2.0 needs requestContext.http; without it the event is a direct invoke."""
    assert infer_source({"version": "2.0", "requestContext": {}}) is DirectInvoke
    assert infer_source({"version": "2.0"}) is DirectInvoke


def test_a_direct_invoke_is_a_json_post_to_invocations() -> None:
    """Rule: the event itself is the JSON payload, as a POST /invocations with no body."""
    event = {"url": "https://example.com/a.jpg"}
    source, request = parse_event(event)
    assert source is DirectInvoke
    assert request == ApiRequest(
        source="direct",
        method="POST",
        path="/invocations",
        headers={"content-type": "application/json"},
        query={},
        body=b"",
        json_body=event,
    )


def test_the_body_is_bytes_and_base64_only_when_marked() -> None:
    """Rule: no body is b''; text is UTF-8 (lone surrogates kept); base64 is decoded only if marked True."""
    assert parse_event(rest_v1())[1].body == b""
    assert parse_event(rest_v1(body="aGk="))[1].body == b"aGk="
    assert parse_event(rest_v1(body="aGk=", isBase64Encoded=True))[1].body == b"hi"
    assert parse_event(rest_v1(body="aGk=", isBase64Encoded="true"))[1].body == b"aGk="
    assert parse_event(http_v2(body="\ud800"))[1].body == "\ud800".encode("utf-8", "surrogatepass")
    png = bytes(range(256))
    assert parse_event(http_v2(body=base64.b64encode(png).decode(), isBase64Encoded=True))[1].body == png


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (rest_v1(body=123), "event body must be a string"),
        (
            rest_v1(body="not base64!", isBase64Encoded=True),
            "event body is marked isBase64Encoded but is not valid base64",
        ),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(event: dict[str, Any], message: str) -> None:
    """Rule: a malformed body is a 400 that says what is wrong."""
    with pytest.raises(BadRequest) as caught:
        parse_event(event)
    assert caught.value.message == message


class _Unreadable(Mapping[str, Any]):
    """A requestContext.http whose fields cannot be read: parsing fails inside the source's parser."""

    def __getitem__(self, key: str) -> Any:
        raise TypeError(f"cannot read {key}")

    def __iter__(self) -> Iterator[str]:
        return iter(["method"])

    def __len__(self) -> int:
        return 1


def test_a_malformed_event_of_a_known_source_names_the_source() -> None:
    """Rule: a parser failing on an event is a 400 'malformed <source> event: <why>', never a 500."""
    with pytest.raises(BadRequest) as caught:
        parse_event(http_v2(http=_Unreadable()))
    assert caught.value.status == 400
    assert caught.value.message == "malformed apigateway-http event: cannot read method"
