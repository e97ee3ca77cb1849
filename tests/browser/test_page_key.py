"""The page of an API that needs a key (`init --auth key --open-page`), in a real browser against
`local start-api`, which answers 403 Forbidden without an x-api-key header as API Gateway does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.local_api import LocalApi, init_app, start_local_api, stop_local_api
from tests.browser.test_page import top_class_shown


@pytest.fixture(scope="module")
def keyed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    folder = init_app(tmp_path_factory.mktemp("keyed") / "app", "--auth", "key", "--open-page")
    api = start_local_api(folder)
    try:
        yield api
    finally:
        stop_local_api(api)


def test_the_page_asks_for_the_key_and_sends_it(
    keyed_api: LocalApi, page: Page, demo_samples: list[tuple[Path, str]]
) -> None:
    (first, first_class), (second, second_class) = demo_samples[0], demo_samples[-1]
    page.goto(keyed_api.url + "/")  # the page itself is open
    expect(page.locator("#key-form")).to_be_hidden()

    with page.expect_response(lambda r: r.url.endswith("/invocations")) as refused:
        page.locator("#file").set_input_files(first)
    assert refused.value.status == 403 and "x-api-key" not in refused.value.request.headers
    expect(page.get_by_role("alert")).to_have_text("This API needs an API key: enter it above.")
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.get_by_label(re.compile("needs an API key"))).to_be_focused()

    page.get_by_label(re.compile("needs an API key")).fill("my-key-value")
    with page.expect_response(lambda r: r.url.endswith("/invocations")) as answered:
        page.get_by_role("button", name="Use this key").click()  # the refused image is sent again
    assert answered.value.status == 200
    assert answered.value.request.headers["x-api-key"] == "my-key-value"
    assert top_class_shown(page) == first_class
    expect(page.get_by_role("alert")).to_be_hidden()

    # The key stays for the tab: the next image goes with it at once.
    with page.expect_response(lambda r: r.url.endswith("/invocations")) as next_answer:
        page.locator("#file").set_input_files(second)
    assert next_answer.value.request.headers["x-api-key"] == "my-key-value"
    expect(page.locator("#status")).to_have_text(f"Top class: {second_class}")
