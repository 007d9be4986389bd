"""The Train page in a real browser: upload a text, train a tiny model to the end, see the curve and
an epoch sample, generate from the new model; reload mid-job and find the job still running; Stop."""

from __future__ import annotations

import os
import re

import pytest

from tests.app_models import make_app_models
from tests.browser_support import (ARTIFACTS, CHROMIUM, chromium, expect_no_exception, new_page, running_app,
                                   wait_idle)
from tests.conftest import require

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHAKESPEARE = __import__("textgen.data", fromlist=["SHIPPED_SOURCES"]).SHIPPED_SOURCES / "tiny_shakespeare" / "input.txt"


@pytest.fixture(scope="module")
def train_app(tmp_path_factory):
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)")
    root = make_app_models(tmp_path_factory.mktemp("train_models"))
    home = tmp_path_factory.mktemp("textgen_home")
    env = {"TEXTGEN_HOME": str(home), "TFDS_DATA_DIR": str(tmp_path_factory.mktemp("tfds"))}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_app(root, ARTIFACTS / "streamlit_train.log", env=env) as url:
        yield url, home


@pytest.fixture(scope="module")
def browser(train_app):
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    with new_page(browser, height=1100) as pg:
        yield pg


def _open_train(page, url):
    page.goto(f"{url}/train")
    page.wait_for_selector('[data-testid="stMain"] h1')
    wait_idle(page)
    expect_no_exception(page)


def _start_job(page, text_path, name, preset_label):
    page.locator('input[type="file"]').set_input_files(str(text_path))
    page.get_by_text(text_path.name).wait_for()
    page.get_by_role("textbox", name="Model name").fill(name)
    page.get_by_text(re.compile("^" + preset_label)).click()
    page.get_by_role("button", name="Train").click()
    page.get_by_text(f"Job: {name}").wait_for()
    expect_no_exception(page)


def test_upload_train_tiny_and_generate(page, train_app, tmp_path):
    url, home = train_app
    text = tmp_path / "my_plays.txt"
    text.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    _open_train(page, url)
    _start_job(page, text, "my_plays", "tiny")
    assert "textgen train charlm --text-file" in page.locator('[data-testid="stCode"]').first.inner_text()
    page.get_by_text("Training finished").wait_for(timeout=400_000)
    wait_idle(page)
    expect_no_exception(page)
    page.get_by_text(re.compile(r"Sample after epoch 3")).wait_for()
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1  # the loss curve
    page.screenshot(path=str(ARTIFACTS / "train_done.png"), full_page=True)
    assert (home / "models" / "my_plays" / "model.keras").is_file()
    # The new model is on the Generate page without a restart.
    page.get_by_role("link", name="Generate with it").click()
    page.wait_for_selector('[data-testid="stMain"] h1:has-text("Generate")')
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "train_to_generate.png"), full_page=True)
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="my_plays").click()
    wait_idle(page)
    page.get_by_role("textbox", name="Prompt").fill("ROMEO:")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text(re.compile(r"chars/s")).wait_for()
    wait_idle(page)
    expect_no_exception(page)
    assert page.locator('[data-testid="stCode"]').first.inner_text().startswith("ROMEO:")
    assert "my\\_plays" in page.locator('[data-testid="stMarkdown"]', has_text="chars/s").first.inner_html() \
        or "my_plays" in page.locator('[data-testid="stMarkdown"]', has_text="chars/s").first.inner_text()


def test_reload_mid_job_reattaches_and_stop_keeps_best(page, train_app, tmp_path):
    url, home = train_app
    text = tmp_path / "longer.txt"
    text.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:200_000], encoding="utf-8")
    _open_train(page, url)
    _start_job(page, text, "long_run", "small")
    page.get_by_text(re.compile(r"Epoch 1, step \d+/150")).wait_for(timeout=300_000)
    page.reload()  # closing the tab or reloading does not stop the job: the page reattaches (?job=ID)
    page.get_by_text("Job: long_run").wait_for()
    page.get_by_text(re.compile(r"Epoch \d+, step \d+/150")).wait_for(timeout=120_000)
    expect_no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "train_running.png"), full_page=True)
    page.get_by_role("button", name=re.compile(r"^Stop \(keep the best")).click()
    page.get_by_text(re.compile("Training stopped; it kept the best weights")).wait_for(timeout=300_000)
    expect_no_exception(page)
    assert (home / "models" / "long_run" / "model.keras").is_file()
    assert not (home / "models" / "long_run" / ".resume").exists()
