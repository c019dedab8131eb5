"""The acr and pairwise protocols in headless Chromium, found by role and name as a screen
reader would: the radio group "Rating" (options 1..k) and "Preferred image" ("Image 1",
"Image 2", "No preference")."""

from __future__ import annotations

import csv
import re

from tests.conftest import LiveServer, import_run, needs_chromium
from tests.test_browser import AT_TRIAL, PAST_TRIAL, _start, assert_shown_ms

pytestmark = needs_chromium


def _export(run, tmp_path):
    from stylestudy.cli import main

    out = tmp_path / "ratings.csv"
    assert main(["export", str(run), "--out", str(out)]) == 0
    return list(csv.DictReader(out.open()))


def test_acr_in_chromium(browser, import_source, tmp_path):
    run = import_run(import_source, tmp_path / "run", "acr", repeats=1)
    given = {}
    with LiveServer(run) as server:
        page = _start(browser, server.url + "/?pid=acr-browser")
        for trial in range(1, 14):
            page.wait_for_function(AT_TRIAL, arg=trial)
            group = page.get_by_role("radiogroup", name="Rating")
            group.wait_for(state="visible", timeout=10_000)
            assert page.locator("#stage img").is_visible()  # imported acr: rated with the image in view
            value = trial % 5 + 1
            if trial % 3 == 0:
                page.keyboard.press(str(value))  # keyboard only
            else:
                group.get_by_role("radio", name=re.compile(rf"^{value}\b")).check(force=True)
            given[trial] = value
            page.wait_for_function(PAST_TRIAL, arg=trial, timeout=10_000)
        page.wait_for_url(re.compile(r"/done$"), timeout=10_000)
        assert "C0DE42" in page.inner_text("#completion-code")
    rows = _export(run, tmp_path)
    assert len(rows) == 13 and sum(r["role"] == "repeat" for r in rows) == 1
    for row in rows:
        assert int(row["rating"]) == given[int(row["trial"])] and row["position"] == "1"
        assert_shown_ms(float(row["shown_ms"]))  # measured on screen (target 250 ms)
        assert set(filter(None, row["flags"].split(";"))) <= {"short_display", "repeat"}


def test_pairwise_side_by_side_in_chromium(browser, import_source, tmp_path):
    run = import_run(import_source, tmp_path / "run", "pairwise", no_preference=True, pairs_per_participant=4)
    answers = {1: "Image 1", 2: "Image 2", 3: "No preference", 4: None}
    with LiveServer(run) as server:
        page = _start(browser, server.url + "/?pid=pw-browser")
        page.wait_for_function(AT_TRIAL, arg=1)
        page.wait_for_function("() => document.querySelectorAll('#stage.side-by-side img').length === 2")
        alts = page.locator("#stage img").evaluate_all("els => els.map(e => e.alt)")
        assert alts == ["Image 1", "Image 2"]
        for trial, name in answers.items():
            page.wait_for_function(AT_TRIAL, arg=trial)
            group = page.get_by_role("radiogroup", name="Preferred image")
            group.wait_for(state="visible", timeout=10_000)
            options = group.get_by_role("radio").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
            assert options == ["Image 1", "Image 2", "No preference"]
            if name == "Image 2":
                page.keyboard.press("2")
            elif name:
                group.get_by_role("radio", name=name).check(force=True)
            page.wait_for_function(PAST_TRIAL, arg=trial, timeout=10_000)  # trial 4: the window closes
        page.wait_for_url(re.compile(r"/done$"), timeout=10_000)
    rows = _export(run, tmp_path)
    assert len(rows) == 8
    by_trial = {t: [r for r in rows if int(r["trial"]) == t] for t in answers}
    assert [r["rating"] for r in by_trial[1]] == ["1", "0"]
    assert [r["rating"] for r in by_trial[2]] == ["0", "1"]
    assert [r["rating"] for r in by_trial[3]] == ["0", "0"] and all("no_preference" in r["flags"] for r in by_trial[3])
    assert [r["rating"] for r in by_trial[4]] == ["", ""] and all("timeout" in r["flags"] for r in by_trial[4])
    for row in rows:  # both images on screen together, measured once
        assert_shown_ms(float(row["shown_ms"]))


def test_pairwise_sequential_in_chromium(browser, import_source, tmp_path):
    """layout = "sequential", show-then-answer: Image 1, then Image 2, never both at once; each timed on screen."""
    run = import_run(import_source, tmp_path / "run", "pairwise", layout="sequential", pairs_per_participant=2,
                     answer_with_images=False)  # show, then answer: never both at once
    with LiveServer(run) as server:
        page = browser.new_page()
        page.add_init_script("window.__mostImages = 0; new MutationObserver(() => { const s = document.getElementById"
                             "('stage'); if (s) window.__mostImages = Math.max(window.__mostImages, "
                             "s.querySelectorAll('img').length); }).observe(document, {subtree: true, childList: true});")
        page.goto(server.url + "/?pid=seq")
        page.get_by_label("I have read the above and agree to take part.").check()
        page.get_by_role("button", name="Start").click()
        assert "one after the other" in page.inner_text("main")
        page.get_by_role("button", name="Continue").click()
        for trial, name in ((1, "Image 2"), (2, "Image 1")):
            page.wait_for_function(AT_TRIAL, arg=trial)
            group = page.get_by_role("radiogroup", name="Preferred image")
            group.wait_for(state="visible", timeout=10_000)
            assert page.evaluate("window.__mostImages") == 1
            group.get_by_role("radio", name=name).check(force=True)
            page.wait_for_function(PAST_TRIAL, arg=trial, timeout=10_000)
        page.wait_for_url(re.compile(r"/done$"), timeout=10_000)
    rows = _export(run, tmp_path)
    assert [r["rating"] for r in rows] == ["0", "1", "1", "0"]
    for r in rows:  # each image measured on its own
        assert_shown_ms(float(r["shown_ms"]))
