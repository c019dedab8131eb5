"""The server's second trust round (issue 32): bots cannot steer or close an adaptive study,
screen-outs stay out, references cannot leak, acknowledged means stored.

Every test runs the real server (Flask test client or gunicorn) on SQLite and PostgreSQL where
storage is involved."""

from __future__ import annotations

import csv
import hashlib
import io
import re

import pytest

from stylestudy.evalserver.app import create_app
from tests.conftest import import_run, pace

TOKEN = "admin-secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# where a bot's answer must be too_fast and a human's must not: a 3 s display, so a bot's instant
# answer stays too_fast even on a loaded machine (0.25 s can pass before a slow test client answers)
SLOW = {"image_seconds": 3.0}
HUMAN_SECONDS = 4.0  # a human's time from serving to answer there (not late either: 3 + 2 + 5 s)


def _adaptive_run(import_source, tmp_path, name="run", **settings):
    values = {"sampling": "adaptive", "pairs_per_participant": 6, **settings}
    return import_run(import_source, tmp_path / name, "pairwise", **values)


def _status(app) -> dict:
    return app.test_client().get("/admin/status.json", headers=AUTH).get_json()


def _counts_agree(app) -> list:
    """The live counts, checked against a recount from the ratings."""
    from stylestudy.evalserver import adaptive_store

    with app.config["DB_SESSIONMAKER"]() as session:
        live = sorted(adaptive_store.counts(session))
        assert [row for row in live if any(row[3:])] == adaptive_store.counts_from_ratings(session, app.config["MANIFEST"])
        return live


def _join(app, pid):
    c = app.test_client()
    assert c.post("/start", data={"consent": "yes", "PROLIFIC_PID": pid}).status_code == 302
    c.post("/briefing")
    return c


def _answer_all(app, pid, human: bool, choice=1):
    """Answer every trial: at once (a bot: every answer too_fast) or at a human's pace."""
    c = _join(app, pid)
    while not (s := c.get("/api/state").get_json())["done"]:
        if human:
            pace(app, pid, HUMAN_SECONDS)
        r = c.post(f"/api/trials/{s['trial']}", json={"choice": choice, "shown_ms": [s["image_ms"]] * 2})
        assert r.status_code == 200, r.get_json()
        if r.get_json()["redirect"] and "screened" in r.get_json()["redirect"]:
            break
    return c


def _first_pair(app, pid) -> str:
    c = _join(app, pid)
    assert c.get("/api/state").status_code == 200
    from stylestudy.evalserver.db import Participant

    with app.config["DB_SESSIONMAKER"]() as session:
        return session.query(Participant).filter_by(external_id=pid).one().order[0]["pair_id"]


# --- High: bots close adaptive studies ------------------------------------------------------------

def test_instant_bots_and_silent_fetchers_neither_close_the_study_nor_steer_the_next_pair(
        import_source, tmp_path, db_url):
    """10 scripted participants answering every trial at once (60 answers, all too_fast) and 12
    who fetch a trial and never answer: the study with stop_when = comparisons:40 stays open,
    nothing is counted, and once the silent fetchers' lease ran out an honest participant gets
    the very pair they would get on an empty study."""
    from datetime import timedelta

    from stylestudy.evalserver.adaptive_store import AdaptiveTrial
    from stylestudy.evalserver.app import default_db_url

    settings = {"stop_when": ["comparisons:40"], "in_flight_seconds": 30, **SLOW}
    run = _adaptive_run(import_source, tmp_path, **settings)
    app = create_app(run, db_url, admin_token=TOKEN)
    for i in range(10):
        _answer_all(app, f"bot{i}", human=False)
    silent = [_join(app, f"silent{i}") for i in range(12)]
    for c in silent:
        assert c.get("/api/state").status_code == 200
    status = _status(app)
    assert status["open"] is True and status["adaptive"]["comparisons"] == 0
    assert status["adaptive"]["in_flight"] == 12 and status["adaptive"]["stopped_by"] == ""
    with app.config["DB_SESSIONMAKER"]() as session:  # 31 s pass: the lease (in_flight_seconds = 30) runs out
        for t in session.query(AdaptiveTrial).filter(AdaptiveTrial.answered_at.is_(None)):
            t.assigned_at = t.assigned_at - timedelta(seconds=31)
        session.commit()
    assert _status(app)["adaptive"]["in_flight"] == 0
    honest = _first_pair(app, "honest")
    fresh = create_app(_adaptive_run(import_source, tmp_path, "fresh", **settings),
                       default_db_url(tmp_path / "fresh"), admin_token=TOKEN)
    assert honest == _first_pair(fresh, "honest")
    rows = list(csv.DictReader(io.StringIO(app.test_client().get("/admin/export.csv", headers=AUTH).get_data(
        as_text=True))))
    assert len(rows) == 10 * 6 * 2 and all("too_fast" in r["flags"].split(";") for r in rows)  # stored, flagged
    assert not any(any(row[3:]) for row in _counts_agree(app))


def test_honest_answers_close_the_study_and_stay_closed_only_then(import_source, tmp_path, db_url):
    run = _adaptive_run(import_source, tmp_path, stop_when=["comparisons:6"], **SLOW)
    app = create_app(run, db_url, admin_token=TOKEN)
    _answer_all(app, "bot", human=False)
    assert _status(app)["open"] is True
    _answer_all(app, "human", human=True)
    status = _status(app)
    assert status["open"] is False and status["adaptive"]["comparisons"] == 6
    _counts_agree(app)


