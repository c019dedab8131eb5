"""Admin pages: progress, per-trial flags, open/close, CSV export.  Nothing without the token.

Two ways in, both compared in constant time:

* scripts: ``Authorization: Bearer TOKEN`` on each request (no cookie, so no CSRF risk);
* browsers: the login form POSTs the token (never in a URL, so never in a server or proxy log).
  The session cookie then holds only a random admin-session id, looked up in the database with
  its expiry; every state-changing form carries that session's CSRF token.

After ``FREE_FAILURES`` wrong tokens in a row from one address (form or header), that address
waits before its next try (429 with ``Retry-After``: 30 s, doubling per further failure, at most
an hour), so the token cannot be guessed at request speed; counted per worker process.
"""

from __future__ import annotations

import functools
import hmac
import math
import secrets
import time
from datetime import timedelta

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, select

from stylestudy.evalserver import adaptive_store
from stylestudy.evalserver.db import AdminSession, Participant, Rating, get_setting, set_setting, utcnow
from stylestudy.evalserver.export import export_csv
from stylestudy.evalserver.flow_log import flow_counts

admin = Blueprint("admin", __name__, url_prefix="/admin")
SESSION_HOURS = 12
FREE_FAILURES = 5  # wrong tokens from one address before it must wait
BACKOFF_SECONDS = 30.0  # the first wait; it doubles with every further failure, up to an hour


def _token_ok(candidate: str | None) -> bool:
    expected = current_app.config["ADMIN_TOKEN"]
    return bool(candidate) and hmac.compare_digest(candidate.encode(), expected.encode())


def _failures() -> dict[str, tuple[int, float]]:
    """address -> (wrong tokens in a row, monotonic time before which it is refused); per worker."""
    return current_app.extensions.setdefault("stylestudy_admin_failures", {})


def _locked_for() -> float:
    """Seconds this address must still wait before it may try a token again (0: it may)."""
    _, until = _failures().get(request.remote_addr or "", (0, 0.0))
    return max(0.0, until - time.monotonic())


def _checked(candidate: str | None) -> bool:
    """``_token_ok``, counting wrong tokens per address: after ``FREE_FAILURES`` each one more
    doubles the wait (``BACKOFF_SECONDS`` first); the right token clears the count."""
    address = request.remote_addr or ""
    if _token_ok(candidate):
        _failures().pop(address, None)
        return True
    count = _failures().get(address, (0, 0.0))[0] + 1
    wait = min(BACKOFF_SECONDS * 2 ** (count - FREE_FAILURES), 3600.0) if count >= FREE_FAILURES else 0.0
    _failures()[address] = (count, time.monotonic() + wait)
    return False


def _too_many():
    wait = math.ceil(_locked_for())
    response = Response(f"too many wrong admin tokens from this address; try again in {wait} s", status=429,
                        mimetype="text/plain")
    response.headers["Retry-After"] = str(wait)
    return response


def _admin_session() -> AdminSession | None:
    sid = session.get("admin_session")
    if not isinstance(sid, str):
        return None
    row = g.db.get(AdminSession, sid)
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=utcnow().tzinfo)
    return row if expires > utcnow() else None


def admin_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and _locked_for():
            return _too_many()
        if header.startswith("Bearer ") and _checked(header[7:]):
            g.admin_csrf = None  # a header, not a cookie: a cross-site form cannot send it
            return view(*args, **kwargs)
        row = _admin_session()
        if row is None:  # 401, with the login form, so a browser knows where to go
            return render_template("admin_login.html", title="Admin login", failed=False, needed=True), 401
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            if not (sent and hmac.compare_digest(sent.encode(), row.csrf.encode())):
                abort(403)
        g.admin_csrf = row.csrf
        return view(*args, **kwargs)

    return wrapped


@admin.get("/login")
def login_form():
    """The login form.  A token in the query string is ignored: tokens never travel in URLs."""
    return render_template("admin_login.html", title="Admin login", failed=False)


