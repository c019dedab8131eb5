"""Controlled viewing in headless Chromium (Debian's) against a real server: the display scale at
DPR 1 and 2, the window that must fit, a resize flagged, the phone and the attention screen-outs,
answering with the images in view, no answer focused, practice trials, a Korean study, everything
on screen at 1366x768.  ``STYLESTUDY_SCREENSHOTS=DIR`` also writes the docs' screenshots there (docs/screenshots/)."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import LiveServer, _pattern, _toml, needs_chromium
from tests.test_browser import AT_TRIAL, PAST_TRIAL

pytestmark = needs_chromium

SCREENSHOTS = os.environ.get("STYLESTUDY_SCREENSHOTS", "")


def _import(tmp_path, kind: str, size=(96, 64), items=("a", "b", "c"), briefing=(), reference_size=None,
            **settings) -> Path:
    """An imported study of two methods with stimuli of ``size`` px and ``settings`` under [protocol];
    ``reference_size``: a style painting and a content photo per item of that size."""
    from stylestudy.engine.study.importer import import_images

    src = tmp_path / "src"
    if reference_size:
        for k, folder in enumerate(("_style", "_content")):
            (src / folder).mkdir(parents=True)
            for i, item in enumerate(items):
                _pattern(*reference_size, 300 + 10 * k + i).save(src / folder / f"{item}.png")
    for m, method in enumerate(("m1", "m2")):
        (src / method).mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(items):
            _pattern(*size, 200 + 10 * m + i).save(src / method / f"{item}.png")
    values = {"image_seconds": 0.3, "rating_seconds": 4.0, "completion_code": "C0DE42", **settings}
    study = tmp_path / "study.toml"
    study.write_text("[study]\nname = \"viewing\"\n[protocol]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
    run = tmp_path / "run"
    import_images(src, run, kind, study, briefing=list(briefing))
    return run


def _context(browser, viewport=(1280, 800), dpr=1, screen=(1920, 1080), **options):
    return browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=dpr,
                               screen={"width": screen[0], "height": screen[1]}, **options)


def _enter(context, url: str, consent="I have read the above and agree to take part.", start="Start",
           go_on="Continue"):
    page = context.new_page()
    page.goto(url)
    page.get_by_label(consent).check()
    page.get_by_role("button", name=start).click()
    if go_on:
        page.get_by_role("button", name=go_on).click()
    return page


def _export(run, tmp_path, participants: bool = False):
    from stylestudy.cli import main

    out, people = tmp_path / "ratings.csv", tmp_path / "participants.csv"
    args = ["export", str(run), "--out", str(out)] + (["--participants-csv", str(people)] if participants else [])
    assert main(args) == 0
    rows = list(csv.DictReader(out.open()))
    return (rows, list(csv.DictReader(people.open()))) if participants else rows


ANSWERING = "() => { const r = document.getElementById('rating'); return !!r && !r.hidden; }"


def _box(page, selector: str) -> dict:
    return page.locator(selector).bounding_box()


@pytest.mark.parametrize("display,dpr,expected", [
    ("native", 1, (96, 64)), ("native", 2, (96, 64)), ("device", 2, (48, 32)), ("device", 1, (96, 64)),
    ("fit", 1, None), ("fit", 2, None),
])
def test_display_scale_in_chromium(browser, tmp_path, display, dpr, expected):
    """native: one image pixel per CSS pixel; device: per device pixel; fit: today's 70% of the window
    height.  What the export says was shown is what the browser laid out."""
    run = _import(tmp_path, "acr", display=display, answer_with_images=display != "fit", image_seconds=1.0)
    context = _context(browser, dpr=dpr)
    with LiveServer(run) as server:
        page = _enter(context, server.url + "/?pid=scale")
        page.wait_for_function(AT_TRIAL, arg=1)
        page.locator("#stage img").wait_for(state="visible", timeout=30_000)
        box = _box(page, "#stage img")
        assert page.evaluate("window.devicePixelRatio") == dpr
        if expected:
            assert (box["width"], box["height"]) == expected
        else:  # fit: 70vh high, the aspect kept
            assert box["height"] == pytest.approx(0.7 * 800, abs=0.5)
            assert box["width"] == pytest.approx(0.7 * 800 * 96 / 64, abs=1)
        page.wait_for_function(ANSWERING, timeout=30_000)
        page.keyboard.press("3")
        page.wait_for_function(PAST_TRIAL, arg=1, timeout=30_000)
        context.close()
    row = next(r for r in _export(run, tmp_path) if r["trial"] == "1")
    assert float(row["shown_width"]) == pytest.approx(box["width"], abs=0.01)
    assert float(row["shown_height"]) == pytest.approx(box["height"], abs=0.01)
    assert float(row["device_pixel_ratio"]) == dpr
    assert (row["image_width"], row["image_height"]) == ("96", "64")
    assert row["viewport"] == "1280x800" and row["screen"] == "1920x1080" and row["pointer"] == "fine"
    assert "Chrome" in row["user_agent"] and "resized" not in row["flags"]


def test_window_must_fit_and_resize_is_flagged(browser, tmp_path):
    """Side-by-side pairwise of 300x200 px stimuli at native scale: in a small window no trial starts
    and the message names the size needed; at exactly that size the study starts and nothing
    scrolls; a resize during a trial is flagged in the export."""
    run = _import(tmp_path, "pairwise", size=(300, 200), pairs_per_participant=2)
    context = _context(browser, viewport=(700, 400))
    with LiveServer(run) as server:
        page = _enter(context, server.url + "/?pid=fit")
        message = page.get_by_role("alert")
        message.wait_for(state="visible", timeout=30_000)
        needed = re.search(r"at least (\d+) × (\d+) pixels; yours is 700 × 400", message.inner_text())
        assert needed, message.inner_text()
        width, height = int(needed[1]), int(needed[2])
        assert width >= 2 * 300 + 16 and height >= 200 + 24
        page.wait_for_timeout(1500)
        assert page.inner_text("#progress") == "Loading…" and page.locator("#stage img").count() == 0
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(AT_TRIAL, arg=1, timeout=30_000)
        assert page.locator("#fit").is_hidden()
        page.wait_for_function(ANSWERING, timeout=30_000)
        layout = page.evaluate("() => ({scrollW: document.documentElement.scrollWidth, scrollH: "
                               "document.documentElement.scrollHeight, w: innerWidth, h: innerHeight})")
        assert layout["scrollW"] <= layout["w"] and layout["scrollH"] <= layout["h"], layout
        page.set_viewport_size({"width": width + 80, "height": height + 40})  # mid-trial
        page.keyboard.press("1")
        page.wait_for_function(AT_TRIAL, arg=2, timeout=30_000)
        page.wait_for_function(ANSWERING, timeout=30_000)
        page.keyboard.press("2")
        page.wait_for_url(re.compile(r"/done$"), timeout=30_000)
        context.close()
    rows = _export(run, tmp_path)
    flagged = {r["trial"]: "resized" in r["flags"].split(";") for r in rows}
    assert flagged == {"1": True, "2": False}
    assert {r["viewport"] for r in rows} == {f"{width}x{height}"}  # the window the trials started in


def test_phone_is_screened_out(browser, tmp_path):
    """allow_mobile = false: a phone (touch, 390x844) sees the screen-out page with its code and
    link; the reason is in the participants export; a desktop browser takes part."""
    run = _import(tmp_path, "pairwise", allow_mobile=False, screen_out_code="SCR33N",
                  screen_out_url="https://app.prolific.com/submissions/complete?cc=SCR33N")
    phone = _context(browser, viewport=(390, 844), dpr=3, screen=(390, 844), is_mobile=True, has_touch=True)
    desktop = _context(browser)
    with LiveServer(run) as server:
        page = _enter(phone, server.url + "/?PROLIFIC_PID=phone-1", go_on=None)
        page.wait_for_url(re.compile(r"/screened-out$"), timeout=30_000)
        assert page.get_by_role("heading").inner_text() == "This study cannot be taken on this device"
        assert "phones and tablets" in page.inner_text("#reason")
        assert page.inner_text("#screen-out-code") == "SCR33N"
        assert page.get_by_role("link", name="Return to the study list").get_attribute("href").endswith("cc=SCR33N")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / "phone-screened-out.png"))
        assert page.goto(server.url + "/trial").url.endswith("/screened-out")  # no way round it
        other = _enter(desktop, server.url + "/?PROLIFIC_PID=desk-1")
        other.wait_for_function(AT_TRIAL, arg=1, timeout=30_000)
        phone.close()
        desktop.close()
    rows, people = _export(run, tmp_path, participants=True)
    by_id = {p["external_id"]: p for p in people}
    assert by_id["phone-1"]["screened_out"] == "mobile" and by_id["phone-1"]["trials"] == "0"
    assert by_id["phone-1"]["viewport"] == "390x844" and by_id["phone-1"]["pointer"] == "coarse"
    assert by_id["desk-1"]["screened_out"] == ""
    assert not [r for r in rows if r["external_id"] == "phone-1"]


def test_a_failed_attention_check_ends_at_the_screen_out_page(browser, tmp_path):
    """attention_screen_out = 1 in Chromium: the participant answers the check against its
    instruction; the page goes on to the screen-out page (its own wording, the code, no way back
    to the trials), the failed check is stored, and the participants export says why."""
    run = _import(tmp_path, "pairwise", attention_checks=1, attention_screen_out=1, pairs_per_participant=2,
                  screen_out_code="ATT9")
    context = _context(browser)
    turn = ("(progress) => location.pathname.endsWith('/screened-out') || "
            "document.querySelector('#progress').textContent === progress")
    with LiveServer(run) as server:
        page = _enter(context, server.url + "/?PROLIFIC_PID=careless")
        for k in (1, 2, 3):
            page.wait_for_function(turn, arg=f"Trial {k} of 3", timeout=30_000)
            if page.url.endswith("/screened-out"):
                break
            page.wait_for_function(ANSWERING, timeout=30_000)
            asked = page.inner_text("#instruction") if page.locator("#instruction").is_visible() else ""
            page.keyboard.press(str(3 - int(asked.rstrip(".").split()[-1])) if asked else "1")  # the wrong one
        page.wait_for_url(re.compile(r"/screened-out$"), timeout=30_000)
        assert page.get_by_role("heading").inner_text() == "The study ends here"
        assert page.inner_text("#screen-out-code") == "ATT9"
        assert page.goto(server.url + "/trial").url.endswith("/screened-out")
        context.close()
    rows, people = _export(run, tmp_path, participants=True)
    assert people[0]["screened_out"] == "attention" and people[0]["completed_at"] == ""
    failed = [r for r in rows if r["role"] == "attention"]
    assert failed and all("attention_failed" in r["flags"].split(";") for r in failed)


def test_pairwise_answered_with_images_in_view_and_practice(browser, tmp_path):
    """Imported pairwise (side by side): during the answer phase both images are on screen, each
    labelled beneath; no option has focus; two practice trials from the briefing item come first,
    are stored with role practice and reach no analysis table."""
    from stylestudy.analysis.sources.ratings import load_ratings

    run = _import(tmp_path, "pairwise", size=(120, 90), items=("a", "b", "c", "d"), briefing=("d",), practice=2,
                  pairs_per_participant=2)
    context = _context(browser, viewport=(1366, 768))
    with LiveServer(run) as server:
        page = _enter(context, server.url + "/?pid=pw")
        for step, label in enumerate(("Practice 1 of 2", "Practice 2 of 2", "Trial 1 of 2", "Trial 2 of 2")):
            page.wait_for_function("t => document.querySelector('#progress').textContent === t", arg=label,
                                   timeout=30_000)
            page.wait_for_function(ANSWERING, timeout=30_000)
            images = page.locator("#stage img")
            assert images.count() == 2
            boxes = [images.nth(i).bounding_box() for i in range(2)]
            assert all(b["width"] == 120 and b["height"] == 90 for b in boxes)  # native, in view
            assert all(0 <= b["y"] and b["y"] + b["height"] <= 768 for b in boxes)
            assert boxes[0]["x"] + 120 <= boxes[1]["x"]  # Image 1 on the left
            captions = page.locator("#stage figcaption")
            assert captions.all_inner_texts() == ["Image 1", "Image 2"]
            for i in range(2):
                assert captions.nth(i).bounding_box()["y"] >= boxes[i]["y"] + boxes[i]["height"]  # beneath
            assert page.evaluate("document.activeElement === document.body")  # nothing pre-selected by focus
            assert page.get_by_role("radio", checked=True).count() == 0
            if step == 1:
                page.get_by_role("radiogroup", name="Preferred image").get_by_role("radio", name="Image 2").check(
                    force=True)
            else:
                page.keyboard.press("1")
        page.wait_for_url(re.compile(r"/done$"), timeout=30_000)
        context.close()
    rows = _export(run, tmp_path)
    practice = [r for r in rows if r["role"] == "practice"]
    assert len(practice) == 4 and {r["block"] for r in practice} == {"practice"}
    assert {r["pair_id"] for r in practice} == {"practice-1", "practice-2"}
    assert all(r["condition_id"].startswith("d:") for r in practice)
    ratings = load_ratings(tmp_path / "ratings.csv", run / "manifest.json")
    assert len(ratings.usable) == 4 and not ratings.usable["condition_id"].str.startswith("d:").any()
    assert set(ratings.usable["role"]) == {"rated"}


KOREAN_STUDY = {"language": "ko", "no_preference": True, "pairs_per_participant": 2, "completion_code": "424242",
                "title": "이미지 비교 연구"}


def _latin_words(page) -> list[str]:
    return re.findall(r"[A-Za-z]{2,}", page.inner_text("body"))


def test_korean_study_by_korean_names(browser, tmp_path):
    """language = "ko": every participant page is Korean (no Latin word on screen); the study is
    taken through by its Korean accessible names; the title the study file sets is shown as written."""
    run = _import(tmp_path, "pairwise", **KOREAN_STUDY)
    context = _context(browser, viewport=(1366, 768))
    with LiveServer(run) as server:
        page = context.new_page()
        page.goto(server.url + "/?pid=ko-1")
        assert page.get_attribute("html", "lang") == "ko"
        assert page.get_by_role("heading", level=1).inner_text() == "이미지 비교 연구"
        assert _latin_words(page) == []
        page.get_by_label("위 내용을 읽었으며 참여에 동의합니다.").check()
        page.get_by_role("button", name="시작").click()
        assert "어느 이미지가 화풍을 더 잘 옮겼습니까?" in page.inner_text("main")  # the default question, translated
        assert _latin_words(page) == []
        page.get_by_role("button", name="계속").click()
        for trial, name in ((1, "이미지 2"), (2, "선호 없음")):
            page.wait_for_function("t => document.querySelector('#progress').textContent === t",
                                   arg=f"시행 {trial} / 2", timeout=30_000)
            group = page.get_by_role("radiogroup", name="선호하는 이미지")
            group.wait_for(state="visible", timeout=30_000)
            assert _latin_words(page) == []
            assert page.locator("#stage img").evaluate_all("els => els.map(e => e.alt)") == ["이미지 1", "이미지 2"]
            group.get_by_role("radio", name=name).check(force=True)
        page.wait_for_url(re.compile(r"/done$"), timeout=30_000)
        assert page.get_by_role("heading").inner_text() == "감사합니다!" and _latin_words(page) == []
        context.close()
    rows = _export(run, tmp_path)
    assert [r["rating"] for r in rows] == ["0", "1", "0", "0"]


def _paired_fit(run_copy) -> Path:
    """The generated test run set to the paper's presentation: fit, shown then rated."""
    manifest = run_copy / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["study"]["protocol"].update(display="fit", rating_seconds=4.0)
    manifest.write_text(json.dumps(doc))
    return run_copy


