"""In a real browser (Playwright driving Debian's chromium): what AppTest cannot press — the keyboard
shortcuts of blind labeling — and what a labeler sees after a reload; and a newcomer's whole journey,
upload → check → register → tune → playground → evaluate → label → review, on the real server with a
tiny random model. Skipped, saying why, where the browser is absent (`make browser` installs it).
Screenshots of the journey go to the test's tmp_path, and also to $STUDIO_SHOTS when it is set."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import ASSETS
from test_serve import serve  # noqa: F401  (the fixture: the real server on a free port)

from core import preferences

if importlib.util.find_spec("playwright") is not None:
    from playwright.sync_api import expect

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


# ---------------------------------------------------------------- a newcomer's journey

# Widgets of the current script run only: while Streamlit reruns, the previous run's elements stay on the
# page marked stale (a widget whose key changed is there twice until the run ends).
LIVE = '[data-testid="stElementContainer"]:not([data-stale="true"])'


def journey_csv(path: Path) -> Path:
    """30 rows, two classes, as a person brings them: a CSV with `text` and `label`, cut from the sample."""
    rows = [json.loads(x) for x in (ASSETS / "classification_train.jsonl").read_text().splitlines()]
    picked = {"games": [], "math": []}
    for r in rows:
        text = " ".join(r["input_text"].split())[:160].rsplit(" ", 1)[0]  # short prompts: fast steps
        if r["output_text"] in picked and len(picked[r["output_text"]]) < 15 and text not in picked[r["output_text"]]:
            picked[r["output_text"]].append(text)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["text", "label"])
        for g, m in zip(picked["games"], picked["math"]):
            out.writerows([[g, "games"], [m, "math"]])
    return path


class Journey:
    """The page, its screenshots (numbered, into tmp_path and $STUDIO_SHOTS) and each step's time."""

    def __init__(self, page, tmp_path: Path, server_log: Path):
        self.page, self.server_log = page, server_log
        self.folders = [tmp_path / "shots"] + ([Path(os.environ["STUDIO_SHOTS"])] if os.environ.get("STUDIO_SHOTS") else [])
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
        self.shots = 0
        self.start = self.lap = time.monotonic()
        self.times: list[tuple[str, float]] = []

    def shot(self, name: str) -> None:
        """The whole page: Streamlit scrolls inside its main area, so the window is made as tall as it."""
        page = self.page
        size = page.viewport_size
        height = page.evaluate("() => Math.max(document.body.scrollHeight, ...[...document.querySelectorAll("
                               "'[data-testid=stMain]')].map(e => e.scrollHeight))")
        page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 8000)})
        time.sleep(0.4)  # the layout follows the new height
        self.shots += 1
        first = self.folders[0] / f"{self.shots:02d}-{name}.png"
        page.screenshot(path=str(first), full_page=True)
        for folder in self.folders[1:]:
            shutil.copy(first, folder / first.name)
        page.set_viewport_size(size)

    def done(self, step: str) -> None:
        now = time.monotonic()
        self.times.append((step, now - self.lap))
        self.lap = now

    def report(self) -> str:
        return ", ".join(f"{s} {t:.0f} s" for s, t in self.times) + f"; total {time.monotonic() - self.start:.0f} s"

    # ------------------------------------------------ widgets

    def live(self):
        return self.page.locator(LIVE)

    def go(self, title: str) -> None:
        """Open a page from the sidebar, as a person does (the session, and what it remembers, goes on)."""
        self.page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
        expect(self.page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=30_000)

    def fill(self, label: str, value) -> None:
        """Type into a text or number input and commit it (Enter), as a person does."""
        box = self.live().get_by_label(label, exact=True)
        expect(box, f"one input labelled {label!r}").to_have_count(1, timeout=20_000)
        box.fill(str(value))
        box.press("Enter")
        expect(box).to_have_value(str(value), timeout=10_000)

    def choose(self, label: str, option: str) -> None:
        box = self.live().get_by_role("combobox", name=label, exact=True)
        expect(box, f"one selectbox labelled {label!r}").to_have_count(1, timeout=20_000)
        choice = self.page.get_by_role("option", name=option, exact=True)
        for _ in range(3):  # a click while the page reruns can be lost with the old element: open it again
            box.click()
            try:
                expect(choice).to_be_visible(timeout=5_000)
                break
            except AssertionError:
                self.page.keyboard.press("Escape")
        choice.click()
        expect(box).to_have_value(option, timeout=10_000)

    def metric(self, label: str):
        return self.live().locator('[data-testid="stMetric"]').filter(
            has=self.page.get_by_text(label, exact=True))

    def wait_until(self, what: str, done, timeout: float, seen=None) -> list[str]:
        """Poll `done()` until it holds; meanwhile collect the progress texts the page shows (`seen`, a
        locator), so a test can say what the user saw on the way. Fails naming `what` and the last texts."""
        texts: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if seen is not None:
                for t in seen.all_inner_texts():
                    if t.strip() and t not in texts:
                        texts.append(t)
            if done():
                return texts
            time.sleep(0.5)
        raise AssertionError(f"{what}: not within {timeout:.0f} s; the page showed {texts[-5:]}")


