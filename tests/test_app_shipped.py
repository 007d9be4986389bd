"""The app as `make app` serves it: on the shipped models in saved_models/, in a real browser.

The other browser tests use tiny random models (fast, every widget); this one checks that the four
pages work on the real models users start from, and that those models behave (a rave reads positive,
a pan negative). Screenshots go to test-artifacts/shipped_*.png.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser_support import ARTIFACTS, CHROMIUM, expect_no_exception, launch_browser, running_app, wait_idle
from tests.conftest import require
from tests.test_shipped_models import PRESENT, SHIPPED_NAMES

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)")
    require(set(SHIPPED_NAMES) <= set(PRESENT), f"saved_models/ lacks {sorted(set(SHIPPED_NAMES) - set(PRESENT))}")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    empty = tmp_path_factory.mktemp("no_extra_models")  # only saved_models/ (and ~/.textgen/models)
    with running_app(empty, ARTIFACTS / "streamlit_shipped.log") as url, sync_playwright() as p:
        browser = launch_browser(p)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(180_000)
        pg.app_url = url
        yield pg
        browser.close()


def _open(page, path):
    page.goto(f"{page.app_url}/{path}")
    page.wait_for_selector('[data-testid="stMain"] h1')
    wait_idle(page, 180_000)
    expect_no_exception(page)


def _pick(page, index, option):
    page.locator('[data-testid="stSelectbox"]').nth(index).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page, 180_000)
    expect_no_exception(page)


def _wait_until(page, condition, timeout_s: float = 180.0) -> None:
    """Polls `condition()` (after each Streamlit run has finished) until it holds or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        wait_idle(page, 180_000)
        if condition():
            return
        assert time.monotonic() < deadline, "the page did not update in time"
        page.wait_for_timeout(500)


def _p_positive(page) -> float:
    value = page.locator('[data-testid="stMetric"]').first.locator('[data-testid="stMetricValue"]').inner_text()
    return float(value.strip().rstrip("%")) / 100


def test_generate_with_the_shakespeare_model(page):
    _open(page, "")
    # The default model is the shipped Shakespeare model (the select shows it in its input's value).
    assert page.get_by_role("combobox", name="Character model").input_value() == "shakespeare_char"
    page.get_by_role("textbox", name="Prompt").fill("ROMEO:\n")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text(re.compile(r"chars/s")).wait_for()
    wait_idle(page, 180_000)
    expect_no_exception(page)
    text = page.locator('[data-testid="stCode"]').first.inner_text()
    assert text.startswith("ROMEO:\n") and len(text) > 100
    page.screenshot(path=str(ARTIFACTS / "shipped_generate.png"), full_page=True)
    # The same request with int8 weights (the TFLite loop): text of its own, labelled as such.
    page.get_by_role("combobox", name="Weights").click()
    page.get_by_role("option", name="int8", exact=True).click()
    page.get_by_role("button", name="Generate").click()
    page.get_by_text(re.compile(r"\(int8 weights\) — [\d,]+ chars/s")).wait_for()
    wait_idle(page, 180_000)
    expect_no_exception(page)
    int8_text = page.locator('[data-testid="stCode"]').first.inner_text()
    # 300 characters after the prompt (inner_text drops trailing whitespace); int8 logits differ
    # slightly, so 300 sampled characters do not repeat the float32 text.
    assert int8_text.startswith("ROMEO:\n") and 290 <= len(int8_text) <= len("ROMEO:\n") + 300
    assert int8_text != text


@pytest.mark.parametrize("model", ["imdb_sentiment", "imdb_average", "vader_sentiment"])
def test_sentiment_with_the_shipped_models(page, model):
    _open(page, "sentiment")
    _pick(page, 0, model)
    page.get_by_role("button", name="Rave").click()
    page.get_by_text("VADER compound").wait_for()
    wait_idle(page, 180_000)
    expect_no_exception(page)
    rave = _p_positive(page)
    assert rave > 0.5  # a real model reads the rave as positive
    if model == "vader_sentiment":
        page.get_by_text("Valence (−4 … +4)").wait_for()
    page.get_by_text("How the reading evolves, word by word").wait_for()
    page.screenshot(path=str(ARTIFACTS / f"shipped_{model}.png"), full_page=True)
    page.get_by_role("button", name="Pan").click()
    # The rerun may start after wait_idle's first look (seen under CI load): wait for the pan to be
    # in the box and for the shown probability to be a new one before reading it.
    expect(page.get_by_role("textbox", name="Text")).to_have_value(re.compile(r"^Dull, predictable"))
    _wait_until(page, lambda: _p_positive(page) != rave)
    expect_no_exception(page)
    assert _p_positive(page) < 0.5


