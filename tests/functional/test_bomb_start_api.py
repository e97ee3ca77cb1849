"""Issue 14.1 end to end: the 97 KB PNG of 1 x 49,999,999 pixels through `local start-api`.

Before: the function (2048 MB, the template's) ran out of memory (`Runtime.OutOfMemory`, 502)
and the environment went cold. Now: a 422 saying why, and the same warm environment answers the
next request.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.local_api import LocalApi, init_app, start_local_api, stop_local_api
from tests.memory.shapes import png


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    folder = init_app(tmp_path_factory.mktemp("bomb") / "app")
    local = start_local_api(folder, "--concurrency", "1")
    try:
        yield local
    finally:
        stop_local_api(local)


def post(api: LocalApi, body: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    request = urllib.request.Request(
        api.url + "/invocations", data=body, headers={"Content-Type": "image/png"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_tall_png_is_a_422_and_the_environment_stays_warm(api: LocalApi) -> None:
    sample = (Path(__file__).resolve().parents[2] / "demo" / "samples").glob("*.jpg")
    first = next(iter(sorted(sample))).read_bytes()
    assert post(api, first)[0] == 200  # the environment is up (cold start)

    bomb = png(1, 49_999_999, level=9)
    assert len(bomb) < 100_000
    status, headers, body = post(api, bomb)
    assert status == 422
    assert body == {"error": "the image is 1x49999999, over the cap of 20,000 pixels a side"}
    assert headers["X-Cold-Start"] == "0"

    status, headers, _ = post(api, first)
    assert status == 200 and headers["X-Cold-Start"] == "0"  # the same environment, still warm
    assert not any("OutOfMemory" in line or "Runtime exited" in line for line in api.lines)
