"""Shared fixtures: tiny images the tests make themselves (no network, nothing copied in)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _pattern(width: int, height: int, seed: int) -> Image.Image:
    """A smooth, textured RGB picture: gradients plus sinusoids, different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for c in range(3):
        fx, fy, phase = rng.uniform(0.05, 0.4, 2).tolist() + [rng.uniform(0, 6.28)]
        channels.append(0.5 + 0.25 * np.sin(fx * xx + fy * yy + phase) + 0.25 * (xx / width - yy / height))
    arr = np.clip(np.stack(channels, -1), 0, 1)
    return Image.fromarray((arr * 255).astype(np.uint8), "RGB")


IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> None:
    """A component the documentation promises is absent: a skip on a developer machine, a failure in CI
    (``CI=true``), where .ci/run installs everything and a skip would hide a broken promise."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true); .ci/run installs it", pytrace=False)
    pytest.skip(f"{what} is not available here")


def import_or_missing(module: str, install: str):
    """``module`` imported, or :func:`missing` (a failure in CI)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing(f"Python package {module!r} ({install}; {exc})")


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    _pattern(80, 60, 1).save(d / "content.png")
    _pattern(70, 90, 2).save(d / "style.png")
    return d


@pytest.fixture(scope="session")
def content_path(image_dir):
    return image_dir / "content.png"


@pytest.fixture(scope="session")
def style_path(image_dir):
    return image_dir / "style.png"


SERVER_STUDY = """
[study]
name = "srv"
title = "server test study"

[images]
object = "photo"

[images.files.photo]
path = "photo.png"
[images.files.paint]
path = "paint.png"
[images.files.other]
path = "other.png"
[images.files.brief]
path = "brief.png"

[styles]
rows = ["paint", "other"]

[briefing]
styles = ["brief"]
blocks = ["a"]

[engine]
size = 24
iterations = 1

[methods.baseline]
lambda_os = { paint = 1e-4, other = 1e-4, brief = 1e-4 }

[blocks.a]
sweep = "lambda_os"
baseline = [1e-2, 1e-5]
normalized = [1.0, 1e-3]
threshold = 4.0

[protocol]
image_seconds = 0.25
rating_seconds = 2.0
participants = 3
completion_code = "C0DE42"
allow_no_id = true
"""


@pytest.fixture(scope="session")
def study_run(tmp_path_factory):
    """A real (tiny) generated run: 4 rated pairs + 2 briefing images, short protocol durations."""
    from stylestudy.engine.produce.generate import generate

    root = tmp_path_factory.mktemp("srv")
    folder = root / "study"
    folder.mkdir()
    (folder / "study.toml").write_text(SERVER_STUDY)
    for name, seed in (("photo", 1), ("paint", 2), ("other", 4), ("brief", 3)):
        _pattern(30, 24, seed).save(folder / f"{name}.png")
    run = root / "run"
    generate(folder, run, device="cpu", progress=False)
    return run


IMPORT_METHODS = ("adain", "ours", "photo")  # "photo": the unstyled anchor (a gold item in some tests)
IMPORT_ITEMS = ("bridge", "harbour", "lake", "tower")


@pytest.fixture(scope="session")
def import_source(tmp_path_factory):
    """Images 'made elsewhere': DIR/<method>/<item>.png, 3 methods x 4 items, all different."""
    root = tmp_path_factory.mktemp("import-src")
    for m, method in enumerate(IMPORT_METHODS):
        (root / method).mkdir()
        for i, item in enumerate(IMPORT_ITEMS):
            _pattern(24, 20, 100 + 10 * m + i).save(root / method / f"{item}.png")
    return root


def import_run(source, dest, protocol: str, **settings) -> Path:
    """``stylestudy import`` of ``source`` into ``dest`` with a study file holding ``settings``
    under [protocol] (short durations; joins without an id allowed unless ``allow_no_id`` is given)."""
    from stylestudy.engine.study.importer import import_images

    values = {"image_seconds": 0.25, "rating_seconds": 2.0, "completion_code": "C0DE42", "allow_no_id": True,
              **settings}
    lines = ["[protocol]"] + [f"{k} = {_toml(v)}" for k, v in values.items() if v is not None]  # None: not set
    study_file = dest.parent / f"{dest.name}-study.toml"
    study_file.write_text("[study]\nname = \"imported\"\n" + "\n".join(lines) + "\n")
    import_images(source, dest, protocol, study_file)
    return dest


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


