"""The study database: SQLAlchemy models and the engine set-up.

SQLite (WAL, synchronous=FULL) in the run directory by default, or PostgreSQL
(``postgresql://user@host/db``, driven by psycopg 3: ``pip install 'stylestudy[postgres]'``); the
suite runs the server, the concurrency and the kill -9 tests against both.  Uniqueness constraints, not application checks alone, guarantee that a
participant rates each shown image of a trial at most once, and each condition at most once per
comparison (``pair_id``: in the paper's design the cell, so each condition once; attention
checks and hidden repeats have their own), even under concurrent duplicate requests.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from stylestudy.engine.study.errors import StyleStudyError


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, index=True)  # in the signed session cookie
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)  # PROLIFIC_PID or pid
    id_source: Mapped[str | None] = mapped_column(String(32), nullable=True)
    external_study_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    external_session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    seed: Mapped[int] = mapped_column(Integer)
    order: Mapped[list] = mapped_column(JSON)  # trial plan: [{"pair_id", "conditions": [first, second], ...}]
    current_trial: Mapped[int] = mapped_column(Integer, default=1)  # 1-based; > len(order) when done
    served_count: Mapped[int] = mapped_column(Integer, default=0)  # times the current trial was served
    served_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    consented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    briefing_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    # viewing (evalserver.viewing): what the browser reported, CSS px "WxH"; why a gate refused
    viewport: Mapped[str | None] = mapped_column(String(32), nullable=True)
    screen: Mapped[str | None] = mapped_column(String(32), nullable=True)
    pointer: Mapped[str | None] = mapped_column(String(16), nullable=True)
    screened_out: Mapped[str | None] = mapped_column(String(64), nullable=True)  # mobile | screen_too_small
    screened_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the admin left this participant's answers out of the live adaptive state (export: flag "excluded")
    excluded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    ratings: Mapped[list["Rating"]] = relationship(back_populates="participant", order_by="Rating.trial")


RATING_INDEX = "one_rating_per_comparison"
OLD_RATING_INDEX = "one_rating_per_condition"  # (participant, condition) where not attention: before protocols


class Rating(Base):
    """One rated (or missed) image of one trial: the condition it showed, and that condition's image."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("participant_id", "trial", "position", name="one_rating_per_image"),
        Index(RATING_INDEX, "participant_id", "pair_id", "condition_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    trial: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # 1 = shown first, 2 = shown second
    pair_id: Mapped[str] = mapped_column(String(128))  # what the trial compared (see evalserver.schedule)
    condition_id: Mapped[str] = mapped_column(String(160))
    image_id: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))
    block: Mapped[str] = mapped_column(String(32))
    row: Mapped[int] = mapped_column(Integer)
    row_label: Mapped[str] = mapped_column(String(64), default="")
    column: Mapped[int] = mapped_column(Integer)
    column_label: Mapped[str] = mapped_column(String(64), default="")
    # paired/acr: the rating 1..k; pairwise: 1 = this image was preferred, 0 = the other one (both 0
    # with flag no_preference); NULL = no answer in time (flag timeout)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    shown_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    flags: Mapped[str] = mapped_column(String(200), default="")
    attention: Mapped[bool] = mapped_column(Boolean, default=False)
    served_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # viewing: the size the image was rendered at (CSS px), the device pixel ratio, its own size (px)
    shown_width: Mapped[float | None] = mapped_column(Float, nullable=True)
    shown_height: Mapped[float | None] = mapped_column(Float, nullable=True)
    device_pixel_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    image_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_height: Mapped[int | None] = mapped_column(Integer, nullable=True)

    participant: Mapped[Participant] = relationship(back_populates="ratings")


