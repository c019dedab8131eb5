"""The study database: SQLAlchemy models and the engine set-up.

SQLite (WAL, synchronous=FULL) in the run directory by default; any SQLAlchemy URL works, e.g.
PostgreSQL, unchanged.  Uniqueness constraints, not application checks alone, guarantee that a
participant rates each shown image of a trial at most once, and each condition of the design at
most once (attention checks, which repeat a condition, aside), even under concurrent duplicate
requests.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint,
                        create_engine, event, inspect, text)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from engine.errors import StyleStudyError


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

    ratings: Mapped[list["Rating"]] = relationship(back_populates="participant", order_by="Rating.trial")


class Rating(Base):
    """One rated (or missed) image of one trial: the condition it showed, and that condition's image."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("participant_id", "trial", "position", name="one_rating_per_image"),
        Index("one_rating_per_condition", "participant_id", "condition_id", unique=True,
              sqlite_where=text("NOT attention"), postgresql_where=text("NOT attention")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    trial: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # 1 = shown first, 2 = shown second
    pair_id: Mapped[str] = mapped_column(String(64))
    condition_id: Mapped[str] = mapped_column(String(128))
    image_id: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))
    block: Mapped[str] = mapped_column(String(32))
    row: Mapped[int] = mapped_column(Integer)
    row_label: Mapped[str] = mapped_column(String(64), default="")
    column: Mapped[int] = mapped_column(Integer)
    column_label: Mapped[str] = mapped_column(String(64), default="")
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    shown_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    flags: Mapped[str] = mapped_column(String(200), default="")
    attention: Mapped[bool] = mapped_column(Boolean, default=False)
    served_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    participant: Mapped[Participant] = relationship(back_populates="ratings")


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(400))


def make_engine(url: str) -> Engine:
    """An engine with SQLite set up for concurrent, durable writes."""
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"timeout": 30} if is_sqlite else {}, pool_pre_ping=not is_sqlite)
    if is_sqlite:
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # noqa: ANN001
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a committed rating survives power loss / kill -9
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):  # noqa: ANN001
            # A transaction that will write takes the write lock at its start: a WAL reader
            # cannot later upgrade a stale snapshot to a writer (SQLITE_BUSY_SNAPSHOT), so it
            # would fail instead of waiting.  Read-only transactions never block anyone.
            write = connection.get_execution_options().get("will_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
    # One process at a time (gunicorn workers start together): the write lock serialises this.
    with engine.execution_options(will_write=True).begin() as connection:
        Base.metadata.create_all(connection)
        columns = {c["name"] for c in inspect(connection).get_columns("ratings")}
    if "condition_id" not in columns:
        engine.dispose()
        raise StyleStudyError(f"the ratings database {engine.url.render_as_string(hide_password=True)} was made by "
                              "stylestudy 0.1 (ratings keyed by image, not condition); export it with 0.1 and start "
                              "a new database (move the file away or give --db)")
    return engine


def make_sessionmaker(engine: Engine, will_write: bool = True) -> sessionmaker:
    """Sessions for transactions that write (SQLite: BEGIN IMMEDIATE) or only read."""
    return sessionmaker(engine.execution_options(will_write=will_write), expire_on_commit=False)


def get_setting(session, key: str, default: str) -> str:
    row = session.get(Setting, key)
    return row.value if row else default


def setting_once(session_factory, key: str, make_value) -> str:
    """The stored value of ``key``, storing ``make_value()`` first if there is none (race-safe)."""
    from sqlalchemy.exc import IntegrityError

    with session_factory() as session:
        value = get_setting(session, key, "")
        if value:
            return value
        session.add(Setting(key=key, value=make_value()))
        try:
            session.commit()
        except IntegrityError:  # another process stored it first
            session.rollback()
        return get_setting(session, key, "")


def set_setting(session, key: str, value: str) -> None:
    row = session.get(Setting, key)
    if row:
        row.value = value
    else:
        session.add(Setting(key=key, value=value))
