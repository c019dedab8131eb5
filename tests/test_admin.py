"""Admin authentication done properly: shared secrets across gunicorn workers, login by POST, a
cookie that holds no part of the token, CSRF on state changes, Secure cookies behind HTTPS."""

from __future__ import annotations

import base64
import os
import re
import stat
import zlib

import pytest
import requests

from stylestudy.evalserver.app import create_app
from tests.conftest import LiveServer

TOKEN = "an-admin-token-of-some-length-0123456789"


def _cookie_payload(raw: str) -> str:
    """What a Flask session cookie says (it is signed, not encrypted)."""
    compressed = raw.startswith(".")
    data = raw.lstrip(".").split(".")[0]
    payload = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return (zlib.decompress(payload) if compressed else payload).decode()


def _login(client, token=TOKEN):
    return client.post("/admin/login", data={"token": token})


def test_cookie_holds_no_part_of_the_token_and_logout_ends_the_session(run_copy):
    app = create_app(run_copy, admin_token=TOKEN)
    c = app.test_client()
    assert _login(c).status_code == 302
    raw = c.get_cookie("session").value
    payload = _cookie_payload(raw)
    assert "admin_session" in payload
    for text in (raw, payload):  # no 6 consecutive characters of the token anywhere
        assert not any(TOKEN[i:i + 6] in text for i in range(len(TOKEN) - 5))
    page = c.get("/admin/").data.decode()
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page).group(1)
    assert c.post("/admin/logout", data={}).status_code == 403  # logging out is a state change too
    assert c.post("/admin/logout", data={"csrf_token": csrf}).status_code == 302
    assert c.get("/admin/").status_code == 401
    # The old cookie, replayed after logout, no longer works: the session lived on the server.
    replay = app.test_client()
    replay.set_cookie("session", raw)
    assert replay.get("/admin/").status_code == 401


def test_token_never_in_a_url_and_scripts_use_the_header(run_copy):
    app = create_app(run_copy, admin_token=TOKEN)
    c = app.test_client()
    r = c.get(f"/admin/login?token={TOKEN}")  # the old way: shows the form, logs nobody in
    assert r.status_code == 200 and 'type="password"' in r.data.decode() and TOKEN not in r.data.decode()
    assert c.get("/admin/").status_code == 401
    assert _login(c, "wrong").status_code == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert c.get("/admin/export.csv", headers=bearer).status_code == 200
    # A header cannot be forged by another site's form: Bearer requests need no CSRF token.
    assert c.post("/admin/state", data={"open": "0"}, headers=bearer).status_code == 302


def test_cookies_are_secure_behind_https(run_copy):
    app = create_app(run_copy, admin_token=TOKEN, proxies=1)
    c = app.test_client()
    plain = _login(c)
    assert "Secure" not in plain.headers["Set-Cookie"] and "HttpOnly" in plain.headers["Set-Cookie"]
    https = app.test_client().post("/admin/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"})
    cookie = https.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    participant = app.test_client().post("/start", data={"consent": "yes"}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in participant.headers["Set-Cookie"]
    # Without a trusted proxy, a forged header does not make a plain request "secure".
    direct = create_app(run_copy, admin_token=TOKEN).test_client()
    forged = direct.post("/admin/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in forged.headers["Set-Cookie"]


@pytest.mark.slow
def test_gunicorn_workers_share_one_token_from_the_run_directory(run_copy):
    """Four workers, no token in the environment: the token file is created once (0600), every
    worker accepts it, and a browser session made on one worker works on all of them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLESTUDY_")}
    server = LiveServer(run_copy, gunicorn_workers=4)
    server.env = env
    with server:
        token_file = run_copy / "admin_token"
        token = token_file.read_text().strip()
        assert len(token) >= 32 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        for name in (".session_key", ".url_key"):
            assert stat.S_IMODE((run_copy / name).stat().st_mode) == 0o600
        browser = requests.Session()
        assert browser.post(server.url + "/admin/login", data={"token": token}, allow_redirects=False).status_code == 302
        # Many requests, fresh connections: gunicorn spreads them over its workers.
        statuses = [requests.get(server.url + "/admin/", cookies=browser.cookies, timeout=10).status_code
                    for _ in range(24)]
        assert statuses == [200] * 24
        bearer = [requests.get(server.url + "/admin/export.csv", headers={"Authorization": f"Bearer {token}"},
                               timeout=10).status_code for _ in range(12)]
        assert bearer == [200] * 12
        pids = {requests.get(server.url + "/admin/status.json", cookies=browser.cookies, timeout=10).json()["worker_pid"]
                for _ in range(40)}
        assert len(pids) > 1, "all requests went to one worker; the test proves nothing"
