"""Issue 14.7: the page is served locked down, and still works under its own policy.

Headless Chromium loads the page from `local start-api` (the demo model): the Content-Security-
Policy must let the page's own script and style run (a sample is classified with no violation
reported), and must stop anything else (a script injected into the page never runs).
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.browser.local_api import LocalApi
from tests.browser.test_page import top_class_shown

COLLECT_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
"""


def test_the_page_works_under_its_policy_and_blocks_injected_script(
    local_api: LocalApi, page: Page, demo_samples: list[tuple[Path, str]]
) -> None:
    page.add_init_script(COLLECT_VIOLATIONS)
    response = page.goto(local_api.url + "/")
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'none'; script-src 'sha256-")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"

    path, expected = demo_samples[0]
    page.locator("#file").set_input_files(path)
    assert top_class_shown(page) == expected
    assert page.evaluate("window.__violations") == []  # its own script, style and fetch are allowed

    # Anything else is refused: a script added to the page does not run.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1';"
        " document.body.append(s); }"
    )
    page.wait_for_function("window.__violations.length > 0")
    assert page.evaluate("window.__pwned") is None
    assert "script-src-elem" in page.evaluate("window.__violations")
