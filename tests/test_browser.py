"""A real browser on the running app: Debian's chromium, headless, driven by Playwright.

Playwright's own browser download does not work on the build machines, so the system chromium
is used; the test skips (saying why) only when it is absent. The screenshot goes to
test-artifacts/ (git-ignored) for a person to look at.
"""

import shutil
from pathlib import Path

import pytest
from test_app import start_app, stop_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_app(tmp_path_factory, "browser")
    yield server
    stop_app(server)


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        yield page
        browser.close()


def test_upload_shows_probabilities_heatmap_and_notice(server, page):
    page.goto(server.url, wait_until="domcontentloaded")
    page.locator("#scan-file").wait_for(timeout=60_000)
    assert page.get_by_text("do not use it for diagnosis").is_visible()
    assert page.get_by_text("flagging is off").is_visible()

    page.locator("#scan-file input[type=file]").set_input_files(str(ROOT / "examples" / "glioma_Te-gl_0010.jpg"))
    verdict = page.locator("#verdict")
    verdict.get_by_text("Read as JPEG").wait_for(timeout=60_000)
    labels = page.locator("#probabilities")
    for name in ("glioma", "meningioma", "notumor", "pituitary"):
        assert labels.get_by_text(name).count() >= 1
    heatmap = page.locator("#heatmap img")
    heatmap.wait_for(timeout=30_000)
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", heatmap.element_handle())

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_glioma_upload.png"), full_page=True)


def test_bad_upload_explained_in_page(server, page, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a scan\n" * 5)
    page.goto(server.url, wait_until="domcontentloaded")
    page.locator("#scan-file").wait_for(timeout=60_000)
    page.locator("#scan-file input[type=file]").set_input_files(str(bad))
    page.locator("#verdict").get_by_text("Cannot read this file").wait_for(timeout=60_000)
    assert page.locator("#verdict").get_by_text("contains text").is_visible()
    page.screenshot(path=str(ARTIFACTS / "app_bad_upload.png"), full_page=True)


def test_example_click_runs_dicom(server, page):
    page.goto(server.url, wait_until="domcontentloaded")
    page.get_by_text("pituitary_Te-pi_0020_converted.dcm").click()
    page.locator("#verdict").get_by_text("Read as DICOM").wait_for(timeout=60_000)
    assert page.locator("#verdict").get_by_text("window centre").is_visible()
