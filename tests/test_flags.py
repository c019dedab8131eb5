"""The rating flags named once (``evalserver.flags.Flag``): a flag is its plain name wherever it
is stored, joined, compared or written, so rows read back from any database match the enum."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from sqlalchemy import select

from stylestudy.evalserver.flags import EXCLUDED_BY_DEFAULT, PAGE_FLAGS, Flag, page_flag_names
from tests.conftest import import_run


def test_a_flag_is_its_plain_name_everywhere():
    assert ";".join(sorted({Flag.TIMEOUT, "resized", Flag.REPEAT})) == "repeat;resized;timeout"
    assert f"{Flag.SHORT_DISPLAY}" == str(Flag.SHORT_DISPLAY) == "short_display"
    assert json.dumps({"excluded_flags": list(EXCLUDED_BY_DEFAULT)}) == '{"excluded_flags": ["timeout", "short_display", "too_fast", "excluded"]}'
    stored = set("attention_failed;timeout".split(";"))  # as a row of the export holds them
    assert stored & {Flag.ATTENTION_FAILED, Flag.GOLD_FAILED} == {"attention_failed"}
    assert {Flag.TIMEOUT: 1}["timeout"] == 1 and Flag("gold_failed") is Flag.GOLD_FAILED


def test_analyze_and_its_command_leave_out_the_same_flags_by_default():
    import argparse

    from stylestudy.analysis.analyze import AnalyzeOptions
    from stylestudy.analysis.cli import register_analyze

    parser = argparse.ArgumentParser()
    register_analyze(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", "ratings.csv"])
    assert tuple(args.exclude_flags.split(",")) == tuple(AnalyzeOptions(out=None).exclude_flags) == (
        "timeout", "short_display", "too_fast", "excluded")


STUDY_JS = Path(__file__).resolve().parents[1] / "evalserver" / "static" / "study.js"


def test_every_flag_the_page_script_raises_is_a_flag_it_is_given():
    """The script names the flags it raises only through the names the server hands it
    (``flags.NAME``, from data-flags): each is a Flag member and a page flag, all are used, and no
    flag's value is written in the script as an answer key."""
    script = STUDY_JS.read_text(encoding="utf-8")
    used = set(re.findall(r"\bflags\.([A-Z_]+)\b", script))
    assert used and used <= set(Flag.__members__)
    assert used == {f.name for f in PAGE_FLAGS} == set(page_flag_names())
    assert re.search(r"JSON\.parse\(root\.dataset\.flags\)", script)
    literal_keys = set(re.findall(r"[{,]\s*([a-z_]+)\s*:", script)) | set(re.findall(r"[\"']([a-z_]+)[\"']\s*:", script))
    assert not literal_keys & {f.value for f in Flag}, "a flag written into the page script as an answer key"


def test_the_trial_page_hands_the_script_the_names_the_server_reads(import_source, tmp_path, db_url):
    """The names in the trial page's data-flags, sent back true as answer keys, are the flags stored."""
    from stylestudy.evalserver.app import create_app, database_url
    from stylestudy.evalserver.db import Rating, make_engine, make_sessionmaker

    run = import_run(import_source, tmp_path / "run", "acr")
    app = create_app(run, db_url)
    with app.test_client() as client:
        client.get("/")
        client.post("/start", data={"consent": "yes"})
        client.post("/briefing")
        page = client.get("/trial").get_data(as_text=True)
        (attribute,) = re.findall(r'data-flags="([^"]*)"', page)
        names = json.loads(html.unescape(attribute))
        assert names == {f.name: f.value for f in PAGE_FLAGS}
        client.get("/api/state")
        answer = {"ratings": [3], "shown_ms": [250.0], "response_ms": [800.0], "sizes": [[24, 20]], "dpr": 1}
        r = client.post("/api/trials/1", json={**answer, **{key: True for key in names.values()}})
        assert r.status_code == 200, r.get_data(as_text=True)
    with make_sessionmaker(make_engine(database_url(run, db_url)))() as s:
        (row,) = s.scalars(select(Rating)).all()
        assert set(names.values()) <= set(row.flags.split(";"))