def test_the_admin_excludes_a_participant_from_the_live_state_and_the_export_says_so(
        import_source, tmp_path, db_url):
    run = _adaptive_run(import_source, tmp_path, pairs_per_participant=3)
    app = create_app(run, db_url, admin_token=TOKEN)
    _answer_all(app, "a", human=True, choice=1)
    _answer_all(app, "b", human=True, choice=2)
    assert _status(app)["adaptive"]["comparisons"] == 6
    with_both = _counts_agree(app)
    from stylestudy.evalserver.db import Participant

    with app.config["DB_SESSIONMAKER"]() as session:
        public = session.query(Participant).filter_by(external_id="b").one().public_id
    admin = app.test_client()
    r = admin.post(f"/admin/participants/{public}/exclusion", data={"exclude": "1"}, headers=AUTH)
    assert r.status_code == 302
    assert _status(app)["adaptive"]["comparisons"] == 3
    _counts_agree(app)
    rows = list(csv.DictReader(io.StringIO(admin.get("/admin/export.csv", headers=AUTH).get_data(as_text=True))))
    flagged = {r["external_id"] for r in rows if "excluded" in r["flags"].split(";")}
    assert flagged == {"b"} and len(rows) == 12  # nothing deleted
    assert "Include again" in admin.get("/admin/", headers=AUTH).get_data(as_text=True)
    admin.post(f"/admin/participants/{public}/exclusion", data={"exclude": "1"}, headers=AUTH)  # twice: once
    assert _status(app)["adaptive"]["comparisons"] == 3
    admin.post(f"/admin/participants/{public}/exclusion", data={"exclude": "0"}, headers=AUTH)
    assert _status(app)["adaptive"]["comparisons"] == 6 and _counts_agree(app) == with_both
    assert admin.post("/admin/participants/nobody/exclusion", data={"exclude": "1"}, headers=AUTH).status_code == 404
    assert app.test_client().post(f"/admin/participants/{public}/exclusion", data={"exclude": "1"}).status_code == 401


def test_a_screened_out_participants_answers_leave_the_live_state(import_source, tmp_path, db_url):
    """attention_screen_out = 1: the answers given before the failed check are taken back out."""
    run = _adaptive_run(import_source, tmp_path, pairs_per_participant=3, attention_checks=1,
                        attention_screen_out=1)
    app = create_app(run, db_url, admin_token=TOKEN)
    from stylestudy.evalserver.db import Participant

    c = _join(app, "careless")
    answered = 0
    while not (s := c.get("/api/state").get_json())["done"]:
        with app.config["DB_SESSIONMAKER"]() as session:
            entry = session.query(Participant).filter_by(external_id="careless").one().order[s["trial"] - 1]
        pace(app, "careless")
        if entry["role"] == "attention":
            assert answered >= 1 and _status(app)["adaptive"]["comparisons"] == answered
            r = c.post(f"/api/trials/{s['trial']}", json={"choice": 3 - entry["attention"], "shown_ms": [250, 250]})
            assert r.status_code == 200
            break
        c.post(f"/api/trials/{s['trial']}", json={"choice": 1, "shown_ms": [250, 250]})
        answered += 1
    assert _status(app)["adaptive"]["comparisons"] == 0
    _counts_agree(app)


# --- Medium: screen-out bypass --------------------------------------------------------------------

PHONE = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148"}


def test_participant_ids_are_normalised():
    from stylestudy.evalserver.external_ids import BadExternalId, ids_from

    for variant in ("AbC123", "abc123_", " abc123 ", "ABC123.-", "abc123"):
        assert ids_from({"PROLIFIC_PID": variant})["PROLIFIC_PID"] == "abc123"
    assert ids_from({"SESSION_ID": "Sess_"})["SESSION_ID"] == "Sess_"  # only participant ids
    with pytest.raises(BadExternalId, match="no letters or digits"):
        ids_from({"pid": "__"})


def _screened_out_phone(app, pid):
    c = app.test_client()
    r = c.post("/start", data={"consent": "yes", "PROLIFIC_PID": pid}, headers=PHONE)
    assert r.headers["Location"].endswith("/screened-out")
    return c


@pytest.mark.parametrize("language, said", [("en", "screened out of the study earlier"),
                                            ("ko", "이전에 연구에서 제외되었으므로")])
def test_a_screened_out_id_stays_out_in_any_spelling_and_any_browser(import_source, tmp_path, db_url, language,
                                                                     said):
    run = import_run(import_source, tmp_path / "run", "pairwise", allow_mobile=False, screen_out_code="SCR33N",
                     allow_no_id=None, language=language)
    app = create_app(run, db_url, admin_token=TOKEN)
    first = _screened_out_phone(app, "Scr-1")
    assert "SCR33N" in first.get("/screened-out").get_data(as_text=True)
    for variant in ("SCR-1", "scr-1_", " scr-1 ", "scr-1"):
        r = app.test_client().post("/start", data={"consent": "yes", "PROLIFIC_PID": variant})
        page = r.get_data(as_text=True)
        assert r.status_code == 409 and said in page and "SCR33N" not in page, variant
        assert "started in" not in page and "시작한 브라우저" not in page  # not "continue in the browser you started in"
    anonymous = app.test_client().post("/start", data={"consent": "yes"})
    assert anonymous.status_code == 400  # a study with a completion code: no joins without an id
    with app.config["DB_SESSIONMAKER"]() as session:
        from stylestudy.evalserver.db import Participant

        assert [p.external_id for p in session.query(Participant)] == ["scr-1"]


