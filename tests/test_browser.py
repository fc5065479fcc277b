"""In a real browser (Playwright driving Debian's chromium): what AppTest cannot press — the keyboard
shortcuts of blind labeling — and what a labeler sees after a reload. Skipped, saying why, where the
browser is absent (`make browser` installs it)."""
from __future__ import annotations

import importlib.util
import shutil
import sys
import time

import pytest
from test_serve import serve  # noqa: F401  (the fixture: the real server on a free port)

from core import preferences

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or importlib.util.find_spec("playwright") is None,
    reason="real-browser tests need Debian's chromium and the playwright package: run `make browser`")


def wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("timed out waiting")


def press_until(page, key: str, done, tries: int = 3) -> None:
    """Press a shortcut key until it took effect: the page binds its shortcuts a moment after it draws."""
    for _ in range(tries):
        page.keyboard.press(key)
        try:
            wait_for(done, timeout=8.0)
            return
        except AssertionError:
            pass
    raise AssertionError(f"the key {key!r} did not take effect")


def test_blind_labeling_with_the_keyboard_in_chromium(serve, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    ws = tmp_path / "ws"
    ids = preferences.add_pairs(ws, "q", [{"prompt": f"Describe package {i}", "answer_a": f"tuned answer {i}",
                                           "answer_b": f"base answer {i}"} for i in range(3)])
    port = serve([sys.executable, "-m", "studio.server", "--address", "127.0.0.1", "--port", "{port}"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/preferences?labeler=ann")
            expect(page.get_by_text("Describe package 0")).to_be_visible(timeout=60_000)  # the name came back
            expect(page.get_by_role("button", name="A is better")).to_be_visible(timeout=30_000)
            page.get_by_text("Describe package 0").click()  # no text box has focus: keys go to the buttons
            press_until(page, "1", lambda: len(preferences.labels(ws, "q")) == 1)  # A is better
            expect(page.get_by_text("Describe package 1")).to_be_visible(timeout=30_000)
            page.get_by_text("Describe package 1").click()
            press_until(page, "3", lambda: len(preferences.labels(ws, "q")) == 2)  # tie
            labels = preferences.labels(ws, "q")
            assert [(r["item_id"], r["labeler"]) for r in labels] == [(ids[0], "ann"), (ids[1], "ann")]
            assert labels[1]["choice"] == "tie"
            page.get_by_role("tab", name="Review").click()
            complete = page.locator('[data-testid="stMetric"]').filter(has_text="Items complete")
            expect(complete).to_contain_text("2 / 3", timeout=25_000)  # the review catches up by itself
            page.screenshot(path=str(tmp_path / "labeling.png"), full_page=True)
        finally:
            browser.close()