def test_inside_the_shakespeare_model(page):
    _open(page, "inside")
    box = page.get_by_role("textbox", name="Text to read")
    box.fill("JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?")
    box.press("Control+Enter")
    wait_idle(page, 180_000)
    expect_no_exception(page)
    page.get_by_text("forget gate").first.click()
    page.get_by_text(re.compile(r"Showing the forget gate of rnn_0 \(lstm\)")).wait_for()
    wait_idle(page, 180_000)
    expect_no_exception(page)
    page.get_by_text("Next-character guesses").wait_for()
    page.screenshot(path=str(ARTIFACTS / "shipped_inside.png"), full_page=True)


def test_inside_the_classical_chinese_model(page):
    """A model of thousands of characters (4,555 Chinese characters) in "Inside the RNN"."""
    _open(page, "inside")
    page.get_by_role("combobox", name="Character model").click()
    page.get_by_role("option", name="classical_chinese_char").click()
    wait_idle(page, 180_000)
    box = page.get_by_role("textbox", name="Text to read")
    box.fill("春江潮水连海平，海上明月共潮生。")
    box.press("Control+Enter")
    wait_idle(page, 180_000)
    expect_no_exception(page)
    page.get_by_text("update gate", exact=True).first.click()
    page.get_by_text(re.compile(r"Showing the update gate of rnn_0 \(gru\)")).wait_for()
    wait_idle(page, 180_000)
    expect_no_exception(page)
    page.get_by_text("Next-character guesses").wait_for()
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
    page.screenshot(path=str(ARTIFACTS / "shipped_inside_chinese.png"), full_page=True)


def test_models_page_with_cards_and_the_comparison(page):
    _open(page, "models")
    page.get_by_text("Test metrics, next to baselines on the same examples").wait_for()
    page.get_by_text("Reproduce").first.wait_for()  # the card
    page.locator('[role="gridcell"]', has_text="this model").first.wait_for(state="attached")  # the metrics
    page.wait_for_timeout(1000)  # the data grid paints its canvas after its cells exist
    page.screenshot(path=str(ARTIFACTS / "shipped_models.png"), full_page=True)
    page.get_by_role("tab", name="Cell-kind comparison").click()
    page.get_by_text("Loss by distance since the last newline").wait_for()
    page.locator('[data-testid="stImage"]:visible').first.wait_for()
    wait_idle(page)
    expect_no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "shipped_comparison.png"), full_page=True)


def test_eight_sessions_generate_at_once(page):
    """Eight browser sessions press Generate together: each gets its own text (the one the sampler
    gives for its prompt and seed alone), served as rows of the one shared batched sampler."""
    import json

    from textgen.sampling import SamplingParams, load_sampler

    _open(page, "")  # the model is loaded and its batched sampler compiled before the rush
    browser = page.context.browser
    sessions = []
    try:
        for i in range(8):
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            pg = context.new_page()
            pg.set_default_timeout(180_000)
            pg.goto(page.app_url)
            pg.wait_for_selector('[data-testid="stMain"] h1')
            wait_idle(pg, 180_000)
            prompt = ["ROMEO:", "JULIET:", "First Citizen:", "KING RICHARD III:", "HAMLET:", "Nurse:",
                      "MENENIUS:", "LADY MACBETH:"][i]
            pg.get_by_role("textbox", name="Prompt").fill(prompt)
            pg.get_by_role("spinbutton", name="Seed").fill(str(100 + i))
            pg.get_by_role("spinbutton", name="Seed").press("Tab")
            sessions.append((pg, prompt, 100 + i))
        for pg, _, _ in sessions:  # as close together as the browser allows
            pg.get_by_role("button", name="Generate").click()
        seconds = []
        for pg, prompt, seed in sessions:
            line = pg.get_by_text(re.compile(r"chars/s \([\d.]+ s\)"))
            line.wait_for()
            wait_idle(pg, 180_000)
            expect_no_exception(pg)
            seconds.append(float(re.search(r"\(([\d.]+) s\)", line.inner_text()).group(1)))
            shown = pg.locator('[data-testid="stCode"]').first.inner_text()
            sessions[sessions.index((pg, prompt, seed))] = (pg, prompt, seed, shown)
        sampler = load_sampler(os.path.join("saved_models", "shakespeare_char"))
        for pg, prompt, seed, shown in sessions:
            # The page's defaults: 300 characters at temperature 0.8, no top-k / top-p.
            want = sampler.generate(prompt, SamplingParams(length=300, temperature=0.8, seed=seed))[0]
            assert shown.rstrip() == (prompt + want).rstrip(), (prompt, seed)
        assert len({s[3] for s in sessions}) == 8
        sessions[0][0].screenshot(path=str(ARTIFACTS / "shipped_eight_sessions.png"), full_page=True)
        (ARTIFACTS / "eight_sessions.json").write_text(json.dumps({"seconds_per_session": seconds}))
        print(f"eight sessions at once: {sorted(seconds)} s each")
    finally:
        for s in sessions:
            s[0].context.close()