def test_the_screen_out_code_goes_only_to_a_participant_id(import_source, tmp_path, db_url):
    """A cookieless request claiming a phone, no id (joins without an id allowed): screened out,
    but no screen-out code; with an id, the code."""
    run = import_run(import_source, tmp_path / "run", "pairwise", allow_mobile=False, screen_out_code="SCR33N",
                     allow_no_id=True)
    app = create_app(run, db_url, admin_token=TOKEN)
    c = app.test_client()
    assert c.post("/start", data={"consent": "yes"}, headers=PHONE).headers["Location"].endswith("/screened-out")
    page = c.get("/screened-out").get_data(as_text=True)
    assert "phones and tablets" in page and "SCR33N" not in page
    assert "SCR33N" in _screened_out_phone(app, "phone-2").get("/screened-out").get_data(as_text=True)


@pytest.mark.parametrize("settings, anonymous_ok", [({"completion_code": "C0DE42", "allow_no_id": None}, False),
                                                    ({"completion_code": "", "allow_no_id": None}, True),
                                                    ({"completion_code": "C0DE42", "allow_no_id": True}, True)])
def test_joining_without_an_id_is_off_by_default_with_a_completion_code(import_source, tmp_path, settings,
                                                                         anonymous_ok):
    run = import_run(import_source, tmp_path / "run", "pairwise", **settings)
    app = create_app(run, admin_token=TOKEN)
    r = app.test_client().post("/start", data={"consent": "yes"})
    if anonymous_ok:
        assert r.status_code == 302
    else:
        assert r.status_code == 400 and "no participant id" in r.get_data(as_text=True)
        assert _status(app)["participants"] == 0 and _status(app)["flow"]["refused"].get("no_id") == 1
    assert app.test_client().post("/start", data={"consent": "yes", "pid": "p-1"}).status_code == 302


def test_allow_no_id_must_be_true_or_false(import_source, tmp_path):
    from stylestudy.engine.study.errors import StyleStudyError

    with pytest.raises(StyleStudyError, match="allow_no_id.*true or false"):
        import_run(import_source, tmp_path / "run", "pairwise", allow_no_id="yes")


# --- Medium: reference paths ----------------------------------------------------------------------

def _with_style_references(import_source, tmp_path, name="src"):
    import shutil

    from PIL import Image

    src = tmp_path / name
    shutil.copytree(import_source, src)
    (src / "_style").mkdir()
    for i, item in enumerate(("bridge", "harbour", "lake", "tower")):
        Image.new("RGB", (10 + i, 12), (i * 40, 0, 0)).save(src / "_style" / f"{item}.png")
    return src


def _edit_manifest(run, edit) -> None:
    import json

    path = run / "manifest.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _serve_refused(run, message: str) -> None:
    from stylestudy.engine.study.errors import StyleStudyError

    with pytest.raises(StyleStudyError, match=message) as info:
        create_app(run, admin_token=TOKEN)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("target, message", [("admin_token", "not inside"), ("../../../etc/passwd", "not inside"),
                                             ("manifest.json", "not inside"), ("references/.url_key", "hidden"),
                                             ("references", "not inside")])
def test_a_reference_outside_the_references_folder_is_never_served(import_source, tmp_path, target, message):
    run = import_run(_with_style_references(import_source, tmp_path), tmp_path / "run", "acr", references=["style"])
    create_app(run, admin_token=TOKEN)  # as imported: served
    if target.startswith("references/."):
        (run / target).write_bytes((run / ".url_key").read_bytes() if (run / ".url_key").exists() else b"secret")

    def point(doc):
        doc["stimuli"][0]["style_image"] = target

    _edit_manifest(run, point)
    _serve_refused(run, message)


def test_a_reference_link_out_or_a_changed_reference_is_refused(import_source, tmp_path):
    run = import_run(_with_style_references(import_source, tmp_path), tmp_path / "run", "acr", references=["style"])
    doc_path = run / "manifest.json"
    original = doc_path.read_text()
    import json

    first = json.loads(original)["stimuli"][0]
    assert len(first["style_image_sha256"]) == 64  # recorded at import
    reference = run / first["style_image"]
    data = reference.read_bytes()
    secret = tmp_path / "secret.png"
    secret.write_bytes(data)
    reference.unlink()
    reference.symlink_to(secret)  # a link out of the run
    _serve_refused(run, "not inside")
    reference.unlink()
    from PIL import Image

    Image.new("RGB", (10, 12), (1, 2, 3)).save(reference)  # other pixels under the same name
    _serve_refused(run, "has changed")

    def legacy(doc):  # a manifest made before the SHA-256 field: the file name is the check
        for c in doc["stimuli"]:
            c.pop("style_image_sha256", None)

    _edit_manifest(run, legacy)
    _serve_refused(run, "has changed")
    reference.write_bytes(data)
    create_app(run, admin_token=TOKEN)


