"""The upload page in a real browser (headless Chromium) against `local start-api` on the demo model.

Each test drives the page as a person would — file input, pasted URL, keyboard — and checks what
is shown; the function's own log line (relayed on start-api's stderr) shows what reached it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.local_api import REPO, LocalApi
from tests.fixtures.image_server import ImageServer

# The committed screenshots (benchmarks/results/page-*.png) are refreshed on purpose only:
# LAMBDAVISION_SCREENSHOT_DIR=benchmarks/results; a plain run writes under tmp_path.
SCREENSHOT_DIR = os.environ.get("LAMBDAVISION_SCREENSHOT_DIR")


def top_class_shown(page: Page) -> str:
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#status")).to_have_text(re.compile(r"^Top class: "))
    return page.locator("#bars .class-name").first.inner_text()


def test_uploading_a_sample_shows_its_top_class(
    local_api: LocalApi, page: Page, demo_samples: list[tuple[Path, str]]
) -> None:
    page.goto(local_api.url + "/")
    expect(page).to_have_title(re.compile("lambdavision"))
    chosen = [s for s in demo_samples if s[0].suffix == ".png"][:1] + [
        s for s in demo_samples if s[0].suffix == ".jpg"
    ][:1]
    for path, expected in chosen:
        page.locator("#file").set_input_files(path)
        expect(page.locator("#status")).to_have_text(f"Top class: {expected}")
        assert top_class_shown(page) == expected
        bars = page.locator("#bars .bar")
        assert bars.count() >= 2
        percentages = [float(t.rstrip("%")) for t in bars.locator(".label span:last-child").all_inner_texts()]
        assert percentages == sorted(percentages, reverse=True) and 0 < percentages[0] <= 100
        expect(page.locator("#meta")).to_have_text(re.compile(r"^\d+ ms · (cold start|warm)$"))
        expect(page.locator("#error")).to_be_hidden()
        expect(page.locator("#preview")).to_be_visible()


def test_pasting_an_image_url_with_the_keyboard(
    local_api: LocalApi, page: Page, image_server: ImageServer, demo_samples: list[tuple[Path, str]]
) -> None:
    path, expected = next(s for s in demo_samples if s[0].name.startswith("cross"))
    url = image_server.add("/shape.jpg", path.read_bytes())
    page.goto(local_api.url + "/")
    # Keyboard only: tab to the URL field, type, Enter submits the form.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "url":
            break
    assert page.evaluate("document.activeElement.id") == "url"
    page.keyboard.type(url)
    page.keyboard.press("Enter")
    assert top_class_shown(page) == expected
    # The preview loaded (its Content-Security-Policy lets it), whenever the browser got to it.
    page.wait_for_function("document.querySelector('#preview').complete")
    assert page.evaluate("document.querySelector('#preview').naturalWidth") > 0
    # Fetched twice: by the function (to classify) and by the browser (the page's preview).
    agents = sorted(r.headers.get("User-Agent", "") for r in image_server.requests if r.path == "/shape.jpg")
    assert len(agents) == 2 and sum("Chrome" in agent for agent in agents) == 1


def test_a_text_file_shows_a_readable_error(local_api: LocalApi, page: Page) -> None:
    page.goto(local_api.url + "/")
    page.locator("#file").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"these are not pixels\n"}]
    )
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_text(re.compile(r"^Error 4\d\d: [A-Za-z].{10,}"))
    assert "undefined" not in alert.inner_text() and "[object" not in alert.inner_text()
    expect(page.locator("#result")).to_be_hidden()
    # The page recovers: the next good image is classified and the error goes away.
    page.locator("#file").set_input_files(REPO / "demo" / "samples" / "circle_1.jpg")
    assert top_class_shown(page) == "circle"
    expect(alert).to_be_hidden()


def test_inputs_are_labelled_and_regions_have_roles(local_api: LocalApi, page: Page) -> None:
    page.goto(local_api.url + "/")
    assert page.locator("html").get_attribute("lang") == "en"
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, button, select, textarea")]
              .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                             && !e.getAttribute("aria-labelledby") && !e.textContent.trim())
              .map((e) => e.outerHTML)"""
    )
    assert unlabelled == []
    expect(page.get_by_label("Image URL")).to_have_attribute("type", "url")
    expect(page.get_by_label("Choose an image file")).to_have_attribute("type", "file")
    expect(page.get_by_label("Take a photo with the camera")).to_have_attribute("capture", "environment")
    expect(page.get_by_role("button", name="Classify URL")).to_be_visible()
    assert page.get_by_role("alert", include_hidden=True).count() == 1
    assert page.get_by_role("status").get_attribute("aria-live") == "polite"
    # The file input is reachable with the keyboard (visually hidden, not display:none).
    page.locator("#file").focus()
    assert page.evaluate("document.activeElement.id") == "file"


def test_a_large_photo_is_shrunk_in_the_browser_before_upload(local_api: LocalApi, page: Page) -> None:
    photo = REPO / "demo" / "samples" / "star_3.jpg"
    with Image.open(photo) as image:
        assert max(image.size) > 1024  # 2000x1500
    page.goto(local_api.url + "/")
    with page.expect_response(lambda r: r.url.endswith("/invocations")) as answer:
        page.locator("#file").set_input_files(photo)
    response = answer.value
    assert response.status == 200
    assert response.request.headers["content-type"] == "image/jpeg"  # raw bytes, not base64 in JSON
    assert top_class_shown(page) == "star"
    # What reached the function, from its own log line (Playwright cannot see a Blob body): the
    # shrunk image, longest side 1024 px and the aspect ratio kept, in fewer bytes than the photo.
    record = local_api.request_record(response.headers["x-request-id"])
    assert record["image_size"] == "1024x768"
    assert record["input_kind"] == "raw"
    assert 0 < record["image_bytes"] < photo.stat().st_size
    assert (record["status"], record["class"]) == (200, "star")


def test_screenshots_at_phone_and_desktop_widths(
    local_api: LocalApi, page: Page, tmp_path: Path, demo_samples: list[tuple[Path, str]]
) -> None:
    path, expected = next(s for s in demo_samples if s[0].name.startswith("triangle"))
    for name, width, height in (("phone", 360, 740), ("desktop", 1280, 800)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(local_api.url + "/")
        page.locator("#file").set_input_files(path)
        assert top_class_shown(page) == expected
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shot = tmp_path / f"page-{name}.png"
        page.screenshot(path=shot, full_page=True)
        with Image.open(shot) as image:
            assert image.size[0] == width and image.size[1] >= height
        if SCREENSHOT_DIR:
            shutil.copyfile(shot, Path(SCREENSHOT_DIR) / f"page-{name}.png")
