"""Flask-level tests of the rating server: flow, order, idempotency, validation, blinding, admin."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from stylestudy.evalserver.app import create_app
from stylestudy.evalserver.export import COLUMNS
from tests.conftest import pace

TOKEN = "admin-secret-token"
GOOD = {"ratings": [4, 2], "shown_ms": [250.0, 251.0], "response_ms": [900.0, 1300.0], "blur": False}


@pytest.fixture()
def app(run_copy, db_url):
    """The app on SQLite and on a real PostgreSQL (see conftest)."""
    return create_app(run_copy, db_url, admin_token=TOKEN)


def _join(client, pid=None, brief=True):
    query = f"?PROLIFIC_PID={pid}&STUDY_ID=s1&SESSION_ID=x9" if pid else ""
    assert client.get("/" + query).status_code == 200
    data = {"consent": "yes"}
    if pid:
        data.update(PROLIFIC_PID=pid, STUDY_ID="s1", SESSION_ID="x9")
    r = client.post("/start", data=data)
    assert r.status_code == 302
    if brief:
        assert client.post("/briefing").status_code == 302
    return r


def _state(client):
    r = client.get("/api/state")
    assert r.status_code == 200
    return r.get_json()


def _complete(client, ratings=(4, 2), app=None):
    """Answer every trial (at a human's pace when ``app`` is given: not too_fast)."""
    while True:
        s = _state(client)
        if s["done"]:
            return
        if app is not None:
            pace(app)
        r = client.post(f"/api/trials/{s['trial']}", json=dict(GOOD, ratings=list(ratings)))
        assert r.status_code == 200


def _sql(app, query):
    from sqlalchemy import text

    with app.config["DB_SESSIONMAKER"]() as session:
        return session.execute(text(query)).all()


def _export(app):
    r = app.test_client().get("/admin/export.csv", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    return list(csv.DictReader(io.StringIO(r.data.decode())))


def test_full_flow_and_export(app):
    c = app.test_client()
    r = _join(c, "prolific-1", brief=False)
    assert r.location.endswith("/briefing")
    page = c.get("/briefing").data.decode()
    assert "Transferred well" in page and page.count("<img") == 2 and "Continue" in page
    c.post("/briefing")
    assert c.get("/trial").status_code == 200
    first = _state(c)
    assert first["trial"] == 1 and first["total"] == 4 and first["image_ms"] == 250 and first["rating_ms"] == 2000
    _complete(c, app=app)
    assert _state(c)["done"] is True
    done = c.get("/done").data.decode()
    assert "C0DE42" in done
    rows = _export(app)
    assert len(rows) == 8 and list(rows[0])[: len(COLUMNS)] == COLUMNS
    assert {r["external_id"] for r in rows} == {"prolific-1"}
    assert [r["rating"] for r in rows] == ["4", "2"] * 4
    assert sorted((r["trial"], r["position"]) for r in rows) == sorted((str(t), str(p)) for t in range(1, 5) for p in (1, 2))
    manifest = json.loads((app.config["MANIFEST"].run_dir / "manifest.json").read_text())
    rated = [s for s in manifest["stimuli"] if not s["briefing"]]
    # Every rated condition exactly once, each row carrying that condition's cell and image.
    assert sorted(r["condition_id"] for r in rows) == sorted(s["id"] for s in rated)
    by_condition = {s["id"]: s for s in rated}
    for row in rows:
        s = by_condition[row["condition_id"]]
        assert (row["method"], row["block"], row["pair_id"], int(row["row"]), int(row["column"]), row["image_id"]) == (
            s["method"], s["block"], s["pair_id"], s["row"], s["column"], s["image_id"])
        assert row["rated_at"].endswith("Z")
    for trial in {r["trial"] for r in rows}:  # both methods of one pair in every trial
        pair = [r for r in rows if r["trial"] == trial]
        assert {r["method"] for r in pair} == {"baseline", "normalized"} and len({r["pair_id"] for r in pair}) == 1


def test_order_is_random_per_participant_and_stable(app):
    orders, clients = [], {}
    for pid in ("p-a", "p-b", "p-c", "p-d"):
        c = clients[pid] = app.test_client()
        _join(c, pid)
        seen = []
        for _ in range(4):
            s = _state(c)
            seen.append(tuple(s["images"]))
            c.post(f"/api/trials/{s['trial']}", json=GOOD)
        orders.append(seen)
    participants = _sql(app, 'select external_id, "order" from participants')
    plans = {pid: order if isinstance(order, list) else json.loads(order) for pid, order in participants}
    assert len({json.dumps([t["pair_id"] for t in p]) for p in plans.values()}) > 1  # pair order differs
    firsts = {t["conditions"][0] for p in plans.values() for t in p}
    assert len(firsts) > 4  # which method comes first varies
    # The same external id resumes the same participant and the same plan (in the browser that started).
    c = clients["p-a"]
    _join(c, "p-a", brief=False)
    again = _sql(app, "select count(*) from participants where external_id='p-a'")[0][0]
    assert again == 1 and _state(c)["done"] is True


def test_refresh_keeps_trial_and_flags_restart(app):
    c = app.test_client()
    _join(c, "refresher")
    a = _state(c)
    assert all(c.get(url).status_code == 200 for url in a["images"])  # shown: a request now is a reload
    b = _state(c)
    assert a["trial"] == b["trial"] == 1 and a["images"] == b["images"]
    c.post("/api/trials/1", json=GOOD)
    rows = _export(app)
    assert all("restarted" in r["flags"].split(";") for r in rows)


def test_idempotent_and_ordered_submissions(app):
    c = app.test_client()
    _join(c, "dup")
    _state(c)
    first = c.post("/api/trials/1", json=GOOD).get_json()
    repeat = c.post("/api/trials/1", json=dict(GOOD, ratings=[1, 1])).get_json()
    assert first["duplicate"] is False and repeat["duplicate"] is True
    assert "stored" not in repeat  # a bare acknowledgement
    assert c.post("/api/trials/3", json=GOOD).status_code == 409  # not the current trial
    assert [r["rating"] for r in _export(app)] == ["4", "2"]  # the stored result, not the new one


@pytest.mark.parametrize("body,status", [
    ("not json", 400),
    ({"ratings": [6, 1]}, 400),
    ({"ratings": [0, 1]}, 400),
    ({"ratings": [True, 1]}, 400),
    ({"ratings": [2.5, 1]}, 400),
    ({"ratings": [1]}, 400),
    ({"ratings": [1, 2], "shown_ms": [-1, 5]}, 400),
    ({"ratings": [1, 2], "evil": 1}, 400),
    ({"ratings": [1, 2], "blur": "yes"}, 400),
])
def test_validation_stores_nothing(app, body, status):
    c = app.test_client()
    _join(c, "validator")
    _state(c)
    if isinstance(body, str):
        r = c.post("/api/trials/1", data=body, content_type="application/json")
    else:
        r = c.post("/api/trials/1", json=body)
    assert r.status_code == status and "error" in r.get_json()
    assert _export(app) == [] and _state(c)["trial"] == 1


def test_oversized_body_and_unknown_participant(app):
    c = app.test_client()
    assert c.post("/api/trials/1", json=GOOD).status_code == 401
    assert c.get("/api/state").status_code == 401
    _join(c, "big")
    _state(c)
    r = c.post("/api/trials/1", data="x" * 100_000, content_type="application/json")
    assert r.status_code == 413 and _export(app) == []


def test_missing_ratings_are_stored_as_timeouts(app):
    c = app.test_client()
    _join(c, "slow")
    _state(c)
    c.post("/api/trials/1", json={"ratings": [None, 3], "shown_ms": [250, 400], "response_ms": [None, 1000],
                                  "blur": True})
    rows = _export(app)
    assert rows[0]["rating"] == "" and set(rows[0]["flags"].split(";")) >= {"timeout", "blur"}
    assert rows[1]["rating"] == "3" and "short_display" in rows[1]["flags"] and "timeout" not in rows[1]["flags"]


def test_external_ids_are_stripped_and_blank_means_none(app):
    """Whitespace around an id is not part of it; a blank id is no id, so two people who both
    arrive with a blank PROLIFIC_PID get two participant rows."""
    first, second, padded = app.test_client(), app.test_client(), app.test_client()
    for client in (first, second):
        assert client.post("/start", data={"consent": "yes", "PROLIFIC_PID": "   ", "STUDY_ID": " "}).status_code == 302
        client.post("/briefing")
    assert padded.post("/start", data={"consent": "yes", "PROLIFIC_PID": "  abc  "}).status_code == 302
    again = app.test_client()
    again.post("/start", data={"consent": "yes", "pid": "abc"})
    rows = _sql(app, "select public_id, external_id, external_study_id from participants order by id")
    assert len(rows) == 3 and rows[0][0] != rows[1][0]
    assert [r[1] for r in rows] == [None, None, "abc"] and rows[0][2] is None
    assert _state(first)["trial"] == 1 and _state(second)["trial"] == 1


def test_the_database_refuses_a_second_rating_of_one_condition(app):
    """Beyond the server's own checks: a unique index on (participant, condition) for every
    rating that is not an attention check, so no code path can store a cell twice."""
    from sqlalchemy.exc import IntegrityError

    from stylestudy.evalserver.db import Participant, Rating

    c = app.test_client()
    _join(c, "once")
    _complete(c)
    with app.config["DB_SESSIONMAKER"]() as session:
        p = session.query(Participant).filter_by(external_id="once").one()
        stored = session.query(Rating).filter_by(participant_id=p.id).first()
        copy = {k: getattr(stored, k) for k in ("pair_id", "condition_id", "image_id", "method", "block", "row",
                                               "column")}
        session.add(Rating(participant_id=p.id, trial=99, position=1, rating=3, **copy))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        session.add(Rating(participant_id=p.id, trial=99, position=1, rating=3, attention=True,
                           **dict(copy, pair_id="attention-1")))
        session.commit()  # an attention check may show a rated condition again


def test_a_version_0_1_database_is_refused_with_a_way_out(run_copy):
    import sqlite3

    from stylestudy.engine.study.errors import StyleStudyError

    db = run_copy / "ratings.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table ratings (id integer primary key, participant_id integer, stimulus_id varchar(64))")
    with pytest.raises(StyleStudyError, match="made by stylestudy 0.1.*start a new database"):
        create_app(run_copy, admin_token=TOKEN)
    with sqlite3.connect(db) as con:  # nothing of it was touched
        assert [r[1] for r in con.execute("pragma table_info(ratings)")] == ["id", "participant_id", "stimulus_id"]


def test_a_database_from_before_the_protocols_gets_the_comparison_index(run_copy, db_url):
    """Its unique index was (participant, condition) where not attention, which would refuse a
    reference rated in two comparisons; opening it moves the index, and its ratings stay."""
    from sqlalchemy import inspect, text

    from stylestudy.evalserver.app import database_url
    from stylestudy.evalserver.db import OLD_RATING_INDEX, RATING_INDEX, make_engine

    app = create_app(run_copy, db_url, admin_token=TOKEN)
    c = app.test_client()
    _join(c, "old")
    _complete(c)
    url = database_url(run_copy, db_url)
    engine = make_engine(url)
    with engine.begin() as con:  # turn it into a database of the previous version
        con.exec_driver_sql(f"DROP INDEX {RATING_INDEX}")
        con.exec_driver_sql(f"CREATE UNIQUE INDEX {OLD_RATING_INDEX} ON ratings (participant_id, condition_id) "
                            "WHERE NOT attention")
    engine.dispose()
    engine = make_engine(url)
    with engine.begin() as con:
        names = {i["name"] for i in inspect(con).get_indexes("ratings")}
        assert RATING_INDEX in names and OLD_RATING_INDEX not in names
        assert con.execute(text("SELECT count(*) FROM ratings")).scalar() == 8
        # the same condition in another comparison is now allowed, in the same one still not
        row = con.execute(text("SELECT participant_id, condition_id, pair_id FROM ratings LIMIT 1")).one()
        insert = text("INSERT INTO ratings (participant_id, trial, position, pair_id, condition_id, image_id, method, "
                      "block, row, row_label, \"column\", column_label, flags, attention, rated_at) VALUES (:p, 99, 1, "
                      ":pair, :c, 'i', 'm', 'b', 1, '', 1, '', '', false, CURRENT_TIMESTAMP)")
        con.execute(insert, {"p": row[0], "c": row[1], "pair": "repeat-1"})
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), engine.begin() as con:
        con.execute(insert, {"p": row[0], "c": row[1], "pair": row[2]})
    engine.dispose()