@pytest.mark.parametrize("kind", ["acr", "pairwise", "paired-fit"])
def test_everything_on_screen_at_1366x768(browser, tmp_path, request, kind):
    """Every scale label and control is inside a 1366x768 window during the answer phase, without
    scrolling; the favicon costs no request."""
    if kind == "paired-fit":
        run, group = _paired_fit(request.getfixturevalue("run_copy")), "Image 1"
    else:
        run = _import(tmp_path, kind, size=(256, 256), no_preference=kind == "pairwise", pairs_per_participant=1)
        group = "Rating" if kind == "acr" else "Preferred image"
    context = _context(browser, viewport=(1366, 768))
    missing = []
    with LiveServer(run) as server:
        page = context.new_page()
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        page.goto(server.url + "/?pid=screen")
        page.get_by_label("I have read the above and agree to take part.").check()
        page.get_by_role("button", name="Start").click()
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("radiogroup", name=group).wait_for(state="visible", timeout=30_000)
        labels = page.locator("#rating label, #rating .legend, #question, #timer")
        for i in range(labels.count()):
            if labels.nth(i).is_visible():
                b = labels.nth(i).bounding_box()
                assert 0 <= b["x"] and b["x"] + b["width"] <= 1366 and 0 <= b["y"] and b["y"] + b["height"] <= 768, \
                    (labels.nth(i).inner_text(), b)
        assert page.evaluate("document.documentElement.scrollHeight") <= 768
        if SCREENSHOTS and kind == "pairwise":
            page.screenshot(path=str(Path(SCREENSHOTS) / "desktop-pairwise.png"))
        if kind == "acr":
            scale = page.locator("#rating .text").all_inner_texts()
            assert scale == ["Bad", "Poor", "Fair", "Good", "Excellent"]  # P.910, imported acr default
            assert page.inner_text("#question") == "How good is the quality of this image?"
        context.close()
    assert missing == []


