"""WSGI entry point for production servers, e.g.

    gunicorn -w 4 "stylestudy.evalserver.wsgi:create_app('runs/table1')"

The database URL comes from ``STYLESTUDY_DB`` (default: SQLite in the run directory) and the
admin token from ``STYLESTUDY_ADMIN_TOKEN``.
"""

from stylestudy.evalserver.app import create_app  # noqa: F401
