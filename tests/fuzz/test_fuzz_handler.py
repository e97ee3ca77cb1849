"""Property: whatever event arrives, the handler answers a well-formed response and never raises.

Every answer is a 200 with a valid prediction or a 4xx with {"error": ...}; a 500 would be a bug
(each one found gets its own regression test in tests/functional/test_handler.py).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from lambdavision.core.event_builders import build_http_v2_event, build_rest_v1_event
from lambdavision.runtime.app import App
from lambdavision.runtime.fetch import FetchPolicy
from lambdavision.runtime.loader import load_classifier
from tests.fuzz.budget import FUZZ_SETTINGS, Counter, run_budget

CONTEXT = SimpleNamespace(aws_request_id="fuzz")


def sample_images() -> list[bytes]:
    out = []
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP"):
        buf = io.BytesIO()
        Image.new("RGB", (48, 40), (200, 30, 40)).save(buf, fmt)
        out.append(buf.getvalue())
    return out


IMAGES = sample_images()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_image(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(IMAGES)))
    for _ in range(draw(st.integers(0, 8))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


# URLs that never reach DNS or the network: no scheme, refused schemes, refused IP literals.
urls = st.one_of(
    st.text(max_size=30).filter(lambda s: "://" not in s),
    st.builds(lambda s: "ftp://" + s, st.text(max_size=10)),
    st.sampled_from(["http://169.254.169.254/", "http://10.0.0.1/x.jpg", "http://[::1]/", "file:///etc/passwd"]),
)

payloads = st.one_of(
    st.fixed_dictionaries({"url": urls}),
    st.fixed_dictionaries(
        {"image": st.one_of(st.text(max_size=40), mutated_image().map(lambda b: base64.b64encode(b).decode()))}
    ),
    st.fixed_dictionaries(
        {"images": st.lists(mutated_image().map(lambda b: base64.b64encode(b).decode()), max_size=3)}
    ),
    st.dictionaries(st.sampled_from(["url", "image", "urls", "images", "topk", "x"]), json_values, max_size=3),
    json_values,
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str, bool]:
    kind = draw(st.sampled_from(["json", "bytes", "image", "badb64"]))
    if kind == "json":
        return json.dumps(draw(payloads)).encode(), "application/json", False
    if kind == "image":
        return draw(mutated_image()), draw(st.sampled_from(["image/jpeg", "application/octet-stream", ""])), True
    if kind == "badb64":
        return draw(st.binary(max_size=64)), "image/png", False
    return draw(st.binary(max_size=256)), draw(st.sampled_from(["text/plain", "application/json", "image/gif"])), True


@st.composite
def events(draw: st.DrawFn) -> Any:
    body, ctype, binary = draw(bodies())
    shape = draw(st.sampled_from(["v1", "v2", "url", "direct", "junk"]))
    if shape == "junk":
        return draw(json_values)
    if shape == "direct":
        return draw(payloads)
    method = draw(st.sampled_from(["POST", "POST", "GET", "PUT", "OPTIONS", ""]))
    if shape == "v1":
        event = build_rest_v1_event(
            method=method,
            path="/invocations",
            resource="/invocations",
            path_parameters=None,
            query=[],
            headers=[("Content-Type", ctype)],
            body=body,
            binary=binary,
        )
    else:
        event = build_http_v2_event(
            method=method,
            path="/invocations",
            query=[],
            headers=[("content-type", ctype)],
            body=body,
            binary=binary,
            function_url=shape == "url",
        )
    # Break the event: drop fields or replace them with values of the wrong type.
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=3)):
        if draw(st.booleans()):
            event.pop(key, None)
        else:
            event[key] = draw(json_values)
    return event


@pytest.fixture(scope="module")
def app(colour_artifact: Path) -> App:
    return App(load_classifier(colour_artifact), FetchPolicy(total_timeout=1.0), out=io.StringIO())


def check_answer(result: Any) -> None:
    assert isinstance(result, dict)
    assert set(result) == {"statusCode", "headers", "body", "isBase64Encoded"}
    status = result["statusCode"]
    assert status == 200 or 400 <= status < 500 or status == 204, result
    if result["headers"]["Content-Type"].startswith("text/html"):
        return
    if status == 204:
        return
    body = json.loads(result["body"])
    if status >= 400:
        assert isinstance(body["error"], str) and body["error"]
    elif "results" in body:
        for item in body["results"]:
            assert ("class" in item and 0 <= item["confidence"] <= 1) or (
                "error" in item and 400 <= item["status"] < 500
            )
    else:
        assert body["class"] in ("red", "green", "blue") and 0 <= body["confidence"] <= 1


def test_handler_never_raises_and_answers_well_formed(app: App) -> None:
    counter = Counter()

    @FUZZ_SETTINGS
    @given(events())
    def target(event: Any) -> None:
        counter.tick()
        check_answer(app(event, CONTEXT))

    run_budget("handler", target, counter)
