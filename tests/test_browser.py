"""A real participant in headless Chromium (Debian's), driven by Playwright, against a real server."""

from __future__ import annotations

import csv
import re

from tests.conftest import LiveServer, needs_chromium

pytestmark = needs_chromium

AT_TRIAL = "t => { const p = document.querySelector('#progress'); return !!p && p.textContent.startsWith(`Trial ${t} `); }"
PAST_TRIAL = ("t => { const p = document.querySelector('#progress'); "
              "return location.pathname === '/done' || (!!p && !p.textContent.startsWith(`Trial ${t} `)); }")


def _start(browser, url: str):
    """Consent, Start, Continue: the way a participant gets to the first trial."""
    page = browser.new_page()
    page.goto(url)
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Continue").click()
    return page


IMAGE_MS = 250.0  # the test studies' image_seconds = 0.25


def assert_shown_ms(value: float, image_ms: float = IMAGE_MS) -> None:
    """study.js's show() times from the first frame that paints the image to the first that paints
    without it, and only stops waiting once ``image_ms - 8`` ms have passed: the measurement can
    never be below that (a busy machine only makes frames later).  Above, a loaded 2-core machine
    may delay frames, so the bound is generous (1.5 s); the server flags such trials short_display."""
    assert image_ms - 8 <= value < image_ms + 1500, f"shown_ms {value} for a {image_ms} ms display"


def test_participant_completes_study_with_refresh(browser, run_copy, tmp_path):
    with LiveServer(run_copy) as server:
        page = _start(browser, server.url + "/?PROLIFIC_PID=browser-1&STUDY_ID=st&SESSION_ID=se")
        given = {}
        for trial in range(1, 5):
            page.wait_for_function(AT_TRIAL, arg=trial)
            if trial == 2:  # refresh mid-trial: same trial again
                page.wait_for_timeout(150)
                page.reload()
                page.wait_for_function(AT_TRIAL, arg=2)
            group1 = page.get_by_role("radiogroup", name="Image 1")
            group1.wait_for(state="visible", timeout=10_000)
            first, second = (trial % 5) + 1, ((trial + 2) % 5) + 1
            if trial == 3:  # keyboard only
                page.keyboard.press(str(first))
                page.keyboard.press(str(second))
            else:
                group1.get_by_role("radio", name=re.compile(rf"^{first}\b")).check(force=True)
                page.get_by_role("radiogroup", name="Image 2").get_by_role(
                    "radio", name=re.compile(rf"^{second}\b")).check(force=True)
            given[trial] = (first, second)
            page.wait_for_function(PAST_TRIAL, arg=trial, timeout=10_000)
        page.wait_for_url(re.compile(r"/done$"), timeout=10_000)
        assert "C0DE42" in page.inner_text("#completion-code")
        page.screenshot(path=str(tmp_path / "done.png"))
    from stylestudy.cli import main

    out = tmp_path / "ratings.csv"
    assert main(["export", str(run_copy), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8
    for row in rows:
        t, pos = int(row["trial"]), int(row["position"])
        assert int(row["rating"]) == given[t][pos - 1], row
        assert row["external_id"] == "browser-1"
        assert_shown_ms(float(row["shown_ms"]))  # measured on screen (target 250 ms)
        flags = set(filter(None, row["flags"].split(";")))
        assert flags <= {"short_display", "restarted", "blur"}
        assert ("restarted" in flags) == (t == 2)
        assert float(row["response_ms"]) > 0


def test_timeout_when_participant_does_not_rate(browser, run_copy, tmp_path):
    with LiveServer(run_copy) as server:
        page = _start(browser, server.url + "/?pid=idle")
        page.get_by_role("radiogroup", name="Image 1").get_by_role("radio", name=re.compile(r"^4\b")).check(
            force=True, timeout=10_000)
        # Image 2 is never rated: the 2 s window closes and the next trial starts.
        page.wait_for_function(AT_TRIAL, arg=2, timeout=10_000)
    from stylestudy.evalserver.app import default_db_url
    from stylestudy.evalserver.db import make_engine, make_sessionmaker
    from stylestudy.evalserver.export import export_rows

    with make_sessionmaker(make_engine(default_db_url(run_copy)))() as session:
        rows = export_rows(session)
    assert [r["rating"] for r in rows] == [4, ""]
    assert "timeout" in rows[1]["flags"] and "timeout" not in rows[0]["flags"]
