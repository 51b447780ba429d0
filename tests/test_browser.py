"""A real browser on the running app: Debian's chromium, headless, driven by Playwright.

Playwright's own browser download does not work on the build machines, so the system chromium
is used; the test skips (saying why) only when it is absent. Screenshots go to test-artifacts/
(git-ignored) for a person to look at.
"""

import shutil
from pathlib import Path

import pytest
from helpers_models import save_tiny_model
from helpers_app import make_food_photo, start_app, stop_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARTIFACTS = ROOT / "test-artifacts"
FIGURES = {"method": "Grad-CAM", "split": "clean_test", "pointing_game": 0.29, "pointing_game_strict": 0.13,
           "mass_in_mask": 0.05, "centre_baseline_pointing_game": 0.47}

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    other = save_tiny_model(tmp_path_factory.mktemp("allowed") / "second-model", "convnext")
    server = start_app(tmp_path_factory, "browser", localization=FIGURES, BRAIN_TUMOR_ALLOWED_MODELS=other)
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


def open_app(server, page):
    page.goto(server.url, wait_until="domcontentloaded")
    page.locator("#scan-file").wait_for(timeout=60_000)


def test_upload_shows_probabilities_heatmap_caption_and_notice(server, page):
    open_app(server, page)
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
    caption = page.locator("#heatmap-caption").inner_text()
    # The tiny model's answer decides which caption: figures from localization.json, or "no tumour".
    assert ("29%" in caption and "47%" in caption) or "does not show a tumour" in caption, caption

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_glioma_upload.png"), full_page=True)


def test_not_mri_photo_shows_reason_and_folds_the_output_away(server, page, tmp_path):
    open_app(server, page)
    page.locator("#scan-file input[type=file]").set_input_files(str(make_food_photo(tmp_path / "pizza.jpg")))
    verdict = page.locator("#verdict")
    verdict.get_by_text("does not look like a brain MRI slice").wait_for(timeout=60_000)
    assert verdict.get_by_text("in colour").is_visible()
    raw = page.get_by_text("Raw model output: meaningless here")
    assert raw.is_visible()
    assert not page.locator("#probabilities").is_visible() and not page.locator("#heatmap").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_not_mri.png"), full_page=True)

    raw.click()  # a user who insists can still see the raw output
    page.locator("#probabilities").get_by_text("glioma").first.wait_for(timeout=10_000)
    assert page.locator("#heatmap").is_visible()


def test_bad_upload_explained_in_page(server, page, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a scan\n" * 5)
    open_app(server, page)
    page.locator("#scan-file input[type=file]").set_input_files(str(bad))
    page.locator("#verdict").get_by_text("Cannot read this file").wait_for(timeout=60_000)
    assert page.locator("#verdict").get_by_text("contains text").is_visible()
    assert not page.locator("#probabilities").is_visible()
    page.screenshot(path=str(ARTIFACTS / "app_bad_upload.png"), full_page=True)


def test_example_click_runs_dicom(server, page):
    open_app(server, page)
    page.get_by_text("pituitary_Te-pi_0020_converted.dcm").click()
    page.locator("#verdict").get_by_text("Read as DICOM").wait_for(timeout=60_000)
    assert page.locator("#verdict").get_by_text("window centre").is_visible()


def test_model_switcher_lists_only_allowed_models_by_name(server, page):
    open_app(server, page)
    page.get_by_text("Model", exact=True).click()
    status = page.locator("#model-status")
    status.get_by_text("classes").wait_for(timeout=30_000)
    assert status.inner_text().startswith("Model model:")
    page.locator("#model-choice input").click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    names = sorted(text.replace("✓", "").strip() for text in options.all_inner_texts())  # ✓ marks the chosen one
    assert names == ["model", "second-model"]  # names only, no server paths
    page.get_by_role("option", name="second-model").click()
    page.wait_for_function("() => document.querySelector('#model-status').innerText.startsWith('Model second-model:')",
                           timeout=60_000)
