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


# --- finding 2: timing cannot be skipped -----------------------------------------------------------

def _joined(app, pid):
    c = app.test_client()
    assert _start(c, PROLIFIC_PID=pid).status_code == 302
    assert c.post("/briefing").status_code == 302
    return c


def test_a_trial_is_answered_only_after_it_was_served(app):
    c = _joined(app, "skipper")
    r = c.post("/api/trials/1", json=GOOD)  # never fetched /api/state
    assert r.status_code == 409 and "not been shown" in r.get_json()["error"]
    assert _sql(app, "select count(*) from ratings")[0][0] == 0
    assert c.get("/api/state").get_json()["trial"] == 1
    assert c.post("/api/trials/1", json=GOOD).status_code == 200
    # trial 2 was not served: trial 1's serve time must not count for it
    assert c.post("/api/trials/2", json=GOOD).status_code == 409
    assert _sql(app, "select count(*) from ratings")[0][0] == 2
    assert c.get("/api/state").get_json()["trial"] == 2
    assert c.post("/api/trials/2", json=GOOD).status_code == 200
    rows = _export(app)
    first, second = [r for r in rows if r["trial"] == "1"], [r for r in rows if r["trial"] == "2"]
    assert all(r["served_at"] for r in rows)
    assert min(r["served_at"] for r in second) >= max(r["rated_at"] for r in first)  # its own serve time


def test_too_fast_uses_the_trials_own_serve_time_and_the_measured_displays(app):
    import time

    c = _joined(app, "hasty")
    c.get("/api/state")
    c.post("/api/trials/1", json=GOOD)  # at once: less than the two 250 ms displays
    c.get("/api/state")
    time.sleep(0.6)  # more than the protocol's 2 x 250 ms ...
    c.post("/api/trials/2", json=dict(GOOD, shown_ms=[4000.0, 4000.0]))  # ... but not the 8 s the page reports
    c.get("/api/state")
    time.sleep(0.6)
    c.post("/api/trials/3", json=GOOD)  # honest and slow enough
    flags = {(int(r["trial"]), int(r["position"])): set(r["flags"].split(";")) for r in _export(app)}
    assert all("too_fast" in flags[(1, pos)] for pos in (1, 2))
    assert all("too_fast" in flags[(2, pos)] for pos in (1, 2))
    assert not any("too_fast" in flags[(3, pos)] for pos in (1, 2))


# --- finding 3: no QC hints in any participant-readable response ------------------------------------

QC_WORDS = ("flag", "gold", "repeat", "too_fast", "attention", "role", "timeout", "short_display", "restarted",
            "no_preference", "stored", "method", "condition")
ACKNOWLEDGEMENT = {"ok", "trial", "duplicate", "done", "next_trial", "redirect"}


def test_submit_responses_are_bare_acknowledgements(import_source, tmp_path, db_url):
    """An acr study with gold items, hidden repeats and an attention check, answered so that every
    QC flag is raised: the responses, first and duplicate, carry none of it."""
    from tests.conftest import import_run

    run = import_run(import_source, tmp_path / "run", "acr", repeats=2, attention_checks=1, gold_method="photo",
                     gold_ratings=[1, 2])
    app = create_app(run, db_url, admin_token=TOKEN)
    c = _joined(app, "blind-qc")
    replies = []
    while not (s := c.get("/api/state").get_json())["done"]:
        body = {"ratings": [5], "shown_ms": [10.0], "response_ms": [1.0], "blur": True}  # fails gold and attention
        replies += [c.post(f"/api/trials/{s['trial']}", json=body), c.post(f"/api/trials/{s['trial']}", json=body)]
    flags = {f for r in _export(app) for f in r["flags"].split(";")}
    assert {"gold_failed", "repeat", "too_fast", "attention_failed", "short_display", "blur"} <= flags
    for reply in replies:
        assert reply.status_code == 200 and set(reply.get_json()) == ACKNOWLEDGEMENT
        text = reply.data.decode().lower()
        for word in QC_WORDS:
            assert word not in text.replace("next_trial", ""), (word, text)


# --- finding 4: one attention rule for every protocol ----------------------------------------------

