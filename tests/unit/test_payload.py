"""Request bodies -> ClassifyRequest."""

from __future__ import annotations

import base64
import json

import pytest

from lambdavision.core.errors import BadRequest, LambdaVisionError, PayloadTooLarge
from lambdavision.core.events import ApiRequest
from lambdavision.core.payload import parse_request

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20


def req(body: bytes, ctype: str = "application/json", query: dict[str, str] | None = None) -> ApiRequest:
    return ApiRequest("test", "POST", "/invocations", {"content-type": ctype}, query or {}, body)


def test_guide_url() -> None:
    parsed = parse_request(req(b'{"url": " https://x/y.jpg "}'))
    assert parsed.urls == ["https://x/y.jpg"]
    assert (parsed.batch, parsed.topk, parsed.input_kind) == (False, 3, "url")


def test_base64_and_data_url() -> None:
    b64 = base64.b64encode(JPEG).decode()
    assert parse_request(req(json.dumps({"image": b64}).encode())).images == [JPEG]
    assert parse_request(req(json.dumps({"image": "data:image/jpeg;base64," + b64}).encode())).images == [JPEG]


def test_raw_image_with_topk_query() -> None:
    parsed = parse_request(req(JPEG, "image/jpeg", {"topk": "5"}))
    assert (parsed.images, parsed.topk, parsed.input_kind) == ([JPEG], 5, "raw")


def test_raw_image_without_content_type_is_sniffed() -> None:
    assert parse_request(req(JPEG, "")).images == [JPEG]


def test_direct_invoke_json_body() -> None:
    request = ApiRequest("direct", "POST", "/", {}, {}, b"", json_body={"url": "http://a/b.png", "topk": 1})
    parsed = parse_request(request)
    assert (parsed.urls, parsed.topk) == (["http://a/b.png"], 1)


def test_batch_keeps_per_item_errors() -> None:
    good = base64.b64encode(JPEG).decode()
    parsed = parse_request(req(json.dumps({"images": [good, "!!", good]}).encode()))
    assert parsed.batch
    assert parsed.images[0] == JPEG and parsed.images[2] == JPEG
    assert isinstance(parsed.images[1], LambdaVisionError) and parsed.images[1].status == 400


@pytest.mark.parametrize(
    ("body", "ctype", "error", "needle"),
    [
        (b"{", "application/json", BadRequest, "not valid JSON"),
        (b'"just a string"', "application/json", BadRequest, "must be an object"),
        (b"{}", "application/json", BadRequest, "missing field"),
        (b'{"url": "a", "image": "b"}', "application/json", BadRequest, "only one"),
        (b'{"url": ""}', "application/json", BadRequest, "non-empty"),
        (b'{"url": "x", "topk": true}', "application/json", BadRequest, "topk"),
        (b'{"url": "x", "topk": 0}', "application/json", BadRequest, "topk"),
        (b'{"urls": []}', "application/json", BadRequest, "non-empty list"),
        (b'{"urls": "x"}', "application/json", BadRequest, "non-empty list"),
        (json.dumps({"urls": ["x"] * 17}).encode(), "application/json", PayloadTooLarge, "at most 16"),
        (b"", "application/json", BadRequest, "empty"),
        (b"\xff\xfe\x00garbage", "text/plain", BadRequest, "not valid JSON"),
        (b"[" * 100000, "application/json", BadRequest, "not valid JSON"),
    ],
)
def test_bad_bodies(body: bytes, ctype: str, error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle):
        parse_request(req(body, ctype))


def test_raw_image_over_cap() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_request(req(JPEG * 100, "image/jpeg"), max_bytes=100)


def test_bad_topk_query() -> None:
    with pytest.raises(BadRequest):
        parse_request(req(JPEG, "image/jpeg", {"topk": "many"}))