def test_phone_when_allowed_keeps_the_pair_side_by_side(browser, tmp_path):
    """allow_mobile (default): on a 390x844 phone the side-by-side pair stays side by side, Image 1
    on the left, at native scale, with the answer buttons in view, and nothing overflows the width."""
    run = _import(tmp_path, "pairwise", size=(120, 90), pairs_per_participant=1)
    phone = _context(browser, viewport=(390, 844), dpr=3, screen=(390, 844), is_mobile=True, has_touch=True)
    with LiveServer(run) as server:
        page = _enter(phone, server.url + "/?pid=phone-ok")
        page.wait_for_function(ANSWERING, timeout=30_000)
        first, second = (page.locator("#stage img").nth(i).bounding_box() for i in range(2))
        assert (first["width"], first["height"]) == (120, 90) and (second["width"], second["height"]) == (120, 90)
        assert second["x"] >= first["x"] + 120 and second["y"] == first["y"]  # side by side
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for label in page.locator("#rating label").all():
            box = label.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
        page.get_by_role("radio", name="Image 2").tap(force=True)
        page.wait_for_url(re.compile(r"/done$"), timeout=30_000)
        phone.close()
    (row,) = [r for r in _export(run, tmp_path) if r["rating"] == "1"]
    assert row["pointer"] == "coarse" and row["device_pixel_ratio"] == "3" and row["viewport"] == "390x844"


