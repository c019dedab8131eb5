"""The acr, pairwise and generalised paired protocols over HTTP, on SQLite and a real PostgreSQL:
plans, storage, validation, idempotency, blinding, and the whole path import -> serve -> export
-> analyze."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from itertools import combinations

import pytest

from stylestudy.evalserver.app import create_app
from tests.conftest import IMPORT_ITEMS, IMPORT_METHODS, LiveServer, import_run

TOKEN = "admin-secret-token"


def _join(client, pid):
    assert client.get(f"/?PROLIFIC_PID={pid}").status_code == 200
    assert client.post("/start", data={"consent": "yes", "PROLIFIC_PID": pid}).status_code == 302
    assert client.post("/briefing").status_code == 302


def _state(client):
    r = client.get("/api/state")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _export(app):
    r = app.test_client().get("/admin/export.csv", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    return list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))


def _plan(app, pid):
    from stylestudy.evalserver.db import Participant

    with app.config["DB_SESSIONMAKER"]() as session:
        return session.query(Participant).filter_by(external_id=pid).one().order


def test_acr_rates_every_condition_once_with_hidden_repeats_gold_and_attention(import_source, tmp_path, db_url):
    run = import_run(import_source, tmp_path / "run", "acr", repeats=2, attention_checks=1, gold_method="photo",
                     gold_ratings=[1, 2])
    app = create_app(run, db_url, admin_token=TOKEN)
    c = app.test_client()
    _join(c, "acr-1")
    plan = _plan(app, "acr-1")
    assert len(plan) == 12 + 2 + 1
    roles = Counter(e["role"] for e in plan)
    assert roles == {"rated": 12, "repeat": 2, "attention": 1}
    for k, e in enumerate(plan):  # a repeat comes at least two trials after its original
        if e["role"] == "repeat":
            first = next(i for i, x in enumerate(plan) if x["role"] == "rated" and x["conditions"] == e["conditions"])
            assert k - first >= 3 or k == len(plan) - 1
    while not (s := _state(c))["done"]:
        assert s["protocol"] == "acr" and len(s["images"]) == 1
        entry = plan[s["trial"] - 1]
        bad = {"ratings": [3, 3], "shown_ms": [250]}
        assert c.post(f"/api/trials/{s['trial']}", json=bad).status_code == 400
        assert c.post(f"/api/trials/{s['trial']}", json={"choice": 1, "shown_ms": [250]}).status_code == 400
        rating = 5 if entry["role"] != "attention" else 1 + entry["attention"] % 5  # fails the attention check
        body = {"ratings": [rating], "shown_ms": [250.0], "response_ms": [700.0]}
        assert c.post(f"/api/trials/{s['trial']}", json=body).status_code == 200
        again = c.post(f"/api/trials/{s['trial']}", json=dict(body, ratings=[1]))
        assert again.get_json()["duplicate"] and "stored" not in again.get_json()
    rows = _export(app)
    assert len(rows) == 15 and {r["protocol"] for r in rows} == {"acr"}
    rated = [r for r in rows if r["role"] == "rated"]
    assert sorted(r["condition_id"] for r in rated) == sorted(f"{i}:{m}" for i in IMPORT_ITEMS for m in IMPORT_METHODS)
    repeats = [r for r in rows if r["role"] == "repeat"]
    assert len(repeats) == 2 and all("repeat" in r["flags"] for r in repeats)
    assert all(("gold_failed" in r["flags"]) == (r["method"] == "photo") for r in rated)  # 5 is not in [1, 2]
    (attention,) = [r for r in rows if r["role"] == "attention"]
    assert "attention_failed" in attention["flags"] and attention["block"] == "attention"
    admin = app.test_client().get("/admin/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert admin.status_code == 200 and "acr-1" in admin.get_data(as_text=True)


def test_pairwise_covers_method_pairs_evenly_and_stores_choices(import_source, tmp_path, db_url):
    run = import_run(import_source, tmp_path / "run", "pairwise", no_preference=True, pairs_per_participant=7,
                     attention_checks=1)
    app = create_app(run, db_url, admin_token=TOKEN)
    sent: dict[tuple, int | None] = {}  # (participant, trial) -> the choice the participant made
    for pid in ("pw-1", "pw-2"):
        c = app.test_client()
        _join(c, pid)
        plan = _plan(app, pid)
        per_pair = Counter(tuple(e["pair_id"].split(":")[1].split("|")) for e in plan if e["role"] == "rated")
        assert sorted(per_pair) == list(combinations(IMPORT_METHODS, 2))
        assert sorted(per_pair.values()) == [2, 2, 3]  # 7 trials over 3 method pairs: as even as it gets
        assert all(len({e["pair_id"] for e in plan}) == len(plan) for _ in [0])  # no comparison twice
        choices = iter([1, 2, 0, None, 2, 1, 1, 2])
        while not (s := _state(c))["done"]:
            sent[(pid, str(s["trial"]))] = choice = next(choices)
            assert s["protocol"] == "pairwise" and len(s["images"]) == 2 and s["question"] and s["no_preference"]
            assert c.post(f"/api/trials/{s['trial']}", json={"ratings": [1, 2], "shown_ms": [250, 250]}).status_code == 400
            assert c.post(f"/api/trials/{s['trial']}", json={"choice": 3, "shown_ms": [250, 250]}).status_code == 400
            assert c.post(f"/api/trials/{s['trial']}", json={"choice": True, "shown_ms": [250, 250]}).status_code == 400
            body = {"choice": choice, "shown_ms": [250.0, 250.0], "response_ms": [640.0]}
            assert c.post(f"/api/trials/{s['trial']}", json=body).status_code == 200
    rows = [r for r in _export(app) if r["participant_id"]]
    by_trial: dict[tuple, list] = {}
    for r in rows:
        by_trial.setdefault((r["participant_id"], r["trial"]), []).append(r)
    outcomes = Counter()
    for (pid, trial), (first, second) in sorted(by_trial.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
        assert first["position"] == "1" and second["position"] == "2" and first["pair_id"] == second["pair_id"]
        pair = (first["rating"], second["rating"])
        if "no_preference" in first["flags"]:
            assert pair == ("0", "0") and "no_preference" in second["flags"]
            outcomes["none"] += 1
        elif "timeout" in first["flags"]:
            assert pair == ("", "")
            outcomes["timeout"] += 1
        else:
            outcomes[pair] += 1
        # The stored pair is exactly the choice made: image 1 chosen -> (1, 0), image 2 -> (0, 1).
        choice = sent[(first["external_id"], trial)]
        assert pair == {1: ("1", "0"), 2: ("0", "1"), 0: ("0", "0"), None: ("", "")}[choice], (pid, trial, choice)
        assert first["response_ms"] == "640"
    assert outcomes["none"] == 2 and outcomes["timeout"] == 2 and len(by_trial) == 16
    assert (outcomes[("1", "0")], outcomes[("0", "1")]) == (6, 6)


def test_pairwise_subsets_spread_every_item_over_participants(import_source, tmp_path):
    """7 of the 12 (item, method pair) comparisons per participant: over 12 consecutive
    participants each comparison is shown exactly 7 times; the server numbers participants."""
    from stylestudy.engine.study.manifest import StudyManifest
    from stylestudy.evalserver.schedule import seed_for, trial_plan

    run = import_run(import_source, tmp_path / "run", "pairwise", pairs_per_participant=7)
    manifest = StudyManifest.load(run)
    shown = Counter(e["pair_id"] for o in range(12) for e in trial_plan(manifest, 1000 + o, ordinal=o))
    assert len(shown) == 12 and set(shown.values()) == {7}
    app = create_app(run, admin_token=TOKEN)
    for pid in ("first", "second"):
        _join(app.test_client(), pid)
    assert _plan(app, "second") == trial_plan(manifest, seed_for("second"), ordinal=1)
    assert {e["pair_id"] for e in _plan(app, "first")} != {e["pair_id"] for e in _plan(app, "second")}


def test_pairwise_without_no_preference_refuses_it(import_source, tmp_path):
    app = create_app(import_run(import_source, tmp_path / "run", "pairwise"), admin_token=TOKEN)
    c = app.test_client()
    _join(c, "strict")
    s = _state(c)
    r = c.post(f"/api/trials/{s['trial']}", json={"choice": 0, "shown_ms": [250, 250]})
    assert r.status_code == 400 and "choice must be one of 1, 2 or null" in r.get_json()["error"]
    page = c.get("/trial").get_data(as_text=True)
    assert 'aria-label="Preferred image"' in page and "No preference" not in page


def test_paired_with_three_methods_pairs_the_reference_with_each(import_source, tmp_path, db_url):
    run = import_run(import_source, tmp_path / "run", "paired", reference_method="photo")
    app = create_app(run, db_url, admin_token=TOKEN)
    c = app.test_client()
    _join(c, "ref")
    plan = _plan(app, "ref")
    assert len(plan) == 4 * 2
    assert sorted(e["pair_id"] for e in plan) == sorted(f"{i}:photo|{m}" for i in IMPORT_ITEMS for m in ("adain", "ours"))
    while not (s := _state(c))["done"]:
        assert c.post(f"/api/trials/{s['trial']}", json={"ratings": [4, 2], "shown_ms": [250, 250]}).status_code == 200
    rows = _export(app)
    photo = Counter(r["condition_id"] for r in rows if r["method"] == "photo")
    assert len(rows) == 16 and set(photo.values()) == {2}  # the reference is rated once per comparison


@pytest.mark.parametrize("kind", ["acr", "pairwise", "paired"])
def test_participants_never_see_method_item_or_condition_names(import_source, tmp_path, kind):
    run = import_run(import_source, tmp_path / "run", kind, attention_checks=1, repeats=1 if kind == "acr" else 0)
    app = create_app(run, admin_token=TOKEN)
    c = app.test_client()
    seen = [c.get("/?PROLIFIC_PID=blind").get_data(as_text=True)]
    r = c.post("/start", data={"consent": "yes", "PROLIFIC_PID": "blind"})
    seen += [r.headers["Location"], c.get("/briefing").get_data(as_text=True)]
    c.post("/briefing")
    seen.append(c.get("/trial").get_data(as_text=True))
    while not (s := _state(c))["done"]:
        seen.append(json.dumps(s))
        for url in s["images"]:
            image = c.get(url)
            assert image.status_code == 200 and image.mimetype == "image/png"
            seen += [url, str(image.headers)]
        body = {"choice": 1} if kind == "pairwise" else {"ratings": [3] * len(s["images"])}
        reply = c.post(f"/api/trials/{s['trial']}", json=dict(body, shown_ms=[250] * len(s["images"])))
        seen.append(reply.get_data(as_text=True))
    seen.append(c.get("/done").get_data(as_text=True))
    text = "\n".join(seen).lower()
    for word in (*IMPORT_METHODS, *IMPORT_ITEMS, "stimuli/", ".png\"", "import"):
        assert not re.search(rf"\b{re.escape(word)}\b", text.replace("image/png", "")), word


def test_import_serve_export_analyze_ranks_the_methods(import_source, tmp_path):
    """The whole path a user takes, through the CLI and a real server process: simulated
    participants prefer ours > adain > photo; the analysis ranks them so, with CIs."""
    from stylestudy.cli import main
    from stylestudy.evalserver.client import StudyClient

    run = tmp_path / "run"
    assert main(["import", str(import_source), "--out", str(run), "--protocol", "pairwise"]) == 0
    quality = {m: q for m, q in zip(("photo", "adain", "ours"), (0, 1, 2))}
    from stylestudy.engine.study.manifest import StudyManifest

    manifest = StudyManifest.load(run)
    with LiveServer(run) as server:
        for i in range(6):
            client = StudyClient(server.url, f"sim-{i}")
            client.join()
            trials = {}

            def choose(state, trial, client=client, trials=trials):
                # the server does not say which image is which: look it up as the researcher would
                return 1 + int(trials[trial][1] > trials[trial][0])

            from stylestudy.evalserver.app import default_db_url
            from stylestudy.evalserver.db import Participant, make_engine, make_sessionmaker

            with make_sessionmaker(make_engine(default_db_url(run)))() as session:
                plan = session.query(Participant).filter_by(external_id=f"sim-{i}").one().order
            for t, entry in enumerate(plan, start=1):
                trials[t] = [quality[manifest.by_id[cid].method] for cid in entry["conditions"]]
            client.take(choose)
    assert main(["export", str(run), "--out", str(tmp_path / "ratings.csv")]) == 0
    # the simulated participants answer at once (5 s images): every answer is too_fast, which analyze
    # leaves out by default; these flags keep them
    assert main(["analyze", str(run), "--out", str(tmp_path / "report"), "--bootstrap", "200",
                 "--exclude-flags", "timeout,short_display"]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["protocol"] == "pairwise" and summary["comparisons"] == 6 * 12
    assert [r["method"] for r in summary["ranking"]] == ["ours", "adain", "photo"]
    top = summary["ranking"][0]
    assert top["ci_low"] <= top["bt_score"] <= top["ci_high"] and top["win_rate"] == 1.0
    html = (tmp_path / "report" / "report.html").read_text()
    pngs = sorted(p.stem for p in (tmp_path / "report").glob("*.png"))
    assert "Bradley–Terry" in html and html.count("data:image/png;base64") == len(pngs) >= 3  # scores, matrix, flow
    assert all(f'alt="{stem}"' in html for stem in pngs) and "flow" in pngs
    assert summary["participants_with_circular_triads"] == 0
    # scripted participants (evalserver.client) are named as simulated: title and first line, from the run
    # directory and from its export alike
    assert summary["synthetic"] and summary["simulated"].startswith("all 6 participants are stylestudy's scripted")
    lines = (tmp_path / "report" / "report.md").read_text().splitlines()
    assert lines[0].endswith("(SYNTHETIC DATA)") and lines[2].startswith("Simulated ratings: all 6 participants")
    assert main(["analyze", str(tmp_path / "ratings.csv"), "--out", str(tmp_path / "from_csv"), "--bootstrap", "100",
                 "--exclude-flags", "timeout,short_display"]) == 0
    lines = (tmp_path / "from_csv" / "report.md").read_text().splitlines()
    assert lines[0].endswith("(SYNTHETIC DATA)") and lines[2].startswith("Simulated ratings: all 6 participants")


def test_people_and_scripted_participants_are_told_apart():
    """The simulated line by hand: people only say nothing; some scripted clients among people are
    named without calling the whole study simulated; a `simulate` file is simulated throughout."""
    import pandas as pd

    from stylestudy.analysis.sources.ratings import _simulated
    from stylestudy.evalserver.client import SIMULATED_USER_AGENT

    chrome = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
    people = pd.DataFrame({"participant_id": ["a", "a", "b"], "user_agent": [chrome, chrome, chrome]})
    assert _simulated(people) == (False, "")
    mixed = people.assign(user_agent=[chrome, chrome, f"{SIMULATED_USER_AGENT} (python-requests/2)"])
    assert _simulated(mixed) == (False, "1 of 2 participants are stylestudy's scripted clients (simulated raters, "
                                        "not people)")
    assert _simulated(mixed.assign(user_agent=SIMULATED_USER_AGENT))[0] is True
    assert _simulated(people.assign(synthetic=1))[0] is True


def test_pairwise_subsets_smaller_than_the_method_pairs_reach_every_pair(tmp_path):
    """10 methods (45 pairs), 5 comparisons per participant: 9 participants see every pair once (a
    rotation by one pair per participant had shown only 13 pairs, and at 50 methods x 200
    participants x 50 comparisons 249 of 1225)."""
    from stylestudy.engine.study.manifest import StudyManifest
    from stylestudy.evalserver.schedule import trial_plan
    from tests.benchmarks.analysis_scale import make_run

    manifest = StudyManifest.load(make_run(tmp_path, "pairwise", 10, 2, 5))
    shown = Counter(e["pair_id"].rsplit(":", 1)[1] for o in range(9) for e in trial_plan(manifest, 7 + o, ordinal=o))
    assert len(shown) == 45 and set(shown.values()) == {1}