def test_consent_required(app):
    c = app.test_client()
    assert c.post("/start", data={}).status_code == 400
    assert c.get("/api/state").status_code == 401


def test_blinding(app):
    c = app.test_client()
    _join(c, "blind")
    manifest = app.config["MANIFEST"]
    page = c.get("/trial").data.decode() + c.get("/briefing").data.decode()
    s = _state(c)
    text = page + json.dumps(s)
    for cond in manifest.conditions:
        assert cond.id not in text and cond.image_id not in text and cond.path not in text
    for word in ("baseline", "normalized", "lambda", "λ", "stimuli/"):
        assert word not in text
    img = c.get(s["images"][0])
    assert img.status_code == 200 and img.mimetype == "image/png"
    header_text = " ".join(f"{k}: {v}" for k, v in img.headers.items())
    assert "filename" not in header_text and "stimuli" not in header_text and "ETag" not in img.headers
    # Another participant's URL, a guessed URL, files and listings: all 404.
    other = app.test_client()
    _join(other, "other")
    assert other.get(s["images"][0]).status_code == 404
    for path in ("/s/" + "0" * 32, "/stimuli/", "/run/manifest.json", "/manifest.json", "/static/",
                 "/s/../manifest.json"):
        assert c.get(path).status_code == 404, path
    # After the trial, its images are no longer served.
    answer = c.post(f"/api/trials/{s['trial']}", json=GOOD)
    assert c.get(s["images"][0]).status_code == 404
    # The submit's response is a bare acknowledgement: nothing about the rows or their flags.
    assert set(answer.get_json()) == {"ok", "trial", "duplicate", "done", "next_trial", "redirect"}
    for word in ("flags", "too_fast", "baseline", "normalized", "stimuli/", "rating"):
        assert word not in answer.data.decode()


