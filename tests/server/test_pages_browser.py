"""The browse pages in a real headless browser: Debian's chromium driven by Playwright through
its executable path (Playwright's own browser download is not used). Skips only when no browser
can be found; CI (``.ci/run``) installs chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .pages_helpers import find_chromium, page_store, pages_server  # noqa: F401  (fixtures)

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium/Chrome executable found (install Debian's `chromium`, or set "
    "DCREG_CHROMIUM to a browser binary); the HTTP-level page tests still ran",
)


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield b
        finally:
            b.close()


def test_pages_render_filter_and_navigate_in_a_browser(browser, pages_server, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))

    page.goto(pages_server.base_url + "/")
    assert page.title() == "Artifacts · dcregistry"
    assert page.locator("#artifacts tbody tr").count() == 2

    # filter through the form, as a user would
    page.select_option("#f-dataset", "cifar10")
    page.click("form.filters button")
    page.wait_for_load_state()
    assert "dataset=cifar10" in page.url
    rows = page.locator("#artifacts tbody tr")
    assert rows.count() == 1 and "lab/cifar-dc" in rows.first.inner_text()

    page.fill("#f-ipc", "7")
    page.click("form.filters button")
    page.wait_for_load_state()
    assert page.locator("#empty").is_visible()

    # open the artifact page from the list
    page.goto(pages_server.base_url + "/")
    page.click("text=lab/cifar-dc")
    page.wait_for_load_state()
    assert page.url.endswith("/lab/cifar-dc")
    heading = page.locator("#title").inner_text()
    assert heading.startswith("lab/cifar-dc") and "v2" in heading

    # the image grid really loaded and decoded (not a broken image)
    page.wait_for_function("document.getElementById('grid').complete")
    size = page.evaluate(
        "[document.getElementById('grid').naturalWidth, document.getElementById('grid').naturalHeight]"
    )
    assert size[0] > 64 and size[1] == 10 * 34 + 2, size

    assert page.locator("#results tbody tr").count() == 1
    assert "44.67 ± 0.45" in page.locator("#results").inner_text()
    assert page.locator("#versions tbody tr").count() == 2
    card = page.locator("#card")
    assert card.locator("h1").count() >= 1 and card.locator("table").count() >= 1

    # hostile metadata is shown as text and never runs
    assert page.evaluate("window.__pwned === undefined")
    assert "<script>window.__pwned = 1</script>" in card.inner_text()
    assert page.locator("#card a[href^='javascript:']").count() == 0

    shot = Path(os.environ.get("DCREG_PAGES_SCREENSHOT_DIR", tmp_path))
    shot.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot / "artifact-page.png"), full_page=True)

    # older version via the versions table
    page.click("#versions >> text=v1")
    page.wait_for_load_state()
    assert "rev=v1" in page.url
    assert page.locator("#no-results").is_visible()
    page.goto(pages_server.base_url + "/")
    page.screenshot(path=str(shot / "index-page.png"), full_page=True)

    assert problems == [], problems
