"""Flask application factory for the rating study.

``create_app(run_dir)`` reads the run's manifest, opens the study database and registers the
participant and admin blueprints.  The secrets every worker must share (admin token, session
key, image-URL key) come from the environment or from files created once in the run directory
(``evalserver.keys``), so any number of gunicorn workers agree on them.

Behind a reverse proxy that terminates TLS, set ``STYLESTUDY_PROXIES`` to the number of proxies
in front (usually 1): ``X-Forwarded-Proto/-Host/-For`` are then trusted (werkzeug's ProxyFix),
and cookies are marked ``Secure`` whenever the request came in over HTTPS.

A database that is locked or unreachable answers 503 with ``Retry-After`` (JSON for the API),
never an HTML 500: nothing is half-stored (the transaction rolls back) and the page retries.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.evalserver import adaptive_store  # noqa: F401 - its tables are made with the database's
from stylestudy.evalserver.db import database_url, default_db_url, make_engine, make_sessionmaker  # noqa: F401 - importable here as before
from stylestudy.evalserver.i18n import default_text, init_i18n
from stylestudy.evalserver.keys import server_keys
from stylestudy.evalserver.schedule import trial_plan
from stylestudy.evalserver.validate import checked_manifest, private_sqlite_file

MAX_BODY_BYTES = 16 * 1024  # a submission is a few hundred bytes
# record when a trial's images were fetched (``/api/state`` reads, and opens a writing session
# itself only when it serves a trial: a repeated request writes nothing)
WRITING_GET_ENDPOINTS = {"participant.stimulus"}
RETRY_AFTER_SECONDS = 2
DEFAULT_JOIN_LIMIT = "60/600"  # new participants per address (a lab or a campus may share one) per 10 minutes
# every page: only this server's scripts, styles, images and forms (no inline script), in no frame
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def join_limit(text: str) -> tuple[int, float] | None:
    """``STYLESTUDY_JOIN_LIMIT`` = ``JOINS/SECONDS``: at most that many new participants from one
    address in any such window (default ``60/600``); ``0`` turns the limit off."""
    text = text.strip() or DEFAULT_JOIN_LIMIT
    if text == "0":
        return None
    joins, _, seconds = text.partition("/")
    if not (joins.isdigit() and int(joins) > 0 and seconds.isdigit() and int(seconds) > 0):
        raise StyleStudyError(f"STYLESTUDY_JOIN_LIMIT must be JOINS/SECONDS (e.g. {DEFAULT_JOIN_LIMIT}) or 0 "
                              f"(no limit), got {text!r}")
    return int(joins), float(seconds)


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """Signed cookies, marked Secure when the request itself came over HTTPS (ProxyFix-aware)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def create_app(run_dir: str | Path, db_url: str | None = None, admin_token: str | None = None,
               overrides: dict | None = None, db_timeout: float | None = None, proxies: int | None = None,
               allow_incomplete: bool | None = None) -> Flask:
    """``allow_incomplete``: serve a run whose generation did not finish (default:
    ``STYLESTUDY_ALLOW_INCOMPLETE=1``, else refused); see ``evalserver.validate``."""
    if allow_incomplete is None:
        allow_incomplete = os.environ.get("STYLESTUDY_ALLOW_INCOMPLETE", "") == "1"
    manifest = checked_manifest(run_dir, allow_incomplete)
    trials = len(trial_plan(manifest, 0))  # every participant gets as many (only the order differs)
    if not trials:
        raise StyleStudyError(f"{manifest.source} has nothing to rate with the {manifest.protocol.kind} protocol "
                              "(paired needs cells with two methods or the reference; pairwise two methods); "
                              "finish generation or check the import")
    keys = server_keys(manifest.run_dir, admin_token)
    app = Flask(__name__)
    if db_timeout is None:  # seconds a request waits for a lock or a connection before answering 503
        db_timeout = float(os.environ.get("STYLESTUDY_DB_TIMEOUT", "") or 30.0)
    url = database_url(run_dir, db_url)
    private_sqlite_file(url)  # ratings (and external ids) readable by the server's account only
    engine = make_engine(url, timeout=db_timeout, writer=True)
    reader = make_engine(url, timeout=db_timeout) if engine.dialect.name == "sqlite" else engine
    Session = make_sessionmaker(engine)
    ReadSession = make_sessionmaker(reader, will_write=False)
    app.session_interface = HttpsAwareSessionInterface()
    app.config.update(
        SECRET_KEY=keys.session_key,
        URL_KEY=keys.url_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        ADMIN_TOKEN=keys.admin_token,
        ADMIN_TOKEN_SOURCE=keys.admin_token_source,
        MANIFEST=manifest,
        TRIALS_PER_PARTICIPANT=trials,
        DB_ENGINE=engine,
        DB_SESSIONMAKER=Session,
    )
    app.config["JOIN_LIMIT"] = join_limit(os.environ.get("STYLESTUDY_JOIN_LIMIT", ""))
    if overrides:
        app.config.update(overrides)
    if proxies is None:
        text = os.environ.get("STYLESTUDY_PROXIES", "").strip() or "0"
        if not text.isdigit():
            raise StyleStudyError(f"STYLESTUDY_PROXIES must be the number of proxies in front (0, 1, 2...), got {text!r}")
        proxies = int(text)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    @app.before_request
    def _open_session() -> None:
        writes = request.method == "POST" or request.endpoint in WRITING_GET_ENDPOINTS
        g.db = Session() if writes else ReadSession()

    @app.teardown_request
    def _close_session(_exc) -> None:  # noqa: ANN001
        db = g.pop("db", None)
        if db is not None:
            db.close()  # rolls back whatever did not commit

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _database_busy(exc):  # noqa: ANN001
        """Locked, overloaded or unreachable database: try again shortly; nothing was stored."""
        db = g.get("db")
        if db is not None:
            db.rollback()
        app.logger.warning("database unavailable: %s", str(exc).splitlines()[0][:200])
        if request.path.startswith(("/api/", "/admin/export")) or request.is_json:
            response = jsonify(error="the study database is busy; your answer was not stored yet - retrying",
                               retry_after=RETRY_AFTER_SECONDS)
        else:
            response = app.make_response(render_template(
                "message.html", title=default_text(manifest.protocol.title), heading=gettext("One moment, please"),
                message=gettext("The study is busy. Please wait a few seconds and reload this page; nothing is lost.")))
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(DBAPIError)
    def _database_error(exc):  # noqa: ANN001 - a DBAPIError that is not operational is a bug: log it, say 500 in JSON
        db = g.get("db")
        if db is not None:
            db.rollback()
        app.logger.exception("database error")
        return jsonify(error="internal database error; nothing was stored"), 500

    @app.after_request
    def _headers(response):  # noqa: ANN001
        response.headers.setdefault("X-Frame-Options", "DENY")  # no page of the study inside another site's frame
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    init_i18n(app, manifest.protocol.language)
    from stylestudy.evalserver.admin import admin
    from stylestudy.evalserver.participant import participant_pages

    app.register_blueprint(participant_pages)
    app.register_blueprint(admin)
    return app
