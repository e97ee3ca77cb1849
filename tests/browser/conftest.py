"""Fixtures of the browser tests: headless Chromium (Debian's, driven by Playwright) and a
`lambdavision local start-api` serving the committed demo model from a folder made by `init`.

Playwright's own browser download cannot work here, so the system Chromium is its executable
(`make browser` installs it); `playwright install` is never run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.local_api import LocalApi, init_app, start_local_api, stop_local_api


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: run `make browser` (apt-get install chromium)"
    browser = playwright_session.chromium.launch(executable_path=chromium, headless=True)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    """The page and the API of an `init` folder (GET / in its template) on the demo model."""
    folder = init_app(tmp_path_factory.mktemp("page") / "app")
    api = start_local_api(folder)
    try:
        yield api
    finally:
        stop_local_api(api)