@admin.post("/login")
def login():
    if _locked_for():
        return _too_many()
    if not _checked(request.form.get("token")):
        return render_template("admin_login.html", title="Admin login", failed=True), 401
    row = AdminSession(id=secrets.token_hex(32), csrf=secrets.token_hex(32),
                       expires_at=utcnow() + timedelta(hours=SESSION_HOURS))
    g.db.add(row)
    g.db.commit()
    session.clear()
    session["admin_session"] = row.id
    return redirect(url_for("admin.index"))


@admin.post("/logout")
@admin_required
def logout():
    sid = session.pop("admin_session", None)
    if sid:
        row = g.db.get(AdminSession, sid)
        if row is not None:
            g.db.delete(row)
            g.db.commit()
    return redirect(url_for("admin.login_form"))


def _live_flow() -> dict:
    """The flow counts, after storing this process's pending arrivals."""
    from stylestudy.evalserver.participant import arrivals

    with current_app.config["DB_SESSIONMAKER"]() as writer:
        arrivals().store(writer)
        writer.commit()
        return flow_counts(writer)  # a snapshot that includes them


@admin.get("/")
@admin_required
def index():
    manifest = current_app.config["MANIFEST"]
    participants = g.db.scalars(select(Participant).order_by(Participant.id)).all()
    flag_rows = g.db.execute(select(Rating.participant_id, Rating.trial, Rating.position, Rating.flags, Rating.rating)
                             .where(Rating.flags != "").order_by(Rating.participant_id, Rating.trial)).all()
    flags: dict[int, list] = {}
    for pid, trial, position, f, rating in flag_rows:
        flags.setdefault(pid, []).append({"trial": trial, "position": position, "flags": f, "rating": rating})
    counts = dict(g.db.execute(select(Rating.participant_id, func.count()).group_by(Rating.participant_id)).all())
    return render_template("admin.html", title=manifest.title, participants=participants, flags=flags, counts=counts,
                           is_open=get_setting(g.db, "study_open", "1") == "1", wanted=manifest.protocol.participants,
                           csrf_token=g.admin_csrf, adaptive=_adaptive(manifest),
                           flow=_live_flow())


def _adaptive(manifest) -> dict | None:
    """Adaptive sampling: ranking with 95% intervals, next comparison's expected gain, stop rules."""
    return adaptive_store.status(g.db, manifest) if manifest.protocol.sampling == "adaptive" else None


@admin.post("/state")
@admin_required
def set_state():
    set_setting(g.db, "study_open", "1" if request.form.get("open") == "1" else "0")
    g.db.commit()
    return redirect(url_for("admin.index"))


@admin.post("/participants/<public_id>/exclusion")
@admin_required
def exclusion(public_id: str):
    """Exclude a participant's answers from the live adaptive state (``exclude=1``; the export
    flags their rows ``excluded``) or include them again (``exclude=0``)."""
    p = g.db.scalar(select(Participant).where(Participant.public_id == public_id))
    if p is None:
        abort(404)
    if request.form.get("exclude") == "1" and not p.excluded_at:
        p.excluded_at = utcnow()
        g.db.flush()
        adaptive_store.withdraw(g.db, p.id)
    elif request.form.get("exclude") == "0" and p.excluded_at:
        p.excluded_at = None
        g.db.flush()
        adaptive_store.reinstate(g.db, p.id)
    g.db.commit()
    return redirect(url_for("admin.index"))


@admin.get("/status.json")
@admin_required
def status():
    """For operators and monitors: which worker answered, the database, progress."""
    import os

    participants = g.db.scalar(select(func.count()).select_from(Participant))
    completed = g.db.scalar(select(func.count()).select_from(Participant).where(Participant.completed_at.is_not(None)))
    ratings = g.db.scalar(select(func.count()).select_from(Rating))
    return {"worker_pid": os.getpid(), "database": g.db.get_bind().url.render_as_string(hide_password=True),
            "open": get_setting(g.db, "study_open", "1") == "1", "participants": participants, "completed": completed,
            "ratings": ratings, "adaptive": _adaptive(current_app.config["MANIFEST"]),
            "flow": _live_flow()}


@admin.get("/export.csv")
@admin_required
def export():
    return Response(export_csv(g.db, current_app.config["MANIFEST"].protocol.display), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=ratings.csv"})
