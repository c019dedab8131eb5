"""Under CI=true a promised component that is missing fails the run instead of skipping it:
a PostgreSQL whose ``initdb`` fails and a PATH without ``chromium``, tried on a small test file
run by pytest with the suite's fixtures (tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = '''
from tests.conftest import needs_chromium


@needs_chromium
def test_needs_chromium():
    pass


def test_needs_postgres(postgres):
    pass
'''


def _probe_path(tmp_path: Path) -> str:
    return f"{tmp_path / 'bin'}:{Path(sys.executable).parent}"


def _run_probe(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"  # a failing initdb and pg_ctl first on PATH; no chromium anywhere on it
    bin_dir.mkdir(exist_ok=True)
    for name in ("initdb", "pg_ctl"):
        (bin_dir / name).write_text("#!/bin/sh\necho 'deliberately broken' >&2\nexit 1\n")
        (bin_dir / name).chmod(0o755)
    runuser = shutil.which("runuser")  # the fixture runs initdb through it as root
    if runuser and not (bin_dir / "runuser").exists():
        (bin_dir / "runuser").symlink_to(runuser)
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = _probe_path(tmp_path)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q",
                           "-rsE", "--rootdir", str(tmp_path), str(probe)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(not Path("/bin/sh").exists(), reason="needs /bin/sh")
def test_missing_components_skip_on_a_developer_machine_and_fail_in_ci(tmp_path):
    dev = _run_probe(tmp_path, ci=False)
    assert shutil.which("chromium", path=_probe_path(tmp_path)) is None  # the probe's PATH really lacks it
    assert dev.returncode == 0 and "2 skipped" in dev.stdout, dev.stdout[-2000:]
    ci = _run_probe(tmp_path, ci=True)
    assert ci.returncode == 1 and "2 errors" in ci.stdout, ci.stdout[-2000:]
    assert "Debian's chromium (apt-get install chromium) is required in CI (CI=true)" in ci.stdout
    assert f"PostgreSQL ({tmp_path / 'bin' / 'initdb'} failed:" in ci.stdout
