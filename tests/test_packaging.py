"""The package as users install it: the wheel holds every module of every sub-package and every
data file, installs nothing generic at the top of site-packages, and its command finds the
bundled studies from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"stylestudy": "stylestudy", "engine": "stylestudy/engine", "evalserver": "stylestudy/evalserver",
           "analysis": "stylestudy/analysis", "studies": "stylestudy/studies"}
DATA = ("*.html", "*.j2", "*.js", "*.css", "*.csv", "requirements.txt", "study.toml", "*.po", "*.mo", "babel.cfg")


def expected_files() -> set[str]:
    """Every module and data file of the source tree, named as the wheel must hold it."""
    out = set()
    for folder, installed in FOLDERS.items():
        for path in (ROOT / folder).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py" or any(path.match(p) for p in DATA):
                out.add(f"{installed}/{path.relative_to(ROOT / folder).as_posix()}")
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, text=True, timeout=300)
    (found,) = out.glob("stylestudy-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel (its dependencies from this interpreter's site)."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    return venv


def test_the_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = expected_files() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert "stylestudy/engine/study/manifest.py" in names and "stylestudy/studies/table1/study.toml" in names
    tops = {n.split("/")[0] for n in names}
    assert tops == {"stylestudy", wheel.name.split("-py3")[0].replace("stylestudy-", "stylestudy-") + ".dist-info"}, tops
    assert wheel.name.startswith("stylestudy-0.2.0-")


def _run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STYLESTUDY_HOME": str(cwd / "home"), "PYTHONPATH": ""}
    return subprocess.run([*args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_command_finds_bundled_studies_anywhere(installed, tmp_path):
    bin_ = installed / "bin"
    where = _run(installed, tmp_path, str(bin_ / "python"), "-c", "import stylestudy.engine; print(stylestudy.engine.__file__)")
    assert where.returncode == 0 and str(installed) in where.stdout, where.stdout + where.stderr
    generic = _run(installed, tmp_path, str(bin_ / "python"), "-c", "import engine")
    assert generic.returncode != 0 and "No module named 'engine'" in generic.stderr

    # the paper's study is found by name; its images are the user's to fetch, and the message says how
    t1 = _run(installed, tmp_path, str(bin_ / "stylestudy"), "generate", "table1", "--out", "runs/t1",
              "--jobs-filter", "block=a", "--device", "cpu")
    assert t1.returncode == 2 and "stylestudy fetch-images table1" in t1.stderr, t1.stderr
    assert len(t1.stderr.strip().splitlines()) == 1
    fetch = _run(installed, tmp_path, str(bin_ / "stylestudy"), "fetch-images", "demo")
    assert fetch.returncode == 0 and "bundled with scikit-image" in fetch.stdout, fetch.stderr

    # a bundled study copied out for editing is a study folder like any other
    init = _run(installed, tmp_path, str(bin_ / "stylestudy"), "init-study", "table1", "mine")
    assert init.returncode == 0, init.stderr
    text = (tmp_path / "mine" / "study.toml").read_text(encoding="utf-8")
    assert 'name = "table1"' in text and (tmp_path / "mine" / "images").is_dir()
    again = _run(installed, tmp_path, str(bin_ / "stylestudy"), "init-study", "table1", "mine")
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    unknown = _run(installed, tmp_path, str(bin_ / "stylestudy"), "init-study", "nosuch", "x")
    assert unknown.returncode == 2 and "demo, table1, table1-as-run" in unknown.stderr
