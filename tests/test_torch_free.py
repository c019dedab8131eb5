"""The stages after generation install without torch: with torch made unimportable, every
command they own runs (import, serve, export, analyze, audit-table, simulate) and so do
fetch-images and init-study, and no module of the neural or production wing is imported."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from tests.conftest import _pattern, free_port, pace, stylestudy_without

NO_TORCH = stylestudy_without("torch", "torchvision", check=(
    "loaded = [m for m in sys.modules if m.startswith(('torch', 'stylestudy.engine.neural', 'stylestudy.engine.produce'))]\n"
    "assert not loaded, loaded"))


def stylestudy_without_torch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=timeout)


def test_later_stages_run_without_torch(run_copy, tmp_path):
    from stylestudy.evalserver.app import create_app

    app = create_app(run_copy, admin_token="t")  # two participants' ratings in the run's database
    for pid in ("nt-1", "nt-2"):
        c = app.test_client()
        c.post("/start", data={"consent": "yes", "PROLIFIC_PID": pid})
        c.post("/briefing")
        while not (state := c.get("/api/state").get_json())["done"]:
            pace(app, pid)  # not too_fast: analyze leaves those out
            c.post(f"/api/trials/{state['trial']}", json={"ratings": [2, 4], "shown_ms": [250, 250]})

    port = free_port()
    serve = subprocess.Popen([sys.executable, "-c", NO_TORCH, "serve", str(run_copy), "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                assert serve.poll() is None and time.time() < deadline, serve.stdout.read() if serve.poll() else "slow"
                time.sleep(0.2)
        assert "Start" in page
    finally:
        serve.terminate()
        serve.wait(10)
    banner = serve.stdout.read()  # where the admin token is, never the token itself
    token = (run_copy / "admin_token").read_text().strip()
    assert f"the admin token is in {run_copy.resolve() / 'admin_token'}" in banner and token not in banner

    out = tmp_path / "ratings.csv"
    steps = [
        ("export", str(run_copy), "--out", str(out)),
        ("analyze", str(run_copy), "--out", str(tmp_path / "report")),
        ("analyze", str(out), "--out", str(tmp_path / "report-csv"), "--manifest", str(run_copy / "manifest.json")),
        ("audit-table",),
        ("simulate", "--study", str(run_copy), "--participants", "4", "--out", str(tmp_path / "sim.csv")),
        ("simulate", "--from-paper", "--out", str(tmp_path / "paper.csv")),
    ]
    for step in steps:
        result = stylestudy_without_torch(*step)
        assert result.returncode == 0, (step, result.stderr[-2000:])
    assert out.read_text().count("\n") == 1 + 2 * 8
    assert (tmp_path / "report" / "report.html").is_file()

    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.toml").write_text('[study]\nname = "f"\n[images]\nobject = "photo"\n[images.files.photo]\n'
                                       'path = "img/photo.png"\nurl = "https://example.org/photo.png"\n'
                                       '[styles]\nrows = ["photo"]\n[blocks.a]\nsweep = "lambda_os"\n'
                                       'baseline = [1e-3]\nnormalized = [1e-2]\n')
    source = tmp_path / "source"
    source.mkdir()
    _pattern(20, 20, 5).save(source / "photo.png")
    result = stylestudy_without_torch("fetch-images", str(folder), "--from", str(source))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (folder / "img" / "photo.png").is_file() and "sha256 = " in (folder / "study.toml").read_text()


def test_import_and_the_new_protocols_run_without_torch(import_source, tmp_path):
    """A researcher with images from elsewhere needs no torch at all: import, simulate, analyze."""
    run = tmp_path / "run"
    steps = [
        ("import", str(import_source), "--out", str(run), "--protocol", "pairwise"),
        ("simulate", "--study", str(run), "--qualities", "adain=0,ours=1,photo=-1", "--participants", "5",
         "--out", str(tmp_path / "sim.csv")),
        ("analyze", str(tmp_path / "sim.csv"), "--manifest", str(run), "--out", str(tmp_path / "report"),
         "--bootstrap", "100"),
    ]
    for step in steps:
        result = stylestudy_without_torch(*step)
        assert result.returncode == 0, (step, result.stderr[-2000:])
    assert "Bradley–Terry" in (tmp_path / "report" / "report.md").read_text()
