"""A busy or unreachable database: JSON 503 with Retry-After, nothing half-stored, and the
rating stored exactly once after recovery (Flask client on both databases; a real browser that
refreshes during the outage)."""

from __future__ import annotations

import contextlib
import csv
import re
import sqlite3
import subprocess
import sys

import pytest

from stylestudy.evalserver.app import create_app
from tests.conftest import LiveServer, stylestudy_without

GOOD = {"ratings": [4, 2], "shown_ms": [250.0, 250.0], "response_ms": [500.0, 700.0]}


@contextlib.contextmanager
def database_down(run_dir, db_url, postgres=None):
    """SQLite: another process holds the write lock. PostgreSQL: the server is stopped."""
    if db_url is None:
        con = sqlite3.connect(run_dir / "ratings.sqlite", isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            con.execute("ROLLBACK")
            con.close()
    else:
        postgres.stop()
        try:
            yield
        finally:
            postgres.start()


def test_busy_database_answers_503_and_stores_once_after(run_copy, db_url, request):
    postgres = request.getfixturevalue("postgres") if db_url else None
    app = create_app(run_copy, db_url, admin_token="t", db_timeout=0.3)
    c = app.test_client()
    c.post("/start", data={"consent": "yes", "PROLIFIC_PID": "patient"})
    c.post("/briefing")
    assert c.get("/api/state").get_json()["trial"] == 1
    with database_down(run_copy, db_url, postgres):
        r = c.post("/api/trials/1", json=GOOD)
        assert r.status_code == 503 and r.headers["Retry-After"] == "2" and "retry" in r.get_json()["error"]
        page = c.post("/briefing")  # an HTML page that writes: the same 503, as a page
        assert page.status_code == 503 and "nothing is lost" in page.data.decode()
        assert page.headers["Retry-After"] == "2"
    first = c.post("/api/trials/1", json=GOOD).get_json()
    again = c.post("/api/trials/1", json=dict(GOOD, ratings=[1, 1])).get_json()
    assert first["duplicate"] is False and again["duplicate"] is True and first["next_trial"] == 2
    rows = list(csv.DictReader(c.get("/admin/export.csv", headers={"Authorization": "Bearer t"}).data.decode()
                               .splitlines()))
    assert [(r["trial"], r["rating"]) for r in rows] == [("1", "4"), ("1", "2")]


def test_a_missing_database_driver_is_one_line(run_copy):
    blocked = stylestudy_without("psycopg", "psycopg2")
    out = subprocess.run([sys.executable, "-c", blocked, "export", str(run_copy), "--out", "-", "--db",
                          "postgresql://nobody@127.0.0.1:1/none"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "no database driver for postgresql+psycopg" in out.stderr and "pip install 'stylestudy[postgres]'" in out.stderr
    unreachable = subprocess.run([sys.executable, "-m", "stylestudy", "export", str(run_copy), "--out", "-", "--db",
                                  "postgresql://nobody@127.0.0.1:1/none"], capture_output=True, text=True, timeout=60)
    assert unreachable.returncode == 2 and "cannot open the database" in unreachable.stderr
    assert unreachable.stderr.count("\n") == 1


@pytest.mark.slow
def test_browser_keeps_its_ratings_through_an_outage_and_a_refresh(run_copy, chromium):
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_FLAGS
    from tests.test_browser import AT_TRIAL, _start

    with LiveServer(run_copy, env={"STYLESTUDY_DB_TIMEOUT": "0.3"}) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = _start(browser, server.url + "/?PROLIFIC_PID=outage")
            page.wait_for_function(AT_TRIAL, arg=1, timeout=10_000)
            page.get_by_role("radiogroup", name="Image 1").wait_for(state="visible", timeout=10_000)
            with database_down(run_copy, None):
                page.keyboard.press("5")
                page.keyboard.press("1")
                page.wait_for_function("() => document.querySelector('#progress').textContent.includes('busy')",
                                       timeout=10_000)
                assert page.evaluate("sessionStorage.getItem('stylestudy-pending')") is not None
                page.reload()  # the participant refreshes while the server cannot store anything
                page.wait_for_function("() => document.querySelector('#progress').textContent.includes('busy')",
                                       timeout=10_000)
            page.wait_for_function(AT_TRIAL, arg=2, timeout=20_000)
            assert page.evaluate("sessionStorage.getItem('stylestudy-pending')") is None
        finally:
            browser.close()
        import requests

        text = requests.get(server.url + "/admin/export.csv", headers={"Authorization": "Bearer live-admin-token-0123456789"},
                            timeout=10).text
    rows = list(csv.DictReader(text.splitlines()))
    assert [(r["trial"], r["position"], r["rating"]) for r in rows] == [("1", "1", "5"), ("1", "2", "1")]
    assert not re.search(r"restarted", rows[0]["flags"])  # the trial was not served again: the answer went first