@pytest.mark.parametrize("kind,answer", [("pairwise", 0), ("pairwise", None), ("acr", None), ("paired", None)])
def test_a_timeout_or_no_preference_fails_an_attention_check(import_source, tmp_path, db_url, kind, answer):
    from stylestudy.analysis.sources.ratings import load_ratings
    from tests.conftest import import_run

    settings = {"attention_checks": 1, **({"no_preference": True} if kind == "pairwise" else {})}
    run = import_run(import_source, tmp_path / "run", kind, **settings)
    app = create_app(run, db_url, admin_token=TOKEN)
    c = _joined(app, f"att-{kind}")
    while not (s := c.get("/api/state").get_json())["done"]:
        images = len(s["images"])
        if s.get("instruction"):  # the attention check: answered with a timeout / "No preference"
            body = {"choice": answer} if kind == "pairwise" else {"ratings": [answer] * images}
        else:
            body = {"choice": 1} if kind == "pairwise" else {"ratings": [3] * images}
        assert c.post(f"/api/trials/{s['trial']}", json=dict(body, shown_ms=[250.0] * images)).status_code == 200
    rows = _export(app)
    attention = [r for r in rows if r["role"] == "attention"]
    assert attention and all("attention_failed" in r["flags"].split(";") for r in attention)
    assert not any("attention_failed" in r["flags"] for r in rows if r["role"] != "attention")
    csv_path = tmp_path / "ratings.csv"
    csv_path.write_text(app.test_client().get("/admin/export.csv", headers={"Authorization": f"Bearer {TOKEN}"})
                        .data.decode())
    assert load_ratings(csv_path).counts["attention_failed"] == len(attention)