@pytest.fixture()
def run_copy(study_run, tmp_path):
    """The generated run in a fresh folder (own database) for one test."""
    import shutil

    dest = tmp_path / "run"
    shutil.copytree(study_run, dest, ignore=shutil.ignore_patterns("*.sqlite*"))
    return dest


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``stylestudy serve`` (or gunicorn) as a real process on loopback."""

    def __init__(self, run_dir, gunicorn_workers: int = 0, env: dict | None = None, port: int | None = None,
                 threads: int = 4) -> None:
        import os
        import sys

        self.run_dir, self.port = run_dir, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, STYLESTUDY_ADMIN_TOKEN="live-admin-token-0123456789", STYLESTUDY_JOIN_LIMIT="0",  # bursts
                        **(env or {}))
        if gunicorn_workers:
            self.cmd = [sys.executable, "-m", "gunicorn", "-w", str(gunicorn_workers), "--threads", str(threads), "-b",
                        f"127.0.0.1:{self.port}", f"stylestudy.evalserver.wsgi:create_app('{run_dir}')"]
        else:
            self.cmd = [sys.executable, "-m", "stylestudy", "serve", str(run_dir), "--port", str(self.port)]
        self.proc = None

    def start(self) -> "LiveServer":
        import subprocess
        import tempfile
        import time
        import urllib.request

        # The server logs every request: to a file, never to an unread pipe (it would fill and block).
        self.log = tempfile.NamedTemporaryFile(prefix="stylestudy-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(open(self.log.name).read()[-2000:])
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self, sig=None) -> None:
        import os
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig or signal.SIGTERM)
            self.proc.wait(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()


# --- PostgreSQL: a real, throwaway server for the database-parametrised tests -------------------

class PostgresServer:
    """A private PostgreSQL cluster (initdb + pg_ctl) on a loopback port, run as an unprivileged
    user (PostgreSQL refuses root), removed at the end of the session."""

    def __init__(self) -> None:
        import glob
        import os
        import shutil
        import tempfile

        # PATH first (a developer's own build, or a deliberately broken one to check CI fails), then Debian's.
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        self.bin = os.path.dirname(shutil.which("initdb") or (found[-1] if found else ""))
        if not self.bin or not os.path.exists(os.path.join(self.bin, "pg_ctl")):
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
        self.root = tempfile.mkdtemp(prefix="stylestudy-pg-")
        self.data, self.port = os.path.join(self.root, "data"), free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"
        self.count = 0

    def _run(self, *args: str) -> None:
        import subprocess

        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr[-2000:].strip()}")

    def start(self) -> "PostgresServer":
        import os

        if not os.path.exists(self.data):
            self._run(f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8")
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-w", "-t", "60", "-l", os.path.join(self.root, "log"),
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-w", "-m", mode, "stop")

    def new_database(self) -> str:
        """A fresh, empty database: its SQLAlchemy URL."""
        import psycopg

        self.count += 1
        name = f"study_{self.count}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"{self.url}/{name}"

    def cleanup(self) -> None:
        import shutil

        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL server. Missing PostgreSQL skips the PostgreSQL half of the
    suite on a developer machine, but fails in CI (CI=true), where .ci/run installs it."""
    try:
        server = PostgresServer().start()
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        missing(f"PostgreSQL ({exc})")
    yield server
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """None (the run's SQLite file) or a fresh PostgreSQL database: tests taking it run on both."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()


def stylestudy_without(*packages: str, check: str = "") -> str:
    """Python source that runs the ``stylestudy`` CLI (argv after ``-c``) with ``packages``
    uninstalled, as far as imports can tell (an import finder refuses them; putting None into
    sys.modules instead would mislead libraries that look there, e.g. scipy).  ``check``: code
    run after the command, before exiting with its code."""
    return ("import sys\n"
            "class NotInstalled:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[0] in {packages!r}:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
            "sys.meta_path.insert(0, NotInstalled())\n"
            "from stylestudy.cli import main\n"
            "code = main(sys.argv[1:])\n"
            f"{check}\n"
            "sys.exit(code)\n")


# --- Chromium (Debian's), driven by Playwright: no browser download ------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]



def chromium_present() -> bool:
    """Debian's Chromium on PATH (looked up at test time, so PATH decides)."""
    return bool(shutil.which("chromium"))


@pytest.fixture()
def chromium():
    """Skips without Chromium on a developer machine; fails in CI (see :func:`missing`)."""
    if not chromium_present():
        missing("Debian's chromium (apt-get install chromium)")
    import_or_missing("playwright", "pip install -e '.[test]'")
    return shutil.which("chromium")


needs_chromium = pytest.mark.usefixtures("chromium")


@pytest.fixture()
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def pace(app, external_id: str | None = None, seconds: float = 1.0) -> None:
    """As if every trial now being shown (to ``external_id``, or to anyone) had been served
    ``seconds`` earlier: an answer sent next is at a human's pace, neither ``too_fast`` (the test
    client answers within milliseconds) nor ``late``."""
    from sqlalchemy import select

    from stylestudy.evalserver.db import Participant

    with app.config["DB_SESSIONMAKER"]() as session:
        query = select(Participant).where(Participant.served_at.is_not(None))
        if external_id is not None:
            query = query.where(Participant.external_id == external_id)
        for p in session.scalars(query):
            p.served_at = p.served_at - timedelta(seconds=seconds)
        session.commit()
