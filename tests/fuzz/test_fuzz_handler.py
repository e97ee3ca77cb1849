"""Properties of the handler over fuzzed events, and over URLs that really reach a loopback server.

- Whatever event arrives, the handler answers a well-formed response and never raises: a 200 with a
  valid prediction, a 4xx with {"error": ...}, or (when its image host fails) 502/504; a 500 would
  be a bug (each one found gets its own regression test in tests/functional/test_handler.py).
- Image URLs on a loopback HTTP server (real images, mutated ones, error statuses, redirects, loops,
  a redirect to the metadata service, an endless body), behind every event source and in batches,
  each reach that server and get the status its answer calls for; with the default policy the
  same URLs are refused (400) and the server never sees a request.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from lambdavision.core.event_builders import build_http_v2_event, build_rest_v1_event, invocation_event
from lambdavision.runtime.app import App
from lambdavision.runtime.fetch import FetchPolicy
from lambdavision.runtime.loader import load_classifier
from tests.fixtures.image_server import ImageServer
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
    assert status in (200, 204, 502, 504) or 400 <= status < 500, result
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
                "error" in item and (400 <= item["status"] < 500 or item["status"] in (502, 504))
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


# --- URLs that reach a loopback image server --------------------------------------------------------


@st.composite
def served_urls(draw: st.DrawFn, server: ImageServer) -> tuple[str, str, set[int]]:
    """(the URL, the path the server must see, the statuses the handler may answer)."""
    kind = draw(st.sampled_from(["png", "image", "mutated", "status", "chain", "loop", "metadata", "huge", "missing"]))
    junk = quote(draw(st.text(max_size=12)), safe="")
    if kind == "png":
        path, statuses = "/png", {200}
    elif kind == "image":
        index = draw(st.integers(0, len(IMAGES) - 1))
        path, statuses = server.add(f"/image/{index}", IMAGES[index]).removeprefix(server.url), {200}
    elif kind == "mutated":
        path = f"/mutated/{draw(st.integers(0, 10**9))}"
        server.add(path, draw(mutated_image()))
        statuses = {200, 400, 413, 415, 422}
    elif kind == "status":
        code = draw(st.integers(400, 599))
        path, statuses = f"/status/{code}", {502}
    elif kind == "chain":
        hops = draw(st.integers(0, 5))
        path, statuses = f"/redirect-chain?n={hops}", {200} if hops <= 3 else {502}  # at most 3 redirects
    elif kind == "loop":
        path, statuses = "/redirect-loop", {502}
    elif kind == "metadata":
        path, statuses = "/redirect?to=" + quote("http://169.254.169.254/latest/meta-data/", safe=""), {400}
    elif kind == "huge":
        path, statuses = "/huge", {413}
    else:
        path, statuses = f"/no/such/{junk}", {502}
    separator = "&" if "?" in path else "?"
    suffix = draw(st.sampled_from(["", f"{separator}q={junk}", f"#{junk}"]))
    return server.url_for(path + suffix), path.split("?")[0], statuses


def wrap(body: dict[str, Any], shape: str) -> Any:
    data = json.dumps(body).encode()
    if shape == "direct":
        return body
    if shape == "v1":
        return invocation_event(body)
    return build_http_v2_event(
        method="POST",
        path="/invocations",
        query=[],
        headers=[("content-type", "application/json")],
        body=data,
        binary=False,
        function_url=shape == "url",
    )


def test_urls_reach_a_loopback_server_and_get_the_status_its_answer_calls_for(
    colour_artifact: Path, image_server: ImageServer
) -> None:
    classifier = load_classifier(colour_artifact)
    open_policy = FetchPolicy(allow_private=True, connect_timeout=2.0, total_timeout=5.0, max_bytes=200_000)
    app = App(classifier, open_policy, out=io.StringIO())
    strict = App(classifier, FetchPolicy(), out=io.StringIO())
    counter = Counter()
    seen: dict[int, int] = {}

    @FUZZ_SETTINGS
    @given(
        st.lists(served_urls(image_server), min_size=1, max_size=4),
        st.sampled_from(["direct", "v1", "v2", "url"]),
        st.booleans(),
    )
    def target(urls: list[tuple[str, str, set[int]]], shape: str, batch: bool) -> None:
        counter.tick()
        if not batch:
            urls = urls[:1]
        body = {"urls": [url for url, _, _ in urls]} if batch else {"url": urls[0][0]}
        before = len(image_server.requests)
        result = app(wrap(body, shape), CONTEXT)
        check_answer(result)
        answer = json.loads(result["body"])
        items = answer["results"] if batch else [answer]
        statuses = [item.get("status", 200) if batch else result["statusCode"] for item in items]
        for status, (url, _, allowed) in zip(statuses, urls, strict=True):
            assert status in allowed, (url, status, items)
            seen[status] = seen.get(status, 0) + 1
        asked = {request.path.split("?")[0] for request in image_server.requests[before:]}
        for url, path, _ in urls:
            assert path in asked, f"{url} never reached the server"

        # The default policy refuses loopback before any connection.
        before = len(image_server.requests)
        refused = strict(wrap(body, shape), CONTEXT)
        check_answer(refused)
        items = json.loads(refused["body"])["results"] if batch else [json.loads(refused["body"])]
        if batch:
            assert [item["status"] for item in items] == [400] * len(urls)
        else:
            assert refused["statusCode"] == 400
        assert all("refused" in item["error"] for item in items)
        assert len(image_server.requests) == before

    run_budget("handler-urls", target, counter)
    print(f"statuses: {dict(sorted(seen.items()))}")
