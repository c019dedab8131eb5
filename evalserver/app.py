"""Flask application factory for the rating study.

``create_app(run_dir)`` reads the run's manifest, opens the study database and registers the
participant and admin blueprints.  The admin token comes from ``STYLESTUDY_ADMIN_TOKEN`` or is
generated (``app.config["ADMIN_TOKEN"]``, printed by ``stylestudy serve``).  The session secret
is kept in the database, so sessions survive a restart.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, g, request

from evalserver.db import make_engine, make_sessionmaker, setting_once
from engine.manifest import StudyManifest

MAX_BODY_BYTES = 16 * 1024  # a submission is a few hundred bytes
WRITING_GET_ENDPOINTS = {"participant.api_state"}  # records when the current trial was served


def default_db_url(run_dir: str | Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'ratings.sqlite'}"


def create_app(run_dir: str | Path, db_url: str | None = None, admin_token: str | None = None,
               overrides: dict | None = None) -> Flask:
    manifest = StudyManifest.load(run_dir, check_files=True)
    if not manifest.pairs:
        from engine.errors import StyleStudyError

        raise StyleStudyError(f"{manifest.source} has no complete pairs of conditions to rate; finish generation first")
    app = Flask(__name__)
    engine = make_engine(db_url or os.environ.get("STYLESTUDY_DB") or default_db_url(run_dir))
    Session = make_sessionmaker(engine)
    ReadSession = make_sessionmaker(engine, will_write=False)
    secret = setting_once(Session, "secret_key", lambda: secrets.token_hex(32))
    app.config.update(
        SECRET_KEY=os.environ.get("STYLESTUDY_SECRET_KEY") or secret,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        ADMIN_TOKEN=admin_token or os.environ.get("STYLESTUDY_ADMIN_TOKEN") or secrets.token_urlsafe(24),
        MANIFEST=manifest,
        DB_ENGINE=engine,
        DB_SESSIONMAKER=Session,
    )
    if overrides:
        app.config.update(overrides)

    @app.before_request
    def _open_session() -> None:
        writes = request.method == "POST" or request.endpoint in WRITING_GET_ENDPOINTS
        g.db = Session() if writes else ReadSession()

    @app.teardown_request
    def _close_session(_exc) -> None:  # noqa: ANN001
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.after_request
    def _headers(response):  # noqa: ANN001
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    from evalserver.admin import admin
    from evalserver.participant import participant

    app.register_blueprint(participant)
    app.register_blueprint(admin)
    return app