def test_import_confines_references_to_the_source_folder_and_applies_max_pixels(import_source, tmp_path):
    import shutil

    from PIL import Image

    from stylestudy.engine.study.importer import ImportProblem, import_images

    src = _with_style_references(import_source, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (11, 12)).save(outside / "harbour.png")
    (src / "_style" / "harbour.png").unlink()
    (src / "_style" / "harbour.png").symlink_to(outside / "harbour.png")
    with pytest.raises(ImportProblem, match="harbour.*outside the source folder"):
        import_run(src, tmp_path / "r1", "acr", references=["style"])
    shutil.rmtree(src / "_style")
    (src / "_style").symlink_to(outside, target_is_directory=True)  # the whole folder a link out
    for item in ("bridge", "lake", "tower"):
        Image.new("RGB", (11, 12)).save(outside / f"{item}.png")
    with pytest.raises(ImportProblem, match="outside the source folder"):
        import_run(src, tmp_path / "r2", "acr", references=["style"])
    (src / "_style").unlink()
    rows = ["method,item,path,style_image"]  # a CSV naming a reference by an absolute and a ../ path
    for method in ("adain", "ours"):
        for item in ("bridge", "harbour"):
            ref = str(outside / f"{item}.png") if item == "bridge" else f"../outside/{item}.png"
            rows.append(f"{method},{item},{method}/{item}.png,{ref}")
    (src / "list.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ImportProblem) as info:
        import_images(src / "list.csv", tmp_path / "r3", "pairwise")
    for item in ("bridge", "harbour"):  # both named, in one line
        assert f"style reference of {item}: " in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).count("outside the source folder") == 2
    shutil.rmtree(src)
    src = _with_style_references(import_source, tmp_path)
    Image.new("RGB", (400, 300)).save(src / "_style" / "lake.png")  # 120 000 pixels
    with pytest.raises(ImportProblem, match="style reference of lake: .*more than --max-pixels 100000"):
        import_images(src, tmp_path / "r4", "acr", max_pixels=100_000)
    assert not (tmp_path / "r4").exists()


# --- Medium: the completion code for nothing ------------------------------------------------------

def _finish(app, pid, human_trials: int):
    """Join and answer every trial, the first ``human_trials`` at a human's pace, the rest at once."""
    c = _join(app, pid)
    n = 0
    while not (s := c.get("/api/state").get_json())["done"]:
        if n < human_trials:
            pace(app, pid, HUMAN_SECONDS)
        shown = [s["image_ms"]] * 2  # the displays as the page would measure them
        assert c.post(f"/api/trials/{s['trial']}", json={"choice": 1, "shown_ms": shown}).status_code == 200
        n += 1
    return c, n


