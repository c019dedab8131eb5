"""The study files shipped inside the package (``stylestudy.studies``), found by name.

A command that takes a study accepts a path (a folder or its study.toml) or the name of a bundled
study (``demo``, ``table1``, ``table1-as-run``).  A bundled study is read-only where it is
installed, so the images it needs (``stylestudy fetch-images NAME``) go to a folder of the user's:
``$STYLESTUDY_HOME/images/NAME`` (default ``~/.stylestudy``).  To edit a study, copy it out with
``stylestudy init-study NAME DIR``.
"""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from pathlib import Path

from stylestudy.engine.study.errors import StudyError

PACKAGE = "stylestudy.studies"


def bundled_folder() -> Path:
    return Path(str(files(PACKAGE)))


def bundled_names() -> list[str]:
    return sorted(p.name for p in bundled_folder().iterdir() if (p / "study.toml").is_file())


def resolve_study(spec: str | Path) -> tuple[Path, bool]:
    """(path, bundled): an existing path wins; else a bare name of a bundled study."""
    path = Path(spec)
    if path.exists() or os.sep in str(spec) or "/" in str(spec):
        return path, False
    candidate = bundled_folder() / str(spec)
    if (candidate / "study.toml").is_file():
        return candidate, True
    return path, False


def user_images_dir(name: str) -> Path:
    """Where the images of bundled study ``name`` are kept (it cannot write beside itself)."""
    home = Path(os.environ.get("STYLESTUDY_HOME") or Path.home() / ".stylestudy")
    return home / "images" / name


def init_study(name: str, dest: str | Path) -> Path:
    """Copy bundled study ``name`` to ``dest`` (a new or empty folder) for editing."""
    if name not in bundled_names():
        raise StudyError(f"no bundled study {name!r}; choose one of {', '.join(bundled_names())}")
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise StudyError(f"{dest} exists and is not an empty folder; give a new folder")
    source = bundled_folder() / name
    shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "images").mkdir(exist_ok=True)
    return dest
