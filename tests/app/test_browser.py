"""The demo in a real browser: Debian's chromium driven by Playwright (no browser download).

Skips with the reason when /usr/bin/chromium or playwright is missing (``make test`` installs them).
Set EMOMOTION_SCREENSHOT=path.png to keep the screenshot of the generated page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
PROMPT = "a person walks forward"

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not found: run scripts/ensure_chromium.sh (make test does)", allow_module_level=True
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(served.url)
    page.locator("#generate").wait_for()
    yield page
    context.close()


def pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_generate_and_play(page, served, tmp_path):
    page.get_by_text("a person knocks on a door").first.click()  # an example fills prompt and emotion
    prompt = page.locator("#prompt textarea")
    page.wait_for_function("() => document.querySelector('#prompt textarea').value.includes('knocks')")
    assert page.locator("#emotion input").input_value() == "Anger"
    prompt.fill(PROMPT)
    pick(page, "emotion", "Joy")
    page.locator("#generate").click()
    video = page.locator("#animation video")
    video.wait_for()
    duration = page.wait_for_function(
        """() => { const v = document.querySelector('#animation video');
                   return v && v.readyState >= 1 && v.duration > 0 ? v.duration : null; }"""
    ).json_value()
    assert 3.0 < duration < 5.0  # the default 4 s motion
    played = page.evaluate(
        """async () => { const v = document.querySelector('#animation video');
                         v.muted = true; await v.play();
                         await new Promise(r => setTimeout(r, 700));
                         return {t: v.currentTime, paused: v.paused, w: v.videoWidth}; }"""
    )
    assert played["t"] > 0 and not played["paused"] and played["w"] > 0
    status = page.locator("#status")
    assert "(Joy, intensity 1)" in status.inner_text()
    links = page.locator("#downloads a[href]").evaluate_all("as => as.map(a => a.href)")
    ends = sorted(link.rsplit("_", 1)[-1] for link in links)
    assert ends == ["features.npy", "joints.npy", "motion.bvh", "motion.mp4"], links
    bvh = page.request.get(next(link for link in links if link.endswith(".bvh")))
    assert bvh.ok and bvh.text().startswith("HIERARCHY")
    shot = tmp_path / "web_demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("EMOMOTION_SCREENSHOT"):
        shutil.copyfile(shot, target)


def test_model_switch_and_overlong_prompt_error(page, served):
    runs_before = set(served.runner.out.iterdir())
    emotion = page.locator("#emotion")
    assert emotion.is_visible()
    pick(page, "model", list(served.runner.models)[1])  # the text-only model has no emotion picker
    emotion.wait_for(state="hidden")
    page.locator("#prompt textarea").fill("a person walks " * 20)
    page.locator("#generate").click()
    error = page.get_by_text("the limit is 200", exact=False)
    error.first.wait_for(timeout=20_000)
    assert "The prompt is 299 characters long" in error.first.inner_text()
    assert set(served.runner.out.iterdir()) == runs_before
