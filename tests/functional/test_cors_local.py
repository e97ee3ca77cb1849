"""CORS through `lambdavision local start-api`, on a folder made by `lambdavision init --cors-origin`.

The template's OPTIONS methods proxy the preflight to the function, which answers it (204 and the
Access-Control-* headers) because LAMBDAVISION_CORS_ORIGIN is in its environment; every answer
then carries Access-Control-Allow-Origin. Without --cors-origin there is no preflight route, and
the gateway answers OPTIONS as API Gateway would (403).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.local_api import LocalApi, init_app, start_local_api, stop_local_api

ORIGIN = "https://photos.example.org"


def request(
    api: LocalApi, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    address = urlsplit(api.url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def cors_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    api = start_local_api(init_app(tmp_path_factory.mktemp("cors") / "app", "--cors-origin", ORIGIN))
    try:
        yield api
    finally:
        stop_local_api(api)


@pytest.mark.parametrize("path", ["/invocations", "/"])
def test_preflight_is_answered_204_with_the_cors_headers(cors_api: LocalApi, path: str) -> None:
    status, headers, body = request(
        cors_api,
        "OPTIONS",
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert (status, body) == (204, b"")
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in [m.strip() for m in headers["access-control-allow-methods"].split(",")]
    assert "content-type" in headers["access-control-allow-headers"].lower()
    assert int(headers["access-control-max-age"]) > 0


def test_answers_carry_the_allowed_origin(cors_api: LocalApi, demo_samples: list[tuple[Path, str]]) -> None:
    path, expected = demo_samples[0]
    status, headers, body = request(
        cors_api, "POST", "/invocations", path.read_bytes(), {"Origin": ORIGIN, "Content-Type": "image/jpeg"}
    )
    assert status == 200
    assert json.loads(body)["class"] == expected
    assert headers["access-control-allow-origin"] == ORIGIN
    # The page's latency and cold-start figures are readable cross-origin too.
    exposed = [h.strip().lower() for h in headers["access-control-expose-headers"].split(",")]
    assert {"x-request-id", "x-cold-start", "server-timing"} <= set(exposed)
    # An error answer carries it as well, so a page on the other origin can read the message.
    status, headers, body = request(
        cors_api, "POST", "/invocations", b"not an image", {"Origin": ORIGIN, "Content-Type": "image/jpeg"}
    )
    assert 400 <= status < 500 and "error" in json.loads(body)
    assert headers["access-control-allow-origin"] == ORIGIN
    status, headers, _ = request(cors_api, "GET", "/", headers={"Origin": ORIGIN})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN


def test_without_cors_origin_there_is_no_preflight_and_no_header(tmp_path: Path) -> None:
    api = start_local_api(init_app(tmp_path / "app"))
    try:
        status, headers, _ = request(
            api, "OPTIONS", "/invocations", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
        )
        assert status == 403
        assert "access-control-allow-origin" not in headers
        status, headers, _ = request(api, "GET", "/", headers={"Origin": ORIGIN})
        assert status == 200 and "access-control-allow-origin" not in headers
    finally:
        stop_local_api(api)
