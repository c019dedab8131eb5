"""The study database as the analysis reads it: the run's database URL resolved as the server
resolves it, and read-only sessions.  Through ``evalserver.db`` only: the analysis never builds
the Flask app to find its ratings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from stylestudy.evalserver.db import database_url, make_engine, make_sessionmaker


def run_database(run_dir: Path, db_url: str | None) -> str:
    """The URL of a run directory's ratings (``--db``, ``STYLESTUDY_DB``, else its SQLite file);
    an error that says what to do when there is none."""
    return database_url(run_dir, db_url, must_exist=True)


def shown(url: str) -> str:
    """The URL for the report, its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def reading(url: str) -> Iterator[Session]:
    """A read-only session on the database, its engine disposed afterwards."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine, will_write=False)() as session:
            yield session
    finally:
        engine.dispose()