@pytest.mark.parametrize("incomplete_code", ["", "INC0MPL"])
def test_mostly_too_fast_gets_no_completion_code(import_source, tmp_path, db_url, incomplete_code):
    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=4,
                     redirect_url="https://app.prolific.com/submissions/complete?cc=C0DE42",
                     incomplete_code=incomplete_code, **SLOW)
    app = create_app(run, db_url, admin_token=TOKEN)
    bot, trials = _finish(app, "bot", human_trials=0)
    page = bot.get("/done").get_data(as_text=True)
    assert "C0DE42" not in page and "cannot count as completed" in page  # neither the code nor the return link
    assert (incomplete_code in page) if incomplete_code else 'id="incomplete-code"' not in page
    half, _ = _finish(app, "half", human_trials=trials // 2)  # half too fast: not "mostly"
    assert "C0DE42" in half.get("/done").get_data(as_text=True)
    rushed, _ = _finish(app, "rushed", human_trials=trials // 2 - 1)
    assert "C0DE42" not in rushed.get("/done").get_data(as_text=True)


def test_mostly_too_fast_by_hand():
    from stylestudy.evalserver.answer_rules import mostly_too_fast

    assert [mostly_too_fast(k, 4) for k in range(5)] == [False, False, False, True, True]
    assert mostly_too_fast(0, 0) is False


# --- tests that guard what they claim (surviving mutants) -----------------------------------------

def test_a_commit_that_fails_is_never_acknowledged(import_source, tmp_path, db_url):
    """The database fails at the commit itself (not before it): the answer gets 503 and no
    acknowledgement, nothing of it is stored, and the retry stores it once."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=2)
    app = create_app(run, db_url, admin_token=TOKEN)
    c = _join(app, "outage")
    s = c.get("/api/state").get_json()
    failing = {"on": True}

    def fail_at_commit(_connection):  # noqa: ANN001
        if failing["on"]:
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    event.listen(app.config["DB_ENGINE"], "commit", fail_at_commit)
    r = c.post(f"/api/trials/{s['trial']}", json={"choice": 1, "shown_ms": [250, 250]})
    failing["on"] = False
    assert r.status_code == 503 and "ok" not in r.get_json() and r.headers["Retry-After"]
    assert _status(app)["ratings"] == 0 and c.get("/api/state").get_json()["trial"] == s["trial"]
    r = c.post(f"/api/trials/{s['trial']}", json={"choice": 1, "shown_ms": [250, 250]})
    assert r.status_code == 200 and r.get_json()["ok"] is True and r.get_json()["duplicate"] is False
    assert _status(app)["ratings"] == 2


def test_cookie_or_session_never_resumes_by_the_participant_id_alone(import_source, tmp_path, db_url):
    """Neither the stored nor the presented attempt has a SESSION_ID: no proof, no resume."""
    from stylestudy.evalserver.external_ids import may_resume

    assert may_resume("cookie_or_session", False, None, None) is False
    assert may_resume("cookie_or_session", False, "", "") is False
    run = import_run(import_source, tmp_path / "run", "pairwise", resume="cookie_or_session")
    app = create_app(run, db_url, admin_token=TOKEN)
    _join(app, "no-session")
    r = app.test_client().post("/start", data={"consent": "yes", "PROLIFIC_PID": "no-session"})
    assert r.status_code == 409 and "already started" in r.get_data(as_text=True)


HOSTILE = "=HYPERLINK(\"http://evil\",\"x\")"


def test_hostile_text_in_every_column_of_both_exports_is_neutralised(import_source, tmp_path, db_url):
    """Every text a participant (or anything else) could put in the database, in every text column
    of the ratings and the participants CSV (admin and command line), starts no formula."""
    from sqlalchemy import text

    from stylestudy.cli import main

    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=2)
    app = create_app(run, db_url, admin_token=TOKEN)
    c = app.test_client()
    c.post("/start", data={"consent": "yes", "PROLIFIC_PID": "p1", "STUDY_ID": "s", "SESSION_ID": "x"},
           headers={"User-Agent": HOSTILE})
    c.post("/briefing")
    while not (s := c.get("/api/state").get_json())["done"]:
        c.post(f"/api/trials/{s['trial']}", json={"choice": 1, "shown_ms": [250, 250]})
    with app.config["DB_SESSIONMAKER"]() as session:
        session.execute(text("UPDATE participants SET external_id = :h, external_study_id = :h, "
                             "external_session_id = :h, viewport = :h, screen = :h, pointer = :h, "
                             "screened_out = :h"), {"h": "+" + HOSTILE[1:9]})
        unique = ":h || CAST(id AS VARCHAR(10))"  # (participant, pair, condition) stays unique
        session.execute(text(f"UPDATE ratings SET pair_id = {unique}, condition_id = {unique}, image_id = :h, "
                             "method = :h, block = :h, row_label = :h, column_label = :h, flags = :h"),
                        {"h": "-" + HOSTILE[1:9]})
        session.commit()
    ratings, people = tmp_path / "ratings.csv", tmp_path / "people.csv"
    assert main(["export", str(run), "--out", str(ratings), "--participants-csv", str(people),
                 *(["--db", db_url] if db_url else [])]) == 0
    admin_csv = app.test_client().get("/admin/export.csv", headers=AUTH).get_data(as_text=True)
    assert ratings.read_text() == admin_csv
    numeric = {"trial", "row", "column", "position", "rating", "response_ms", "shown_ms", "attention", "trials",
               "trials_done", "shown_width", "shown_height", "device_pixel_ratio", "image_width", "image_height"}
    for table in (admin_csv, people.read_text()):
        rows = list(csv.DictReader(io.StringIO(table)))
        assert rows
        for row in rows:
            texts = {k: v for k, v in row.items() if k not in numeric}
            assert not [k for k, v in texts.items() if v.startswith(("=", "+", "-", "@", "\t", "\r"))], row
            assert row["user_agent"] == "'" + HOSTILE  # the real header, neutralised


def test_sqlite_writes_are_durable(tmp_path):
    """synchronous=FULL (a committed rating survives power loss) in WAL mode, on every connection."""
    from stylestudy.evalserver.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    for _ in range(2):
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


# --- server-side timing ---------------------------------------------------------------------------

def test_a_trial_image_is_fetched_once_per_serving(import_source, tmp_path, db_url):
    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=2)
    app = create_app(run, db_url, admin_token=TOKEN)
    c = _join(app, "looker")
    state = c.get("/api/state").get_json()
    first = [c.get(url) for url in state["images"]]
    assert [r.status_code for r in first] == [200, 200] and all(r.data.startswith(b"\x89PNG") for r in first)
    assert [c.get(url).status_code for url in state["images"]] == [410, 410]  # a second look is refused
    again = c.get("/api/state").get_json()  # a refresh restarts the trial (flagged restarted): fetched afresh
    assert again["images"] == state["images"]
    assert [c.get(url).data for url in again["images"]] == [r.data for r in first]
    assert [c.get(url).status_code for url in again["images"]] == [410, 410]
    pace(app, "looker")
    assert c.post(f"/api/trials/{state['trial']}", json={"choice": 1, "shown_ms": [250, 250]}).status_code == 200
    assert [c.get(url).status_code for url in state["images"]] == [404, 404]  # answered: gone


def test_an_answer_long_after_serving_is_flagged_late(import_source, tmp_path, db_url):
    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=2)
    app = create_app(run, db_url, admin_token=TOKEN)
    c = _join(app, "slow")
    for trial, seconds in ((1, 12.0), (2, 1.0)):
        assert c.get("/api/state").get_json()["trial"] == trial
        pace(app, "slow", seconds=seconds)
        body = {"choice": 1, "shown_ms": [250, 250], "response_ms": [500]}
        assert c.post(f"/api/trials/{trial}", json=body).status_code == 200
    rows = list(csv.DictReader(io.StringIO(app.test_client().get("/admin/export.csv", headers=AUTH).get_data(
        as_text=True))))
    late = {int(r["trial"]) for r in rows if "late" in r["flags"].split(";")}
    assert late == {1}


def test_briefing_examples_may_be_fetched_again(run_copy):
    app = create_app(run_copy, admin_token=TOKEN)
    c = app.test_client()
    c.post("/start", data={"consent": "yes", "PROLIFIC_PID": "reader"})
    urls = re.findall(r'src="(/s/[0-9a-f]{32})"', c.get("/briefing").get_data(as_text=True))
    assert len(urls) == 2
    for _ in range(2):  # the briefing page can be reloaded
        assert [c.get(u).status_code for u in urls] == [200, 200]


# --- analyze leaves too_fast out by default and says so -------------------------------------------

def test_analyze_leaves_too_fast_and_excluded_out_by_default_and_says_so(import_source, tmp_path):
    import json

    from stylestudy.cli import main

    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=3, **SLOW)
    app = create_app(run, admin_token=TOKEN)
    for i in range(4):
        _answer_all(app, f"human{i}", human=True, choice=1 + i % 2)
    _answer_all(app, "bot", human=False)
    report = tmp_path / "report"
    assert main(["analyze", str(run), "--out", str(report), "--bootstrap", "100"]) == 0
    summary = json.loads((report / "summary.json").read_text())
    assert summary["comparisons"] == 4 * 3  # the bot's 3 are left out
    assert "too_fast" in summary["excluded_flags"] and summary["counts"]["excluded_by_flags"] == 3 * 2
    assert ("6 excluded by flags (too_fast 6; left out: timeout, short_display, too_fast, excluded; --exclude-flags '' "
            "keeps them)") in (report / "report.md").read_text()
    kept = tmp_path / "kept"
    assert main(["analyze", str(run), "--out", str(kept), "--bootstrap", "100", "--exclude-flags",
                 "timeout,short_display"]) == 0
    assert json.loads((kept / "summary.json").read_text())["comparisons"] == 5 * 3


def test_analyze_of_only_too_fast_answers_is_a_one_line_error(import_source, tmp_path, capsys):
    from stylestudy.cli import main

    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=3, **SLOW)
    app = create_app(run, admin_token=TOKEN)
    _answer_all(app, "bot", human=False)
    assert main(["analyze", str(run), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err.strip()
    assert "every rating is excluded by flags" in err and "--exclude-flags" in err and len(err.splitlines()) == 1


# --- Low ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["redirect_url", "screen_out_url"])
@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "//evil.example", "ftp://x",
                                 "https://a b", "https://x<svg>"])
def test_a_return_address_must_be_a_web_address(import_source, tmp_path, key, url):
    from stylestudy.engine.study.errors import StyleStudyError

    with pytest.raises(StyleStudyError, match=f"{key}.*http:// or https://") as info:
        import_run(import_source, tmp_path / "run", "pairwise", **{key: url})
    assert "\n" not in str(info.value)


def test_every_page_forbids_frames_and_inline_scripts(import_source, tmp_path):
    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=1,
                     redirect_url="https://app.prolific.com/submissions/complete?cc=C0DE42")
    app = create_app(run, admin_token=TOKEN)
    c = _join(app, "framed")
    s = c.get("/api/state").get_json()
    pace(app, "framed")
    c.post(f"/api/trials/{s['trial']}", json={"choice": 1, "shown_ms": [250, 250]})
    responses = [c.get(p) for p in ("/", "/briefing", "/trial", "/done", "/api/state")]
    responses += [app.test_client().get(p) for p in ("/admin/login", "/admin/")]
    responses.append(app.test_client().get("/admin/", headers=AUTH))
    for r in responses:
        assert r.headers["X-Frame-Options"] == "DENY", r.request.path
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp and "unsafe-inline" not in csp
    done = c.get("/done").get_data(as_text=True)
    assert "<script>" not in done and 'content="3;url=https://app.prolific.com/submissions/complete?cc=C0DE42"' in done


def test_deeply_nested_json_is_a_400_everywhere(import_source, tmp_path, db_url):
    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=1)
    app = create_app(run, db_url, admin_token=TOKEN)
    deep = "[" * 7000 + "]" * 7000  # under the 16 KiB body limit, far over the JSON parser's depth
    c = app.test_client()
    form_deep = "[" * 2400 + "]" * 2400  # a form encodes each bracket in 3 bytes
    r = c.post("/start", data={"consent": "yes", "PROLIFIC_PID": "deep", "environment": form_deep})
    assert r.status_code == 400 and "nested" in r.get_data(as_text=True)
    assert _status(app)["participants"] == 0
    c = _join(app, "deep2")
    r = c.post("/api/environment", data=deep, content_type="application/json")
    assert r.status_code == 400 and "nested" in r.get_json()["error"]
    s = c.get("/api/state").get_json()
    r = c.post(f"/api/trials/{s['trial']}", data=deep, content_type="application/json")
    assert r.status_code == 400 and "nested" in r.get_json()["error"]


def test_wrong_admin_tokens_back_off_per_address(run_copy):
    app = create_app(run_copy, admin_token=TOKEN)
    attacker = app.test_client()
    for _ in range(5):  # FREE_FAILURES wrong tokens, by form and by header
        assert attacker.post("/admin/login", data={"token": "guess"}).status_code == 401
    r = attacker.post("/admin/login", data={"token": TOKEN})  # even the right one must wait now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 30
    assert attacker.get("/admin/", headers=AUTH).status_code == 429
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert other.get("/admin/status.json", headers=AUTH).status_code == 200  # another address is not held up
    for _ in range(4):
        assert other.get("/admin/", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert other.get("/admin/", headers=AUTH).status_code == 200  # the right token clears its count
    assert other.get("/admin/", headers={"Authorization": "Bearer guess"}).status_code == 401


def test_run_folders_are_0755_whatever_the_umask(import_source, tmp_path):
    import os
    import stat

    old = os.umask(0)
    try:
        run = import_run(_with_style_references(import_source, tmp_path), tmp_path / "run", "acr",
                         references=["style"])
        from stylestudy.engine.study.files import atomic_write_bytes

        atomic_write_bytes(tmp_path / "a" / "b" / "f.txt", b"x")
    finally:
        os.umask(old)
    for folder in (run, run / "stimuli", run / "references", tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder


# --- blinding -------------------------------------------------------------------------------------

def test_import_leaves_no_alpha_channel(import_source, tmp_path):
    """An opaque RGBA method's PNG would be colour type 6 and 4 bytes a pixel longer: a tell."""
    import shutil

    import numpy as np
    from PIL import Image

    from stylestudy.engine.study.manifest import StudyManifest

    src = tmp_path / "src"
    shutil.copytree(import_source, src)
    opaque = Image.open(src / "ours" / "bridge.png").convert("RGBA")
    opaque.save(src / "ours" / "bridge.png")
    see_through = np.array(Image.open(src / "adain" / "lake.png").convert("RGBA"))
    see_through[:10, :, 3] = 0  # the top rows transparent
    Image.fromarray(see_through, "RGBA").save(src / "adain" / "lake.png")
    m = StudyManifest.load(import_run(src, tmp_path / "run", "pairwise"))
    for cid in m.by_id:
        data = m.image_file(cid).read_bytes()
        assert data[25] == 2, cid  # IHDR colour type 2: RGB, every stimulus
    assert m.by_id["bridge:ours"].get("conversions") == ["opaque alpha channel dropped"]
    assert np.array_equal(np.array(Image.open(m.image_file("bridge:ours"))), np.array(opaque.convert("RGB")))
    lake = np.array(Image.open(m.image_file("lake:adain")))
    assert (lake[:10] == 255).all() and np.array_equal(lake[10:], see_through[10:, :, :3])
    assert m.by_id["lake:adain"].get("conversions") == ["transparency composited onto white"]


def test_hidden_repeats_differ_in_bytes_not_in_pixels(import_source, tmp_path, db_url):
    import hashlib

    import numpy as np
    from PIL import Image

    from stylestudy.evalserver.db import Participant

    run = import_run(import_source, tmp_path / "run", "acr", repeats=2)
    app = create_app(run, db_url, admin_token=TOKEN)
    c = _join(app, "hasher")
    with app.config["DB_SESSIONMAKER"]() as session:
        plan = session.query(Participant).filter_by(external_id="hasher").one().order
    seen: dict[str, bytes] = {}  # condition -> bytes of its first showing
    repeats = 0
    while not (s := c.get("/api/state").get_json())["done"]:
        data = c.get(s["images"][0]).data
        entry = plan[s["trial"] - 1]
        cid = entry["conditions"][0]
        if entry["role"] == "repeat":
            repeats += 1
            assert hashlib.sha256(data).digest() != hashlib.sha256(seen[cid]).digest()
            first, again = (np.array(Image.open(io.BytesIO(b))) for b in (seen[cid], data))
            assert np.array_equal(first, again)
        else:
            seen.setdefault(cid, data)
        pace(app, "hasher")
        c.post(f"/api/trials/{s['trial']}", json={"ratings": [3], "shown_ms": [250]})
    assert repeats == 2


def test_briefing_examples_come_in_an_order_of_their_own_per_participant(run_copy):
    import hmac

    from stylestudy.evalserver.db import Participant

    app = create_app(run_copy, admin_token=TOKEN)
    orders = set()
    for i in range(8):
        c = app.test_client()
        c.post("/start", data={"consent": "yes", "PROLIFIC_PID": f"brief-{i}"})
        page = c.get("/briefing").get_data(as_text=True)
        with app.config["DB_SESSIONMAKER"]() as session:
            public = session.query(Participant).filter_by(external_id=f"brief-{i}").one().public_id
        place_of = {hmac.new(app.config["URL_KEY"].encode(), f"{public}:briefing:{k}".encode(),
                             hashlib.sha256).hexdigest()[:32]: k for k in (1, 2)}  # the manifest's order
        shown = [place_of[u[3:]] for u in re.findall(r'src="(/s/[0-9a-f]{32})"', page)]
        assert sorted(shown) == [1, 2] and page.index("Example 1") < page.index("Example 2")
        orders.add(tuple(shown))
    assert orders == {(1, 2), (2, 1)}  # both orders occur (8 participants, seeded per participant)


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "ICO", "JPEG"])
def test_import_decodes_only_what_the_name_says(import_source, tmp_path, fmt):
    import shutil

    from PIL import Image

    from stylestudy.engine.study.importer import ImportProblem

    src = tmp_path / "src"
    shutil.copytree(import_source, src)
    Image.open(src / "ours" / "bridge.png").convert("RGB").save(src / "ours" / "bridge.png", format=fmt)
    with pytest.raises(ImportProblem, match=f"ours/bridge.png: .*name says PNG but its content is {fmt}"):
        import_run(src, tmp_path / "run", "pairwise")
    assert not (tmp_path / "run").exists()