def test_admin_needs_the_token(app):
    c = app.test_client()
    for path in ("/admin/", "/admin/export.csv"):
        assert c.get(path).status_code == 401
        assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post("/admin/state", data={"open": "0"}).status_code == 401
    assert c.post("/admin/login", data={"token": "wrong"}).status_code == 401
    assert c.get(f"/admin/login?token={TOKEN}").status_code == 200 and c.get("/admin/").status_code == 401
    assert c.post("/admin/login", data={"token": TOKEN}).status_code == 302
    page = c.get("/admin/").data.decode()
    assert "Download ratings" in page
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page).group(1)
    # Closing stops new participants but not existing ones; a state change needs the CSRF token.
    p = app.test_client()
    _join(p, "early")
    assert c.post("/admin/state", data={"open": "0"}).status_code == 403
    assert c.post("/admin/state", data={"open": "0", "csrf_token": "0" * 64}).status_code == 403
    assert _state(p)["trial"] == 1 and "is <strong>open</strong>" in c.get("/admin/").data.decode()
    assert c.post("/admin/state", data={"open": "0", "csrf_token": csrf}).status_code == 302
    late = app.test_client()
    assert late.post("/start", data={"consent": "yes", "PROLIFIC_PID": "late"}).status_code == 403
    assert _state(p)["trial"] == 1
    assert "closed" in c.get("/admin/").data.decode()


