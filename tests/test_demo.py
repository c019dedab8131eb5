"""The main job (docs/tutorials/run-the-demo.md): ``stylestudy demo`` end to end, offline; a second
run reuses everything."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
def test_demo_end_to_end_then_reuse(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "stylestudy", "demo", "--out", str(out), "--device", "cpu", "--quiet"]
    start = time.perf_counter()
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    first_seconds = time.perf_counter() - start
    assert first.returncode == 0, first.stderr[-2000:]
    assert "35 of 35 images generated" in first.stdout and "stylestudy serve" in first.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["stimuli"]) == 35
    assert (out / "figures" / "block_a_paired.png").stat().st_size > 10_000
    rows = list(csv.DictReader((out / "ratings.csv").open()))
    assert len(rows) == 10 * 16 * 2  # 10 participants x 16 pairs x 2 images, all through the server
    assert {r["external_id"] for r in rows} == {f"demo-sim-{i:02d}" for i in range(1, 11)}
    assert all(1 <= int(r["rating"]) <= 5 for r in rows)
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["counts"]["usable"] == 320 and summary["cells"] == 16
    assert "<table" in (out / "report" / "report.html").read_text()
    # the demo's raters are scripts: its report says so in the title and the first line
    lines = (out / "report" / "report.md").read_text().splitlines()
    assert lines[0] == "# stylestudy analysis (SYNTHETIC DATA)"
    assert lines[2].startswith("Simulated ratings: all 10 participants are stylestudy's scripted clients")
    # Second run: stimuli reused, participants already complete; seconds, not minutes.
    start = time.perf_counter()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "0 of 35 images generated" in second.stdout and "0 new trials" in second.stdout
    assert time.perf_counter() - start < first_seconds / 2
    assert len(list(csv.DictReader((out / "ratings.csv").open()))) == 320
    # The worked example (docs/tutorials/rate-your-own-images.md): the demo's stimuli as three methods.
    third = subprocess.run(cmd + ["--protocols"], capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-2000:]
    for kind in ("acr", "pairwise"):
        summary = json.loads((out / "protocols" / kind / "report" / "summary.json").read_text())
        assert summary["protocol"] == kind and summary["counts"]["participants"] == 10
        assert summary["ranking"][-1]["method"] == "photo"  # the unstyled anchor ranks last
        assert (out / "protocols" / kind / "report" / "ranking.png").stat().st_size > 10_000
        assert summary["synthetic"] and summary["simulated"].startswith("all 10 participants")
    assert "acr      (360 trials)" in third.stdout and "pairwise (360 trials)" in third.stdout