def test_joins_per_address_are_limited(import_source, tmp_path, db_url, monkeypatch):
    monkeypatch.setenv("STYLESTUDY_JOIN_LIMIT", "3/600")
    run = import_run(import_source, tmp_path / "run", "pairwise")
    app = create_app(run, db_url, admin_token=TOKEN)
    for i in range(3):
        assert app.test_client().post("/start", data={"consent": "yes", "pid": f"j{i}"}).status_code == 302
    r = app.test_client().post("/start", data={"consent": "yes", "pid": "j3"})
    assert r.status_code == 429 and "wait a few seconds" in r.get_data(as_text=True)
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    assert other.post("/start", data={"consent": "yes", "pid": "j4"}).status_code == 302
    status = _status(app)
    assert status["participants"] == 4 and status["flow"]["refused"] == {"join_limit": 1}


@pytest.mark.parametrize("value, limit", [("", (60, 600.0)), ("0", None), ("5/30", (5, 30.0))])
def test_the_join_limit_setting(value, limit):
    from stylestudy.evalserver.app import join_limit

    assert join_limit(value) == limit


@pytest.mark.parametrize("value", ["5", "a/b", "0/10", "5/0", "-1/5"])
def test_a_bad_join_limit_is_a_one_line_error(value):
    from stylestudy.engine.study.errors import StyleStudyError
    from stylestudy.evalserver.app import join_limit

    with pytest.raises(StyleStudyError, match="STYLESTUDY_JOIN_LIMIT must be JOINS/SECONDS"):
        join_limit(value)