def test_export_cli_round_trip(app, run_copy, db_url, tmp_path, capsys):
    from stylestudy.cli import main

    c = app.test_client()
    _join(c, "cli")
    _complete(c, ratings=(5, 1))
    out = tmp_path / "ratings.csv"
    assert main(["export", str(run_copy), "--out", str(out), *(["--db", db_url] if db_url else [])]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and {r["rating"] for r in rows} == {"5", "1"}
    assert main(["export", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def test_attention_checks_from_the_study_file(run_copy):
    manifest_path = run_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["study"]["protocol"]["attention_checks"] = 2
    manifest_path.write_text(json.dumps(manifest))
    app = create_app(run_copy, admin_token=TOKEN)
    c = app.test_client()
    _join(c, "attentive")
    seen = 0
    while True:
        s = _state(c)
        if s["done"]:
            break
        assert s["total"] == 6  # 4 pairs + 2 checks
        if "instruction" in s:
            seen += 1
            wanted = int(s["instruction"].rstrip(".").split()[-1])
            ratings = [wanted, wanted] if seen == 1 else [wanted % 5 + 1, wanted]  # pass one, fail one
        else:
            ratings = [3, 3]
        c.post(f"/api/trials/{s['trial']}", json=dict(GOOD, ratings=ratings))
    rows = _export(app)
    attention = [r for r in rows if r["block"] == "attention"]
    assert seen == 2 and len(attention) == 4 and all(r["attention"] == "1" for r in attention)
    failed = [r for r in attention if "attention_failed" in r["flags"]]
    assert len(failed) == 1


def test_server_runs_without_torch(run_copy):
    """The participant-facing server never imports torch (or the engine's optimisation code)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "from stylestudy.evalserver.app import create_app\n"
        f"app = create_app({str(run_copy)!r}, admin_token='t')\n"
        "c = app.test_client()\n"
        "assert c.get('/').status_code == 200\n"
        "assert c.post('/start', data={'consent': 'yes'}).status_code == 302\n"
        "c.post('/briefing')\n"
        "s = c.get('/api/state').get_json()\n"
        "assert c.get(s['images'][0]).status_code == 200\n"
        "print('ok', 'stylestudy.engine.neural.transfer' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok False"
