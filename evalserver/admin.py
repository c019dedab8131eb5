"""Admin pages: progress, per-trial flags, open/close, CSV export.  Nothing without the token.

The token (``Authorization: Bearer TOKEN``, or ``/admin/login?token=TOKEN`` once per browser
session) is compared in constant time.
"""

from __future__ import annotations

import functools
import hmac

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, select

from evalserver.db import Participant, Rating, get_setting, set_setting
from evalserver.export import export_csv

admin = Blueprint("admin", __name__, url_prefix="/admin")


def _token_ok(candidate: str | None) -> bool:
    expected = current_app.config["ADMIN_TOKEN"]
    return bool(candidate) and hmac.compare_digest(candidate.encode(), expected.encode())


def admin_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        bearer = header[7:] if header.startswith("Bearer ") else None
        if not (session.get("admin") == current_app.config["ADMIN_TOKEN"][:8] or _token_ok(bearer)):
            abort(401)
        return view(*args, **kwargs)

    return wrapped


@admin.get("/login")
def login():
    if not _token_ok(request.args.get("token")):
        abort(401)
    session["admin"] = current_app.config["ADMIN_TOKEN"][:8]
    return redirect(url_for("admin.index"))


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
                           is_open=get_setting(g.db, "study_open", "1") == "1", wanted=manifest.protocol.participants)


@admin.post("/state")
@admin_required
def set_state():
    set_setting(g.db, "study_open", "1" if request.form.get("open") == "1" else "0")
    g.db.commit()
    return redirect(url_for("admin.index"))


@admin.get("/export.csv")
@admin_required
def export():
    return Response(export_csv(g.db), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=ratings.csv"})
