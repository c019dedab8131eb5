"""Secrets every server process of one study must share: the admin token, the session key that
signs cookies, and the key behind the opaque image URLs.

Each comes from the environment (``STYLESTUDY_ADMIN_TOKEN``, ``STYLESTUDY_SECRET_KEY``,
``STYLESTUDY_URL_KEY``) or else from a file in the run directory, created once and atomically
(mode 0600; written in full beside it, then hard-linked into place, so a gunicorn worker that
loses the race reads the winner's complete file, never a half-written one).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stylestudy.engine.study.errors import StyleStudyError

ADMIN_TOKEN_FILE = "admin_token"
ADMIN_TOKEN_ENV = "STYLESTUDY_ADMIN_TOKEN"
MIN_ADMIN_TOKEN_CHARS = 16  # a short token set by hand is guessable despite the login back-off


@dataclass(frozen=True)
class ServerKeys:
    admin_token: str
    session_key: str
    url_key: str
    admin_token_source: str  # where the token is, in words (printed by 'stylestudy serve')


def shared_secret(run_dir: Path, name: str, env_var: str, make=lambda: secrets.token_urlsafe(32)) -> tuple[str, str]:
    """(value, where it came from): the environment variable, or RUN_DIR/name (created if missing)."""
    value = os.environ.get(env_var, "").strip()
    if value:
        return value, f"the environment variable {env_var}"
    path = run_dir / name
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=run_dir)  # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(make() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)  # atomic; fails if another process created it first
        except FileExistsError:
            pass
        except OSError as exc:
            raise StyleStudyError(f"cannot create {path} ({exc.strerror}); make the run directory writable or set "
                                  f"{env_var}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise StyleStudyError(f"cannot read the secret {path} ({reason}); it must be a file: move it away (a new "
                              f"secret is made) or set {env_var}") from None
    if not value:
        raise StyleStudyError(f"{path} is empty; delete it (a new secret is made) or set {env_var}")
    return value, str(path)


def server_keys(run_dir: str | Path, admin_token: str | None = None) -> ServerKeys:
    """An ``admin_token`` given in code (tests) is taken as is; one set in the environment must
    have at least ``MIN_ADMIN_TOKEN_CHARS`` characters (a generated one has 43)."""
    run_dir = Path(run_dir).resolve()
    if admin_token:
        token, where = admin_token, "given to create_app"
    else:
        token, where = shared_secret(run_dir, ADMIN_TOKEN_FILE, ADMIN_TOKEN_ENV)
        if where.endswith(ADMIN_TOKEN_ENV) and len(token) < MIN_ADMIN_TOKEN_CHARS:
            raise StyleStudyError(f"{ADMIN_TOKEN_ENV} is {len(token)} characters, fewer than {MIN_ADMIN_TOKEN_CHARS}: "
                                  "set a longer one (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))') "
                                  "or unset it to have one generated")
    session_key, _ = shared_secret(run_dir, ".session_key", "STYLESTUDY_SECRET_KEY", lambda: secrets.token_hex(32))
    url_key, _ = shared_secret(run_dir, ".url_key", "STYLESTUDY_URL_KEY", lambda: secrets.token_hex(32))
    return ServerKeys(token, session_key, url_key, where)
