"""Starts the Streamlit app on 127.0.0.1 and drives it with Playwright + Debian's Chromium.

Never `playwright install`: it downloads a browser, which this machine cannot do. Under CI=true a
missing /usr/bin/chromium is a failure (.ci/run installs it with apt-get).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("TEXTGEN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TEXTGEN_TEST_ARTIFACTS", REPO / "test-artifacts"))


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(model_root: Path, log_path: Path, timeout: float = 180.0, env: dict | None = None):
    """Runs `streamlit run apps/streamlit_app.py` on a free port; yields its base URL.

    It runs from the repository root, as `make app` does, so the app gets the settings of
    `.streamlit/config.toml` (127.0.0.1, headless, upload size, toolbar); only the port and the file
    watcher are set here. `env` adds variables (e.g. TEXTGEN_HOME and TFDS_DATA_DIR for the Train
    page's jobs)."""
    port = free_port()
    env = dict(os.environ, TEXTGEN_MODEL_DIRS=str(model_root), PYTHONPATH=str(REPO), **(env or {}))
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "apps" / "streamlit_app.py"),
        "--server.port", str(port), "--server.fileWatcherType", "none",
    ]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not become healthy in {timeout:.0f} s; see {log_path}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@contextlib.contextmanager
def chromium():
    """Debian's Chromium under Playwright, for a module's `browser` fixture."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def new_page(browser, height: int = 1000, timeout_ms: int = 120_000):
    """A page in a fresh browser context (its own cookies and session), closed afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": height})
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    try:
        yield page
    finally:
        context.close()


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Waits until Streamlit has finished the current script run (its status widget is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout_ms)


def expect_no_exception(page) -> None:
    count = page.locator('[data-testid="stException"]').count()
    assert count == 0, page.locator('[data-testid="stException"]').first.inner_text()