# --- a repeated /api/state writes nothing ---------------------------------------------------------

def _database_rows(app) -> dict[str, list]:
    """Every row of every table, in a fixed order: equal snapshots mean nothing was written."""
    from sqlalchemy import inspect, select, table, text

    engine = app.config["DB_ENGINE"]
    with engine.connect() as connection:
        names = sorted(inspect(connection).get_table_names())
        return {name: sorted((tuple(map(repr, row)) for row in connection.execute(
            select(text("*")).select_from(table(name)))), key=repr) for name in names}


def _commits(app) -> list[int]:
    """A counter of the transactions committed on the app's writing engine from now on."""
    from sqlalchemy import event

    count = [0]
    event.listen(app.config["DB_ENGINE"], "commit", lambda _connection: count.__setitem__(0, count[0] + 1))
    return count


def _serving(app, pid) -> tuple:
    from stylestudy.evalserver.db import Participant

    with app.config["DB_SESSIONMAKER"]() as session:
        p = session.query(Participant).filter_by(external_id=pid).one()
        return p.current_trial, p.served_count, p.served_at


@pytest.mark.parametrize("sampling", ["fixed", "adaptive"])
def test_a_looping_state_client_writes_nothing_and_a_real_reload_is_a_restart(import_source, tmp_path, db_url,
                                                                              sampling):
    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=2,
                     **({"sampling": "adaptive"} if sampling == "adaptive" else {}))
    app = create_app(run, db_url, admin_token=TOKEN)
    c = _join(app, "looper")
    first = c.get("/api/state").get_json()
    trial, served_count, served_at = _serving(app, "looper")
    assert (trial, served_count) == (1, 1) and served_at is not None  # the first serve is recorded
    before, commits = _database_rows(app), _commits(app)
    assert all(c.get("/api/state").get_json() == first for _ in range(30))  # the same trial, the same pair
    assert commits[0] == 0 and _database_rows(app) == before  # no commit, not a row changed
    assert [c.get(url).status_code for url in first["images"]] == [200, 200]  # shown once
    assert [c.get(url).status_code for url in first["images"]] == [410, 410]
    assert c.get("/api/state").get_json() == first  # a reload after the images came: served again
    assert _serving(app, "looper")[:2] == (1, 2) and _serving(app, "looper")[2] > served_at
    settled, commits[0] = _database_rows(app), 0
    assert all(c.get("/api/state").get_json() == first for _ in range(10))  # nothing shown since: no restart
    assert commits[0] == 0 and _database_rows(app) == settled and _serving(app, "looper")[1] == 2
    assert [c.get(url).status_code for url in first["images"]] == [200, 200]  # fetched afresh, once
    pace(app, "looper")
    assert c.post("/api/trials/1", json={"choice": 1, "shown_ms": [250, 250]}).status_code == 200
    second = c.get("/api/state").get_json()  # trial 2: requested over and over, its images never fetched
    for _ in range(5):
        assert c.get("/api/state").get_json() == second
    assert _serving(app, "looper")[:2] == (2, 1)
    pace(app, "looper")
    assert c.post("/api/trials/2", json={"choice": 1, "shown_ms": [250, 250]}).status_code == 200
    rows = list(csv.DictReader(io.StringIO(app.test_client().get("/admin/export.csv", headers=AUTH).get_data(
        as_text=True))))
    restarted = {r["trial"]: "restarted" in r["flags"].split(";") for r in rows}
    assert restarted == {"1": True, "2": False}
