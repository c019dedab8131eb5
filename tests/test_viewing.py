"""Viewing settings without a browser: the study file's keys, the import defaults, the server's
gates and what it stores, old databases gaining the new columns, the report's viewing line, and
the Korean catalog (complete, compiled)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import inspect, select

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.manifest import StudyManifest
from stylestudy.engine.study.studyfile import load_import_settings
from stylestudy.evalserver.app import create_app, database_url
from stylestudy.evalserver.db import Participant, Rating, make_engine, make_sessionmaker
from tests.conftest import import_run


@pytest.mark.parametrize("line,message", [
    ('display = "huge"', "protocol.display"),
    ("min_viewport = [800]", "min_viewport: must be [width, height]"),
    ('references = ["painting"]', "unknown reference 'painting'"),
    ('language = "fr"', "protocol.language"),
    ('allow_mobile = "no"', "allow_mobile: must be true or false"),
    ("practice = -1", "practice"),
])
def test_bad_viewing_keys_are_one_line_errors(tmp_path, line, message):
    study = tmp_path / "study.toml"
    study.write_text(f"[protocol]\n{line}\n")
    with pytest.raises(StyleStudyError) as err:
        load_import_settings(study, ["m1", "m2"], "x")
    assert message in str(err.value) and str(study) in str(err.value) and "\n" not in str(err.value)


def test_import_defaults_and_what_a_file_says(import_source, tmp_path):
    acr = StudyManifest.load(import_run(import_source, tmp_path / "acr", "acr")).protocol
    assert acr.display == "native" and acr.answer_with_images is True and acr.language == "en"
    assert acr.scale == ["Bad", "Poor", "Fair", "Good", "Excellent"]
    assert acr.question == "How good is the quality of this image?"
    pw = StudyManifest.load(import_run(import_source, tmp_path / "pw", "pairwise")).protocol
    assert pw.answer_with_images is True and pw.question == "Which image transfers the style better?"
    told = StudyManifest.load(import_run(import_source, tmp_path / "told", "acr", answer_with_images=False,
                                         scale=["no", "yes"], question="Is it a bridge?", display="device")).protocol
    assert (told.answer_with_images, told.scale, told.question, told.display) == (False, ["no", "yes"],
                                                                                   "Is it a bridge?", "device")


def test_a_run_made_before_display_settings_keeps_fit(import_source, tmp_path):
    run = import_run(import_source, tmp_path / "old", "acr")
    doc = json.loads((run / "manifest.json").read_text())
    for key in ("display", "answer_with_images", "language", "practice"):
        doc["study"]["protocol"].pop(key)
    (run / "manifest.json").write_text(json.dumps(doc))
    p = StudyManifest.load(run).protocol
    assert p.display == "fit" and p.answer_with_images is False and p.practice == 0


def _start(client, environment: dict | None, pid: str | None = None) -> str:
    client.get("/")
    data = {"consent": "yes", **({"PROLIFIC_PID": pid} if pid else {})}
    if environment is not None:
        data["environment"] = json.dumps(environment)
    return client.post("/start", data=data).headers["Location"]


DESKTOP = {"viewport": [1280, 800], "screen": [1920, 1080], "dpr": 1, "pointer": "fine", "mobile": False}


def test_gates_screen_out_and_record(import_source, tmp_path, db_url):
    run = import_run(import_source, tmp_path / "run", "pairwise", allow_mobile=False, min_viewport=[1000, 700],
                     screen_out_code="OUT1")
    app = create_app(run, db_url, admin_token="tok")
    phone = dict(DESKTOP, viewport=[390, 844], screen=[390, 844], dpr=3, pointer="coarse", mobile=True)
    small = dict(DESKTOP, screen=[1024, 600])
    cases = [(DESKTOP, None), (phone, "mobile"), (small, "screen_too_small"), (None, None),
             (dict(DESKTOP, mobile=False), None)]
    for n, (env, reason) in enumerate(cases):
        with app.test_client() as client:
            where = _start(client, env, f"gate-{n}")  # the screen-out code goes to a participant id only
            assert where.endswith("/screened-out" if reason else "/briefing"), (env, where)
            if reason:
                page = client.get("/screened-out").get_data(as_text=True)
                assert "OUT1" in page and client.get("/api/state").status_code == 409
                assert client.post("/api/trials/1", json={}).status_code == 409
    ua_phone = app.test_client()
    ua_phone.get("/")
    r = ua_phone.post("/start", data={"consent": "yes", "environment": json.dumps(DESKTOP)},
                      headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148"})
    assert r.headers["Location"].endswith("/screened-out")  # the user agent says phone, whatever the page says
    admin = app.test_client().get("/admin/", headers={"Authorization": "Bearer tok"}).get_data(as_text=True)
    assert admin.count("<td>screened out: mobile</td>") == 2 and "<th>screened out: mobile</th><td>2</td>" in admin
    assert admin.count("<td>screened out: screen_too_small</td>") == 1
    assert "<th>screened out: screen_too_small</th><td>1</td>" in admin
    with make_sessionmaker(make_engine(database_url(run, db_url)))() as s:
        people = s.scalars(select(Participant).order_by(Participant.id)).all()
        assert [p.screened_out for p in people] == [None, "mobile", "screen_too_small", None, None, "mobile"]
        assert (people[1].viewport, people[1].screen, people[1].pointer) == ("390x844", "390x844", "coarse")
        assert people[1].order == [] and people[1].screened_out_at is not None
        assert people[3].viewport is None  # no environment (no JavaScript): unknown, not refused


def test_sizes_are_stored_and_checked(import_source, tmp_path, db_url):
    run = import_run(import_source, tmp_path / "run", "acr")
    app = create_app(run, db_url)
    with app.test_client() as client:
        _start(client, DESKTOP)
        client.post("/briefing")
        client.get("/api/state")
        base = {"ratings": [3], "shown_ms": [250.0], "response_ms": [800.0]}
        for bad in ({"sizes": [[24, 20], [1, 1]]}, {"sizes": [[24]]}, {"sizes": [["24", 20]]}, {"dpr": 0},
                    {"dpr": True}):
            r = client.post("/api/trials/1", json={**base, **bad})
            assert r.status_code == 400, bad
        r = client.post("/api/trials/1", json={**base, "sizes": [[24, 20]], "dpr": 2, "resized": True})
        assert r.status_code == 200
        assert client.post("/api/environment", json=dict(DESKTOP, viewport=[1300, 820])).get_json()["stored"] == {
            "viewport": "1300x820", "screen": "1920x1080", "pointer": "fine"}
    with make_sessionmaker(make_engine(database_url(run, db_url)))() as s:
        (row,) = s.scalars(select(Rating)).all()
        assert (row.shown_width, row.shown_height, row.device_pixel_ratio) == (24.0, 20.0, 2.0)
        assert (row.image_width, row.image_height) == (24, 20)  # the stimulus's own size, from the server
        assert "resized" in row.flags.split(";")
        assert s.scalars(select(Participant)).one().viewport == "1300x820"


def test_the_viewing_line_is_the_same_from_the_run_directory_and_its_export(import_source, tmp_path, db_url):
    """`analyze RUN_DIR` reads the database: its rows carry the viewing columns the CSV export has,
    so both paths print the same viewing line (the run directory's used to print none).  The export's
    last column names the study's display mode and the line states it; an export from before that
    column gives the same line without the mode."""
    from stylestudy.analysis.sources.ratings import load_ratings
    from stylestudy.analysis.sources.viewing import viewing_line
    from stylestudy.cli import main
    from stylestudy.evalserver.export import COLUMNS, EXTRA_COLUMNS, VIEWING_COLUMNS

    run = import_run(import_source, tmp_path / "run", "acr", display="scale_down")
    app = create_app(run, db_url)
    with app.test_client() as client:
        _start(client, DESKTOP)
        client.post("/briefing")
        client.get("/api/state")
        r = client.post("/api/trials/1", json={"ratings": [3], "shown_ms": [250.0], "response_ms": [800.0],
                                               "sizes": [[24, 20]], "dpr": 2})
        assert r.status_code == 200
    csv_path = tmp_path / "ratings.csv"
    assert main(["export", str(run), "--out", str(csv_path), *(["--db", db_url] if db_url else [])]) == 0
    exported = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    assert list(exported.columns) == COLUMNS + EXTRA_COLUMNS + VIEWING_COLUMNS and exported.columns[-1] == "display"
    assert list(exported["display"]) == ["scale_down"] * len(exported) and len(exported) >= 1
    from_run = viewing_line(load_ratings(run, exclude_flags=(), db_url=db_url).all_rows)
    from_csv = viewing_line(load_ratings(csv_path, exclude_flags=()).all_rows)
    line = ("Viewing: of 1 images shown, 100% at 1:1 (one image pixel per CSS pixel) and 0% at one image pixel per "
            "device pixel; device pixel ratio(s) 2; 1 distinct window size(s).")
    assert from_run == from_csv == line.replace("Viewing: ", "Viewing: display mode scale_down; ")
    exported.drop(columns=["display"]).to_csv(tmp_path / "old.csv", index=False)  # an export from before
    assert viewing_line(load_ratings(tmp_path / "old.csv", exclude_flags=()).all_rows) == line
    # a run folder without its manifest (the database given by --db) still exports, the mode unknown
    (run / "manifest.json").rename(run / "manifest.moved")
    db = db_url or f"sqlite:///{run / 'ratings.sqlite'}"
    assert main(["export", str(run), "--out", str(tmp_path / "bare.csv"), "--db", db]) == 0
    bare = pd.read_csv(tmp_path / "bare.csv", dtype=str, keep_default_na=False)
    assert list(bare["display"]) == [""] * len(exported) and list(bare["rating"]) == list(exported["rating"])


def test_an_old_database_gains_the_viewing_columns(tmp_path, db_url):
    new = {"participants": ["viewport", "screen", "pointer", "screened_out", "screened_out_at"],
           "ratings": ["shown_width", "shown_height", "device_pixel_ratio", "image_width", "image_height"]}
    db_url = database_url(tmp_path, db_url)
    engine = make_engine(db_url)
    with engine.begin() as c:
        for table, columns in new.items():
            for column in columns:
                c.exec_driver_sql(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    engine.dispose()
    engine = make_engine(db_url)
    with engine.connect() as c:
        for table, columns in new.items():
            assert set(columns) <= {col["name"] for col in inspect(c).get_columns(table)}
    engine.dispose()


def test_report_viewing_line_by_hand():
    from stylestudy.analysis.sources.viewing import viewing_line, viewing_summary

    rows = pd.DataFrame({  # native at DPR 1, native at DPR 2, device at DPR 2, fit
        "shown_width": [96, 96, 48, 840], "shown_height": [64, 64, 32, 560], "device_pixel_ratio": [1, 2, 2, 1],
        "image_width": [96, 96, 96, 96], "image_height": [64, 64, 64, 64],
        "viewport": ["1280x800", "1280x800", "1366x768", "1280x800"]})
    s = viewing_summary(rows)
    assert (s["images"], s["at_css_pixels"], s["at_device_pixels"], s["viewports"]) == (4, 2, 2, 2)
    assert s["device_pixel_ratios"] == [1.0, 2.0]
    assert viewing_line(rows).startswith("Viewing: of 4 images shown, 50% at 1:1 (one image pixel per CSS pixel) "
                                         "and 50% at one image pixel per device pixel")
    assert viewing_line(rows.drop(columns=["shown_width"])) == ""  # an export from before: no line


def holders(text: str) -> list[str]:
    """The placeholders of a message (%(name)s, {name})."""
    import re

    return sorted(re.findall(r"%\(\w+\)\w|\{\w+\}", text))


def test_korean_catalog_is_complete_and_compiled():
    """Every message the participant pages use (extracted as pybabel would) has a Korean
    translation, none fuzzy, placeholders kept; the shipped .mo holds exactly the .po."""
    import re
    from pathlib import Path

    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    from stylestudy import evalserver

    root = Path(evalserver.__file__).parent
    with open(root / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    used = {m[2] if isinstance(m[2], str) else m[2][0] for m in extract_from_dir(root, method_map, options_map)}
    assert "Preferred image" in used and "Trial {n} of {total}" in used and len(used) > 60
    for lang in ("ko", "en"):
        folder = root / "translations" / lang / "LC_MESSAGES"
        with open(folder / "messages.po", "rb") as fh:
            po = read_po(fh)
        translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
        singular = {k[0] if isinstance(k, tuple) else k for k in translated}  # plural entries by their singular
        assert not used - singular, f"{lang}: untranslated {sorted(used - singular)[:5]}"
        with open(folder / "messages.mo", "rb") as fh:
            mo = {tuple(m.id) if isinstance(m.id, list) else m.id: tuple(m.string) if isinstance(m.string, list)
                  else m.string for m in read_mo(fh) if m.id}  # plural entries: (singular, plural) -> forms
        assert {k: mo.get(k) for k in translated} == translated, f"{lang}: messages.mo is not messages.po compiled"
        for msgid, text in translated.items():
            if isinstance(msgid, tuple):  # every form keeps the plural's placeholders (a form may omit the count)
                assert all(set(holders(form)) <= set(holders(msgid[1])) for form in text), (msgid, text)
                assert holders(text[-1]) == holders(msgid[1]), (msgid, text)
                text = " ".join(text)
            else:
                assert holders(msgid) == holders(text)
            if lang == "ko":
                assert not re.search(r"[A-Za-z]{2,}", re.sub(r"%\(\w+\)\w|\{\w+\}", "", text)), text


def test_references_are_imported_per_item(import_source, tmp_path):
    """DIR/_style/<item>.png is a reference folder, not a method; every item needs one; asking for
    references an import lacks is a one-line error."""
    import shutil

    from PIL import Image

    from stylestudy.engine.study.importer import ImportProblem

    src = tmp_path / "src"
    shutil.copytree(import_source, src)
    (src / "_style").mkdir()
    items = ("bridge", "harbour", "lake", "tower")
    for i, item in enumerate(items[:3]):
        Image.new("RGB", (10 + i, 12), (i * 40, 0, 0)).save(src / "_style" / f"{item}.png")
    with pytest.raises(ImportProblem, match="style references lack item\\(s\\) tower"):
        import_run(src, tmp_path / "r1", "acr")
    Image.new("RGB", (13, 12)).save(src / "_style" / "tower.png")
    m = StudyManifest.load(import_run(src, tmp_path / "r2", "acr", references=["style"]))
    assert m.methods == ["adain", "ours", "photo"]  # _style is no method
    first = m.by_id["bridge:adain"]
    assert first.get("style_image").startswith("references/") and first.get("content_image") is None
    assert (m.run_dir / first.get("style_image")).is_file()
    assert first.get("style_image") == m.by_id["bridge:ours"].get("style_image") != m.by_id["lake:ours"].get("style_image")
    with pytest.raises(ImportProblem, match="needs a content image per item"):
        import_run(src, tmp_path / "r3", "acr", references=["content"])


def test_practice_of_a_generated_study_pairs_briefing_stimuli(run_copy):
    """The generated test run has two briefing stimuli of one method: practice pairs them; the
    practice trials come first, count apart on the briefing page, and their rows are role practice."""
    manifest = run_copy / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["study"]["protocol"]["practice"] = 3
    manifest.write_text(json.dumps(doc))
    m = StudyManifest.load(run_copy)
    briefing = {c.id for c in m.briefing}
    assert len(briefing) == 2
    app = create_app(run_copy)
    with app.test_client() as client:
        _start(client, DESKTOP)
        page = client.get("/briefing").get_data(as_text=True)
        assert "The first 3 trials are practice" in page and "In each of the 4 trials" in page
        client.post("/briefing")
        for trial in (1, 2, 3):
            state = client.get("/api/state").get_json()
            assert state["practice"] is True and state["practice_total"] == 3 and len(state["images"]) == 2
            r = client.post(f"/api/trials/{trial}", json={"ratings": [2, 3], "shown_ms": [250.0, 250.0],
                                                          "response_ms": [500.0, 600.0]})
            assert r.status_code == 200
        assert client.get("/api/state").get_json()["practice"] is False
    with make_sessionmaker(make_engine(database_url(run_copy)))() as s:
        rows = s.scalars(select(Rating).order_by(Rating.trial, Rating.position)).all()
        assert len(rows) == 6 and {r.block for r in rows} == {"practice"} and {r.condition_id for r in rows} == briefing
        people = s.scalars(select(Participant)).one()
        assert [e["role"] for e in people.order[:4]] == ["practice"] * 3 + ["rated"]


def test_references_of_a_generated_study_are_its_inputs(run_copy):
    """references = ["style", "content"] on a generated run: each trial serves its row's painting and
    the object photo, the very input files, under opaque per-participant URLs."""
    from pathlib import Path

    manifest = run_copy / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["study"]["protocol"]["references"] = ["style", "content"]
    manifest.write_text(json.dumps(doc))
    m = StudyManifest.load(run_copy)
    app = create_app(run_copy)
    with app.test_client() as client:
        _start(client, DESKTOP)
        client.post("/briefing")
        state = client.get("/api/state").get_json()
        assert [r["kind"] for r in state["references"]] == ["style", "content"]
        first = m.by_id[_first_condition(run_copy)]
        style, photo = (client.get(r["url"]).data for r in state["references"])
        folder = Path(m.study["folder"])  # the study's own files (this run's inputs are not samples)
        assert style == (folder / m.study["images"][first.row_label]["path"]).read_bytes()
        assert photo == (folder / m.study["images"][m.study["object_image"]]["path"]).read_bytes()
        assert all(first.row_label not in r["url"] for r in state["references"])


def _first_condition(run) -> str:
    with make_sessionmaker(make_engine(database_url(run)))() as s:
        return s.scalars(select(Participant)).one().order[0]["conditions"][0]