def test_fullscreen_is_asked_for_and_leaving_it_is_flagged(browser, tmp_path):
    run = _import(tmp_path, "acr", items=("a",), fullscreen=True)
    context = _context(browser)
    with LiveServer(run) as server:
        page = _enter(context, server.url + "/?pid=fs")
        button = page.get_by_role("button", name="Enter full screen")
        button.wait_for(state="visible", timeout=30_000)
        page.wait_for_timeout(800)
        assert page.locator("#stage img").count() == 0  # nothing starts before
        button.click()
        page.wait_for_function(AT_TRIAL, arg=1, timeout=30_000)
        assert page.evaluate("!!document.fullscreenElement")
        page.wait_for_function(ANSWERING, timeout=30_000)
        page.evaluate("document.exitFullscreen()")
        page.wait_for_function("() => !document.fullscreenElement")
        page.keyboard.press("4")
        button.wait_for(state="visible", timeout=30_000)  # asked again before trial 2
        button.click()
        page.wait_for_function(ANSWERING, timeout=30_000)
        page.keyboard.press("2")
        page.wait_for_url(re.compile(r"/done$"), timeout=30_000)
        context.close()
    rows = _export(run, tmp_path)
    assert ["fullscreen_exit" in r["flags"].split(";") for r in rows] == [True, False]


