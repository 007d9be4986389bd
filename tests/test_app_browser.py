"""Real-browser tests: the app served on 127.0.0.1, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import os
import re

import pytest

from tests.app_models import make_app_models
from tests.browser_support import (ARTIFACTS, CHROMIUM, chromium, expect_no_exception, new_page, running_app,
                                   wait_idle)
from tests.conftest import require

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)")
    root = make_app_models(tmp_path_factory.mktemp("browser_models"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_app(root, ARTIFACTS / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(app_url):
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    with new_page(browser, height=1000) as pg:
        yield pg


def _open(page, app_url, path):
    page.goto(f"{app_url}/{path}")
    page.wait_for_selector('[data-testid="stMain"] h1')
    wait_idle(page)
    expect_no_exception(page)


def _shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_generate_page_in_browser(page, app_url):
    _open(page, app_url, "")
    prompt = page.get_by_role("textbox", name="Prompt")
    prompt.fill("JULIET:\n")
    # The slider is a hidden range input: focus it and move it with the arrow keys.
    slider = page.locator('input[type="range"][aria-label="Length (characters)"]')
    before = int(slider.input_value())
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert int(slider.input_value()) == before + 30
    page.get_by_role("button", name="Generate").click()
    page.get_by_text(re.compile(r"chars/s")).wait_for()
    wait_idle(page)
    expect_no_exception(page)
    code = page.locator('[data-testid="stCode"]').first.inner_text()
    assert code.startswith("JULIET:") and len(code) >= len("JULIET:\n") + before + 30 - 1
    _shot(page, "generate")


def test_sentiment_page_in_browser(page, app_url, tmp_path):
    _open(page, app_url, "sentiment")
    page.get_by_text("Type a text above").wait_for()  # empty text: a friendly message
    page.get_by_role("button", name="Rave").click()
    page.get_by_text("VADER compound").wait_for()
    wait_idle(page)
    expect_no_exception(page)
    assert page.locator('[data-testid="stMetric"]').count() == 3
    _shot(page, "sentiment")
    page.get_by_role("tab", name="Batch (CSV or text file)").click()
    good = tmp_path / "reviews.csv"
    good.write_text("text\nA superb, moving film.\nDreadful and dull.\nIt was fine, I guess.\n")
    page.locator('input[type="file"]').set_input_files(str(good))
    page.get_by_text("Predicted 3 texts").wait_for()
    # The data grid draws on a canvas; its accessible (hidden) cells carry the texts.
    page.locator('[role="gridcell"]', has_text="A superb, moving film.").wait_for(state="attached")
    wait_idle(page)
    expect_no_exception(page)
    page.locator('[data-testid="stDownloadButton"]').filter(has_text="Download CSV").wait_for()
    _shot(page, "sentiment_batch")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00\x01")
    page.locator('input[type="file"]').set_input_files(str(bad))
    page.get_by_text("not UTF-8").wait_for()
    expect_no_exception(page)


def test_inside_page_in_browser(page, app_url):
    _open(page, app_url, "inside")
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="tiny_lstm").click()
    wait_idle(page)
    box = page.get_by_role("textbox", name="Text to read")
    box.fill("Hello 😀 world")
    box.press("Control+Enter")
    wait_idle(page)
    expect_no_exception(page)
    page.get_by_text("[UNK]", exact=False).first.wait_for()
    page.get_by_text("forget gate").first.click()
    page.get_by_text("Showing the forget gate of rnn_0 (lstm)").wait_for()
    wait_idle(page)
    expect_no_exception(page)
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
    _shot(page, "inside")


def test_models_page_in_browser(page, app_url):
    _open(page, app_url, "models")
    page.get_by_text("Test metrics").wait_for()
    _shot(page, "models")


def test_toolbar_offers_no_deploy(page, app_url):
    """.streamlit/config.toml's toolbarMode = "viewer": on 127.0.0.1 Streamlit's default ("auto")
    shows a Deploy button and Rerun / Clear cache in the menu; this local tool keeps only the
    viewer's options (theme, print, record)."""
    _open(page, app_url, "models")
    page.locator('[data-testid="stMainMenu"]').click()
    menu = page.locator('[data-testid="stMainMenuList"]')
    menu.wait_for()
    items = menu.inner_text()
    assert "Print" in items and "Clear cache" not in items and "Rerun" not in items, items
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
