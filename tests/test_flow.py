"""The participant flow (issue 20): arrived -> consented -> refused (by reason) -> started ->
completed -> excluded -> analysed, live on the admin page and in ``stylestudy analyze``'s report;
SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from stylestudy.evalserver.app import create_app
from tests.conftest import pace

TOKEN = "admin-secret-token"
GOOD = {"ratings": [4, 2], "shown_ms": [250.0, 251.0], "response_ms": [900.0, 1300.0], "blur": False}
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def app(run_copy, db_url):
    return create_app(run_copy, db_url, admin_token=TOKEN)


def _arrive_and_start(app, pid, brief=True, trials=0):
    c = app.test_client()
    assert c.get(f"/?PROLIFIC_PID={pid}").status_code == 200
    assert c.post("/start", data={"consent": "yes", "PROLIFIC_PID": pid}).status_code == 302
    if brief:
        c.post("/briefing")
    for _ in range(trials):
        s = c.get("/api/state").get_json()
        pace(app, pid)  # not too_fast: analyze leaves those out
        assert c.post(f"/api/trials/{s['trial']}", json=GOOD).status_code == 200
    return c


def _visit(app):
    flow = {}
    for pid in ("full-a", "full-b", "full-c"):
        _arrive_and_start(app, pid, trials=4)
    partial = _arrive_and_start(app, "part-d", trials=1)
    partial.get("/")  # a second view by the same browser is not a second arrival
    _arrive_and_start(app, "brief-e", brief=False)
    declined = app.test_client()
    declined.get("/")
    assert declined.post("/start", data={}).status_code == 400  # no consent
    bad = app.test_client()
    bad.get("/")
    assert bad.post("/start", data={"consent": "yes", "PROLIFIC_PID": "a b"}).status_code == 400
    admin = app.test_client()
    admin.post("/admin/state", data={"open": "0"}, headers=ADMIN)
    late = app.test_client()
    late.get("/")
    assert late.post("/start", data={"consent": "yes"}).status_code == 403
    admin.post("/admin/state", data={"open": "1"}, headers=ADMIN)
    app.test_client().get("/admin/status.json", headers=ADMIN)
    return flow


EXPECTED = {"arrived": 8, "no_consent": 1, "consented": 7, "refused": {"invalid_id": 1, "study_closed": 1},
            "screened_out": {}, "started": 4, "completed": 3}


def test_the_admin_page_shows_the_flow_live(app):
    _visit(app)
    status = app.test_client().get("/admin/status.json", headers=ADMIN).get_json()
    assert status["flow"] == EXPECTED
    page = app.test_client().get("/admin/", headers=ADMIN).data.decode()
    table = re.search(r'<table id="flow">(.*?)</table>', page, re.S).group(1)
    cells = dict(re.findall(r"<tr><th>(.*?)</th><td>(\d+)</td></tr>", table))
    assert cells == {"arrived (welcome page)": "8", "did not consent": "1", "consented": "7",
                     "refused: invalid_id": "1", "refused: study_closed": "1", "started the trials": "4",
                     "completed": "3"}


def test_analyze_reports_the_flow_as_a_table_and_a_figure(app, run_copy, db_url, tmp_path):
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze

    _visit(app)
    out = tmp_path / "report"
    summary = analyze(run_copy, AnalyzeOptions(out=out, db_url=db_url, bootstrap=50))
    stages = dict(summary["flow"]["stages"])
    assert stages == {"arrived": 8, "consented": 7, "started": 4, "completed": 3, "rated": 4, "analysed": 4}
    assert summary["flow"]["lost"]["started"] == {"refused: invalid_id": 1, "refused: study_closed": 1}
    assert summary["flow"]["lost"]["consented"] == {"did not consent": 1}
    md = (out / "report.md").read_text()
    assert "## Participant flow" in md and "| arrived | 8 |" in md and "| analysed | 4 |" in md
    page = (out / "report.html").read_text()
    assert "<h2>Participant flow</h2>" in page and 'alt="flow"' in page and (out / "flow.png").stat().st_size > 1000
