"""Participants cannot spoil the data (issue 20): no takeover by id, no answer without the trial
being served, no QC state in any response, one attention rule, safe ids and exports.

Each test is one numbered finding of the issue; all run on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pytest

from stylestudy.evalserver.app import create_app

TOKEN = "admin-secret-token"
GOOD = {"ratings": [4, 2], "shown_ms": [250.0, 251.0], "response_ms": [900.0, 1300.0], "blur": False}


@pytest.fixture()
def app(run_copy, db_url):
    return create_app(run_copy, db_url, admin_token=TOKEN)


def _sql(app, query):
    from sqlalchemy import text

    with app.config["DB_SESSIONMAKER"]() as session:
        return session.execute(text(query)).all()


def _export(app):
    r = app.test_client().get("/admin/export.csv", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    return list(csv.DictReader(io.StringIO(r.data.decode())))


def _start(client, **ids):
    return client.post("/start", data={"consent": "yes", **ids})


def _set_resume(run_dir, policy):
    path = run_dir / "manifest.json"
    doc = json.loads(path.read_text())
    doc["study"]["protocol"]["resume"] = policy
    path.write_text(json.dumps(doc))


# --- finding 1: takeover by id --------------------------------------------------------------------

@pytest.mark.parametrize("param", ["PROLIFIC_PID", "pid"])
def test_a_known_id_from_another_browser_is_refused_and_stores_nothing(app, param):
    victim = app.test_client()
    assert _start(victim, **{param: "victim-1"}, SESSION_ID="sess-a").status_code == 302
    victim.post("/briefing")
    before = _sql(app, "select count(*) from participants")[0][0]
    attacker = app.test_client()
    r = _start(attacker, **{param: "victim-1"}, SESSION_ID="guessed")
    assert r.status_code == 409 and "already started" in r.data.decode()
    assert attacker.get("/api/state").status_code == 401  # no session was handed over
    assert attacker.post("/api/trials/1", json=GOOD).status_code == 401
    assert _sql(app, "select count(*) from participants")[0][0] == before
    assert _sql(app, "select count(*) from ratings")[0][0] == 0
    # the same id from the browser that started resumes it
    assert _start(victim, **{param: "victim-1"}).status_code == 302
    assert victim.get("/api/state").get_json()["trial"] == 1


def test_the_default_policy_refuses_even_the_right_session_id(app):
    first = app.test_client()
    _start(first, PROLIFIC_PID="p-1", SESSION_ID="sess-1")
    assert _start(app.test_client(), PROLIFIC_PID="p-1", SESSION_ID="sess-1").status_code == 409


def test_cookie_or_session_resumes_with_the_same_external_session(run_copy, db_url):
    _set_resume(run_copy, "cookie_or_session")
    app = create_app(run_copy, db_url, admin_token=TOKEN)
    first = app.test_client()
    _start(first, PROLIFIC_PID="p-2", SESSION_ID="sess-2")
    first.post("/briefing")
    assert _start(app.test_client(), PROLIFIC_PID="p-2", SESSION_ID="other").status_code == 409
    assert _start(app.test_client(), PROLIFIC_PID="p-2").status_code == 409
    again = app.test_client()
    assert _start(again, PROLIFIC_PID="p-2", SESSION_ID="sess-2").status_code == 302
    assert again.get("/api/state").get_json()["trial"] == 1
    assert _sql(app, "select count(*) from participants")[0][0] == 1


def test_a_bad_resume_policy_is_refused_at_start_up(run_copy):
    from stylestudy.engine.study.errors import StyleStudyError

    _set_resume(run_copy, "anyone")
    with pytest.raises(StyleStudyError, match="resume: must be one of cookie, cookie_or_session"):
        create_app(run_copy, admin_token=TOKEN)


# --- finding 5 (ids): only a conservative set of characters -----------------------------------------

@pytest.mark.parametrize("bad", ["=cmd|'/C calc'!A0", "a b", "x" * 129, "ab\ncd", "<script>", "é"])
@pytest.mark.parametrize("param", ["PROLIFIC_PID", "pid", "SESSION_ID", "STUDY_ID"])
def test_unsafe_external_ids_get_a_clear_page_and_store_nothing(app, bad, param):
    c = app.test_client()
    r = _start(c, **{param: bad})
    assert r.status_code == 400 and "not a valid id" in r.data.decode()
    assert c.get("/", query_string={param: bad}).status_code == 400
    assert _sql(app, "select count(*) from participants")[0][0] == 0


@pytest.mark.parametrize("good", ["5f1c0a8b9d2e3f4a5b6c7d8e", "user.name@panel:42", "a-b_c", "x" * 128])
def test_safe_external_ids_pass(app, good):
    c = app.test_client()
    assert _start(c, PROLIFIC_PID=good).status_code == 302
    assert _sql(app, "select external_id from participants")[0][0] == good