@pytest.mark.parametrize("kind", ["acr", "pairwise"])
def test_a_failed_attention_check_screens_out_when_the_study_says_so(import_source, tmp_path, db_url, kind):
    """``attention_screen_out = 1``: the failed check is stored and acknowledged like any answer
    (bare), then the participant is sent to the screen-out page with its code; nothing more is
    accepted; the admin page, the participants export and the flow count the reason. The one
    who passes the check goes on to the end."""
    from sqlalchemy import select

    from stylestudy.evalserver.db import Participant
    from stylestudy.evalserver.flow_log import flow_counts
    from tests.conftest import import_run

    run = import_run(import_source, tmp_path / "run", kind, attention_checks=1, attention_screen_out=1,
                     screen_out_code="ATT9")
    app = create_app(run, db_url, admin_token=TOKEN)
    outcomes = {}
    for pid, fail in (("careless", True), ("careful", False)):
        c = _joined(app, pid)
        while True:
            r = c.get("/api/state")
            if r.status_code == 409:
                assert r.get_json()["redirect"].endswith("/screened-out")
                outcomes[pid] = "screened out"
                break
            s = r.get_json()
            if s["done"]:
                outcomes[pid] = "done"
                break
            images = len(s["images"])
            asked = int(s["instruction"].rstrip(".").split()[-1]) if s.get("instruction") else None
            answer = None if fail and asked else asked or (1 if kind == "pairwise" else 3)
            body = {"choice": answer} if kind == "pairwise" else {"ratings": [answer] * images}
            reply = c.post(f"/api/trials/{s['trial']}", json=dict(body, shown_ms=[250.0] * images))
            assert reply.status_code == 200 and set(reply.get_json()) == ACKNOWLEDGEMENT
            assert "attention" not in reply.data.decode().lower()
        if fail:
            page = c.get("/screened-out").get_data(as_text=True)
            assert "ATT9" in page and "The study ends here" in page
            late = c.post(f"/api/trials/{s['trial'] if r.status_code == 200 else 1}", json={"choice": 1})
            assert late.status_code == 409 and late.get_json()["error"] == "screened out"
            assert c.get("/trial").status_code == 302
    assert outcomes == {"careless": "screened out", "careful": "done"}
    rows = _export(app)
    careless = [r for r in rows if r["external_id"] == "careless"]
    assert careless[-1]["role"] == "attention" and "attention_failed" in careless[-1]["flags"]
    with app.config["DB_SESSIONMAKER"]() as session:
        people = {p.external_id: p for p in session.scalars(select(Participant))}
        assert people["careless"].screened_out == "attention" and people["careless"].completed_at is None
        assert people["careful"].screened_out is None and people["careful"].completed_at is not None
        assert flow_counts(session)["screened_out"] == {"attention": 1}
    admin = app.test_client().get("/admin/", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    assert "<th>screened out: attention</th><td>1</td>" in admin and "<td>screened out: attention</td>" in admin


def test_attention_screen_out_beyond_the_checks_is_refused(import_source, tmp_path):
    from stylestudy.engine.study.importer import ImportProblem
    from tests.conftest import import_run

    with pytest.raises(ImportProblem, match=r"attention_screen_out: must be between 0 \(never\) and attention_checks \(1\), got 2"):
        import_run(import_source, tmp_path / "run", "acr", attention_checks=1, attention_screen_out=2)


# --- finding 5: spreadsheet formula injection ------------------------------------------------------

HOSTILE = {"external_id": "=cmd|'/C calc'!A0", "external_study_id": "+SUM(1)", "external_session_id": "'quoted"}


def test_exports_neutralise_formulas_and_analyze_reads_the_original_values(app, run_copy, db_url, tmp_path):
    """Ids stored before ids were restricted (or by any other way in) reach no spreadsheet as a
    formula, in the admin CSV and in ``stylestudy export``; the analysis reads them back as they were."""
    from sqlalchemy import text

    from stylestudy.analysis.sources.ratings import load_ratings
    from stylestudy.cli import main

    c = _joined(app, "-1")  # a legal id that a spreadsheet would read as a formula
    other = _joined(app, "plain")
    for client in (c, other):
        while not (s := client.get("/api/state").get_json())["done"]:
            client.post(f"/api/trials/{s['trial']}", json=GOOD)
    with app.config["DB_SESSIONMAKER"]() as session:
        session.execute(text("UPDATE participants SET external_id = :a, external_study_id = :b, "
                             "external_session_id = :c WHERE external_id = 'plain'"),
                        {"a": HOSTILE["external_id"], "b": HOSTILE["external_study_id"],
                         "c": HOSTILE["external_session_id"]})
        session.commit()
    admin_csv = app.test_client().get("/admin/export.csv", headers={"Authorization": f"Bearer {TOKEN}"}).data.decode()
    cli_csv = tmp_path / "ratings.csv"
    assert main(["export", str(run_copy), "--out", str(cli_csv), *(["--db", db_url] if db_url else [])]) == 0
    assert cli_csv.read_text() == admin_csv
    rows = list(csv.DictReader(io.StringIO(admin_csv)))
    assert {r["display"] for r in rows} == {app.config["MANIFEST"].protocol.display}  # both name the study's mode
    cells = {(r["external_id"], r["external_study_id"], r["external_session_id"]) for r in rows}
    assert cells == {("'-1", "", ""), ("'=cmd|'/C calc'!A0", "'+SUM(1)", "''quoted")}
    for row in rows:  # no text cell starts a formula; numbers stay numbers
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values())
        assert int(row["trial"]) >= 1 and float(row["shown_ms"]) > 0
    from_csv = load_ratings(cli_csv).all_rows
    from_db = load_ratings(run_copy, db_url=db_url).all_rows
    assert set(from_csv["external_id"]) == set(from_db["external_id"]) == {"-1", HOSTILE["external_id"]}
    assert set(from_csv["external_session_id"].dropna()) == {HOSTILE["external_session_id"]}
    assert set(from_csv["external_study_id"].dropna()) == {HOSTILE["external_study_id"]}


def test_neutralise_and_restore_are_inverse():
    from stylestudy.evalserver.spreadsheet_cells import neutralise, restore

    for value in ["", "a", "=1+1", "+", "-x", "@SUM(A1)", "\tx", "\rx", "'", "''=", "a=b", "1e-3"]:
        cell = neutralise(value)
        assert restore(cell) == value and not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_the_demos_simulated_participants_rerun_without_taking_over(run_copy):
    """``stylestudy demo`` run twice: its simulated participants' ids have started, so the second
    run's new clients are refused (AlreadyStarted) and submit nothing, instead of failing."""
    from stylestudy.demo import _serve_in_thread, simulate_participants
    from tests.conftest import _pattern

    (run_copy / "inputs").mkdir()
    _pattern(30, 24, 1).save(run_copy / "inputs" / "photo.png")  # the simulated raters' reference picture
    app = create_app(run_copy, admin_token=TOKEN)
    base_url, server = _serve_in_thread(app)
    try:
        assert simulate_participants(base_url, run_copy, "photo", 2) == 2 * 4
        assert simulate_participants(base_url, run_copy, "photo", 2) == 0
    finally:
        server.shutdown()
    assert _sql(app, "select count(*) from ratings")[0][0] == 2 * 4 * 2