def test_a_newcomers_journey_in_chromium(serve, tiny_model_dir, tmp_path):  # noqa: F811
    """Upload a CSV → its check → register it under a name → tune a tiny model on it by that name → the
    run's card until it succeeds → Playground answers by the run's name, saved as two pairs → Evaluate on
    the registered eval rows → label both pairs with the keyboard → Review counts them. Each step asserts
    what the page says (texts, numbers, names) and leaves a screenshot."""
    from playwright.sync_api import sync_playwright

    ws = tmp_path / "ws"
    data = journey_csv(tmp_path / "sections.csv")
    port = serve([sys.executable, "-m", "studio.server", "--address", "127.0.0.1", "--port", "{port}"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)  # actions; and the checks of what a page says, below
        expect.set_options(timeout=30_000)
        j = Journey(page, tmp_path, tmp_path / f"server-{port}.log")
        try:
            # Datasets: upload, the check report, register under a name of one's own.
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible(timeout=60_000)
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(data))
            expect(page.get_by_text("Saved as sections.csv in the workspace.")).to_be_visible()
            expect(page.get_by_text("30 examples are ready for tuning: prompts from text, answers from label."))\
                .to_be_visible()
            expect(j.metric("Valid rows")).to_contain_text("30 / 30")
            expect(j.metric("Distinct answers")).to_contain_text("2")
            expect(j.live().get_by_role("combobox", name="Task", exact=True)).to_have_value("Classification")
            expect(page.get_by_text("No problems found in any row.")).to_be_visible()
            j.shot("datasets-check")
            j.fill("Name", "debian-sections")
            j.choose("Split method", "RANDOM")
            expect(page.get_by_text("Preview: 25 train · 5 eval rows")).to_be_visible()
            page.get_by_role("button", name="Register", exact=True).click()
            expect(page.get_by_text("Registered debian-sections: 25 train / 5 eval rows.", exact=False))\
                .to_be_visible()
            registered = page.locator('[data-testid="stHorizontalBlock"]').filter(  # a row of the catalog list
                has=page.get_by_role("button", name="Delete", exact=True))
            expect(registered).to_contain_text("debian-sections")
            expect(registered).to_contain_text("25 / 5")
            expect(page.get_by_text("is registered already")).to_have_count(0)  # not right after registering it
            j.shot("datasets-registered")
            j.done("datasets")

            # Tune: the registered set by its name, the tiny model by its folder, 3 steps.
            j.go("Tune")
            j.choose("Training data", "debian-sections  ·  registered")
            expect(page.get_by_text("25 training examples · 2 labels: games, math")).to_be_visible()
            expect(j.live().get_by_role("combobox", name="Eval data (optional)", exact=True))\
                .to_have_value(re.compile(r"^debian-sections \(eval\)"))
            expect(j.live().get_by_role("combobox", name="Task", exact=True)).to_have_value("Classification")
            j.fill("Base model", tiny_model_dir)
            j.fill("Steps (max_iterations)", 3)
            j.fill("Learning rate multiplier", "50.00")  # so three steps visibly move a random model
            j.fill("Run name (optional)", "tiny-a")
            page.get_by_role("button", name="Start tuning").click()
            expect(page.get_by_text("Run tiny-a started")).to_be_visible()
            seen = j.wait_until("the run to succeed", lambda: page.get_by_text(
                "Tuning finished and the adapter is saved").count() > 0, 150, j.live().locator('[data-testid="stProgress"]'))
            print("run card progress seen:", seen)
            assert any(re.search(r"Waiting|Step \d of 3", t) for t in seen), seen  # the card showed it going
            expect(j.live().get_by_text(re.compile(r"Succeeded$"))).to_be_visible()  # the run card's badge
            expect(j.metric("Step")).to_contain_text("3 / 3")
            expect(page.get_by_text(re.compile(r"25 train / 5 eval rows"))).to_be_visible()
            picker = j.live().get_by_role("combobox", name="Run", exact=True)
            expect(picker).to_have_value(re.compile(r"^tiny-a \(.+\)  ·  Classification$"))  # no stale state
            j.shot("tune-succeeded")
            j.done("tune")

            # Playground: the run by its name; one prompt, answers; both pairs saved for labeling.
            j.go("Playground")
            expect(j.live().get_by_role("combobox", name="Tuned run", exact=True))\
                .to_have_value(re.compile(r"^tiny-a \(.+succeeded$"))
            prompt = "Frozen Bubble is a puzzle game: shoot coloured bubbles to clear the board."
            box = j.live().get_by_label("Input", exact=True)
            box.fill(prompt)
            box.press("Control+Enter")  # a text area commits on Ctrl+Enter (or when it loses focus)
            page.get_by_role("button", name="Generate").click()
            expect(page.get_by_text("Generated on")).to_be_visible(timeout=90_000)
            expect(page.get_by_text("Tuned — tiny-a", exact=True)).to_be_visible()
            expect(page.get_by_text(f"Base model — {tiny_model_dir}", exact=True)).to_be_visible()
            expect(page.get_by_text(re.compile(r"\d+ tokens? · [\d.,]+ tokens/s"))).to_have_count(2)  # both panes
            j.shot("playground-answers")
            page.get_by_role("button", name="Save pair").click()
            expect(page.get_by_text("Saved to queue playground (item 1).")).to_be_visible()
            page.get_by_role("button", name="Try an example from the run's data").click()
            expect(page.get_by_text("Expected answer in the data:")).to_be_visible()
            page.get_by_role("button", name="Generate").click()
            # the first answer's (disabled) button stays on the page, marked stale, until the new one renders
            save = j.live().get_by_role("button", name="Save pair")
            expect(save).to_be_enabled(timeout=60_000)
            save.click()
            expect(page.get_by_text("Saved to queue playground (item 2).")).to_be_visible()
            j.done("playground")

            # Evaluate: base vs tuned on the registered eval rows; the dashboard's numbers.
            j.go("Evaluate")
            expect(j.live().get_by_role("combobox", name="Tuned run", exact=True))\
                .to_have_value(re.compile(r"^tiny-a \("))
            page.get_by_role("button", name="Compare on eval set").click()
            seen = j.wait_until("the evaluation's dashboard", lambda: j.metric("Accuracy").count() > 0, 150,
                                j.live().locator('[data-testid="stProgress"]'))
            print("evaluation progress seen:", seen)
            expect(j.metric("Accuracy")).to_contain_text(re.compile(r"\d+\.\d%"))
            expect(j.metric("Macro F1")).to_contain_text(re.compile(r"\d+\.\d%"))
            expect(page.get_by_text(re.compile(r"5 rows · base vs tuned run tiny-a"))).to_be_visible()
            expect(j.live().get_by_role("combobox", name="Evaluation", exact=True)).to_have_value(re.compile("tiny-a"))
            expect(page.get_by_text("Per-label metrics")).to_be_visible()
            j.shot("evaluate-dashboard")
            j.done("evaluate")

            # Preferences: the two pairs, labeled blind with the keyboard; the Review counts them.
            j.go("Preferences")
            j.fill("Your name", "ann")
            expect(j.live().get_by_role("combobox", name="Queue", exact=True)).to_have_value(
                re.compile(r"^playground  ·  2 items"))
            for item, key, done in ((1, "1", 1), (2, "3", 2)):  # A is better, then a tie
                caption = page.get_by_text(f"Item {item} · prompt", exact=True)
                expect(caption).to_be_visible()
                caption.click()  # no text box has focus: the keys go to the buttons
                press_until(page, key, lambda n=done: len(preferences.labels(ws, "playground")) == n)
            labels = preferences.labels(ws, "playground")
            assert [(r["item_id"], r["labeler"]) for r in labels] == [(1, "ann"), (2, "ann")]
            assert labels[1]["choice"] == "tie"
            expect(page.get_by_text("All done: no item in this queue needs a label from you.", exact=False))\
                .to_be_visible()
            expect(page.get_by_text("You: 2 of 2 items labelled")).to_be_visible()
            j.shot("preferences-labeled")
            page.get_by_role("tab", name="Review").click()
            expect(j.metric("Items complete")).to_contain_text("2 / 2", timeout=25_000)
            expect(j.metric("Labels")).to_contain_text("2")
            j.shot("preferences-review")
            j.done("preferences")
        except Exception:
            try:
                j.shot("FAILED")
            except Exception as e:  # noqa: BLE001 -- the failure itself is what must show
                print(f"(no screenshot of the failure: {e})")
            print("server log (last lines):\n" + "\n".join(j.server_log.read_text(errors="replace").splitlines()[-40:]))
            raise
        finally:
            print("journey:", j.report())
            browser.close()