def test_references_shown_beside_never_rated(browser, tmp_path):
    """references = ["style", "content"]: the item's painting and photo are on screen after the two
    stimuli at the display scale, captioned, in every phase; only the stimuli are rated."""
    run = _import(tmp_path, "pairwise", size=(100, 80), reference_size=(60, 90), references=["style", "content"],
                  pairs_per_participant=1)
    context = _context(browser, viewport=(1366, 768), dpr=2)
    with LiveServer(run) as server:
        page = _enter(context, server.url + "/?pid=refs")
        page.wait_for_function(ANSWERING, timeout=30_000)
        assert page.locator("#stage figcaption").all_inner_texts() == ["Image 1", "Image 2", "Style painting",
                                                                       "Original photo"]
        boxes = [page.locator("#stage img").nth(i).bounding_box() for i in range(4)]
        assert [(b["width"], b["height"]) for b in boxes] == [(100, 80), (100, 80), (60, 90), (60, 90)]
        assert all(b["y"] + b["height"] <= 768 for b in boxes)
        page.keyboard.press("2")
        page.wait_for_url(re.compile(r"/done$"), timeout=30_000)
        context.close()
    rows = _export(run, tmp_path)
    assert len(rows) == 2 and sorted(r["rating"] for r in rows) == ["0", "1"]