class ImageFetch(Base):
    """When a trial's image (or reference) URL was last handed out: once per serving of the trial,
    so a page cannot look at a stimulus again after its display (``evalserver.participant``)."""

    __tablename__ = "image_fetches"

    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    place: Mapped[str] = mapped_column(String(64), primary_key=True)  # "trial:N:P" or "ref:N:KIND"
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdminSession(Base):
    """A logged-in admin browser: the cookie holds only this random id; CSRF token per session."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(400))


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, timeout: float = 30.0, writer: bool = False) -> Engine:
    """An engine set up for concurrent, durable writes; ``timeout``: seconds to wait for a lock or
    a connection before the request is answered 503 (try again).

    ``writer`` (SQLite): one connection, so a process's write transactions queue for it in
    order instead of polling SQLite's lock with sleeps (its busy handler backs off up to 100 ms
    a try, which turned a burst of joins into seconds).  SQLite has one writer at a time anyway."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    url = normalise_url(url)
    is_sqlite = url.startswith("sqlite")
    try:
        if is_sqlite:
            queue = {"pool_size": 1, "max_overflow": 0, "pool_timeout": timeout} if writer else {}
            engine = create_engine(url, connect_args={"timeout": timeout, "check_same_thread": False}, **queue)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_timeout=timeout, pool_size=8, max_overflow=8,
                                   connect_args={"connect_timeout": max(1, int(timeout))}
                                   if url.startswith("postgresql") else {})
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        hint = "pip install 'stylestudy[postgres]'" if "postgres" in url else "install its SQLAlchemy driver"
        raise StyleStudyError(f"no database driver for {url.split(':', 1)[0]} ({exc}); {hint}") from None
    except ArgumentError as exc:
        raise StyleStudyError(f"not a database URL: {url!r} ({exc}); e.g. postgresql://user@host/dbname") from None
    if is_sqlite:
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # noqa: ANN001
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a committed rating survives power loss / kill -9
            cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):  # noqa: ANN001
            # A transaction that will write takes the write lock at its start: a WAL reader
            # cannot later upgrade a stale snapshot to a writer (SQLITE_BUSY_SNAPSHOT), so it
            # would fail instead of waiting.  Read-only transactions never block anyone.
            write = connection.get_execution_options().get("will_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
    # One process at a time (gunicorn workers start together): the write lock serialises this on
    # SQLite, an advisory lock on PostgreSQL (concurrent CREATE TABLEs would collide there).
    from sqlalchemy.exc import DatabaseError  # OperationalError (locked, unreachable) or not a database at all

    try:
        with engine.execution_options(will_write=True).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242)")
            Base.metadata.create_all(connection)
            columns = {c["name"] for c in inspect(connection).get_columns("ratings")}
            indexes = {i["name"] for i in inspect(connection).get_indexes("ratings")}
            if "condition_id" in columns:  # (a 0.1 database is refused below, untouched)
                _add_missing_columns(connection)
            if "condition_id" in columns and RATING_INDEX not in indexes:  # made before the protocols
                if OLD_RATING_INDEX in indexes:
                    connection.exec_driver_sql(f"DROP INDEX {OLD_RATING_INDEX}")
                next(i for i in Rating.__table__.indexes if i.name == RATING_INDEX).create(connection)
    except DatabaseError as exc:
        engine.dispose()
        raise StyleStudyError(f"cannot open the database {engine.url.render_as_string(hide_password=True)}: "
                              f"{str(exc.orig).strip().splitlines()[0]}") from None
    if "condition_id" not in columns:
        engine.dispose()
        raise StyleStudyError(f"the ratings database {engine.url.render_as_string(hide_password=True)} was made by "
                              "stylestudy 0.1 (ratings keyed by image, not condition); export it with 0.1 and start "
                              "a new database (move the file away or give --db)")
    return engine


def _add_missing_columns(connection) -> None:  # noqa: ANN001
    """A database made by an earlier stylestudy gains the columns added since (all nullable)."""
    for table in Base.metadata.sorted_tables:
        present = {c["name"] for c in inspect(connection).get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=connection.dialect)
                connection.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


def make_sessionmaker(engine: Engine, will_write: bool = True) -> sessionmaker:
    """Sessions for transactions that write (SQLite: BEGIN IMMEDIATE) or only read."""
    return sessionmaker(engine.execution_options(will_write=will_write), expire_on_commit=False)


def get_setting(session, key: str, default: str) -> str:
    row = session.get(Setting, key)
    return row.value if row else default


def set_setting(session, key: str, value: str) -> None:
    row = session.get(Setting, key)
    if row:
        row.value = value
    else:
        session.add(Setting(key=key, value=value))


class FlowEvent(Base):
    """A step of the participant flow that leaves no participant row (``evalserver.flow_log``):
    a browser arrived at the welcome page, did not consent, was refused or screened out (reason)."""

    __tablename__ = "flow_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)  # arrivals are stored in batches


def default_db_url(run_dir: str | Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'ratings.sqlite'}"


def database_url(run_dir: str | Path, db_url: str | None = None, must_exist: bool = False) -> str:
    """The study database: the URL given, else ``STYLESTUDY_DB``, else SQLite in the run directory.
    ``must_exist``: for readers (export, analyze), a SQLite file that is not there is an error,
    not a new empty database."""
    url = db_url or os.environ.get("STYLESTUDY_DB") or default_db_url(run_dir)
    if must_exist and url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise StyleStudyError(f"no ratings database at {url[len('sqlite:///'):]}; run 'stylestudy serve' first, "
                              "give --db URL, or (analyze) an exported CSV")
    return url
