"""Generation end to end on a tiny study: resume after a kill, no-op re-run, manifest, figures."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from stylestudy.engine.produce.generate import generate
from stylestudy.engine.produce.plan import auto_batch_size, problem_bytes
from stylestudy.engine.study.jobs import expand_jobs
from stylestudy.engine.study.studyfile import load_study
from tests.conftest import _pattern

TINY = """
[study]
name = "tiny"
title = "tiny test study"

[images]
object = "photo"

[images.files.photo]
path = "photo.png"
[images.files.paint]
path = "paint.png"
[images.files.brief]
path = "brief.png"

[styles]
rows = ["paint"]

[briefing]
styles = ["brief"]
blocks = ["a"]

[engine]
size = 32
iterations = 3

[methods.baseline]
lambda_os = { paint = 1e-4, brief = 1e-4 }

[methods.normalized]
lambda_os = 1e-2

[blocks.a]
sweep = "lambda_os"
baseline = [1e-2, 1e-5]
normalized = [1.0, 1e-3]
threshold = 4.0

[blocks.b]
sweep = "layer_boost"
layers = ["relu1_2", "relu5_4"]
threshold = 2.0

[blocks.c]
sweep = "size"
sizes = [24, 32]
"""

MANIFEST_KEYS = {"id", "path", "sha256", "block", "row", "column", "column_label", "method", "pair_id", "briefing",
                 "params", "seconds", "final_losses"}


@pytest.fixture()
def tiny_study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.toml").write_text(TINY)
    _pattern(40, 30, 1).save(folder / "photo.png")
    _pattern(36, 36, 2).save(folder / "paint.png")
    _pattern(30, 40, 3).save(folder / "brief.png")
    return folder


@pytest.mark.slow
def test_generate_resume_manifest_and_figures(tiny_study, tmp_path):
    run = tmp_path / "run"
    first = generate(tiny_study, run, device="cpu", jobs_filter="block=a", progress=False)
    assert (first.total, first.generated, first.skipped) == (6, 6, 0)  # 2 cols x 2 methods + 2 briefing (baseline only)
    assert len(first.missing) == 8
    full = generate(tiny_study, run, device="cpu", batch=3, progress=False)
    assert (full.generated, full.skipped, full.missing) == (8, 6, [])  # only the rest
    again = generate(tiny_study, run, device="cpu", progress=False)
    assert (again.generated, again.skipped) == (0, 14)  # a no-op

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] and (run / "study.toml").read_text() == TINY
    assert manifest["study"]["name"] == "tiny" and manifest["study"]["engine"]["iterations"] == 3
    stimuli = manifest["stimuli"]
    assert len(stimuli) == 14 and all(MANIFEST_KEYS <= set(s) for s in stimuli)
    import hashlib

    for s in stimuli:
        assert hashlib.sha256((run / s["path"]).read_bytes()).hexdigest() == s["sha256"]
        assert s["objective"]["style_distance"] > 0
    pairs = {}
    for s in stimuli:
        pairs.setdefault(s["pair_id"], []).append(s["method"])
    assert all(sorted(m) == ["baseline", "normalized"] for p, m in pairs.items()
               if not any(s["briefing"] for s in stimuli if s["pair_id"] == p))
    briefing = [s for s in stimuli if s["briefing"]]
    assert len(briefing) == 2 and {s["method"] for s in briefing} == {"baseline"}
    sizes = {s["params"]["size"] for s in stimuli if s["block"] == "c"}
    assert sizes == {24, 32}

    # A damaged stimulus is detected and regenerated; nothing else is.
    victim = run / stimuli[0]["path"]
    victim.write_bytes(b"broken")
    repaired = generate(tiny_study, run, device="cpu", progress=False)
    assert (repaired.generated, repaired.skipped) == (1, 13)

    from stylestudy.engine.produce.figures import make_figures

    written = make_figures(run)
    names = {p.name for p in written}
    assert {"block_a_paired.png", "block_b_normalized.pdf", "fig3_trace.png", "fig4_power.png"} <= names
    from PIL import Image

    grid = Image.open(run / "figures" / "block_a_paired.png")
    assert grid.width > 300 and grid.height > 200


@pytest.mark.slow
def test_kill_mid_run_then_resume(tiny_study, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "stylestudy", "generate", str(tiny_study), "--out", str(run), "--device", "cpu",
           "--batch", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((run / "stimuli").glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((run / "stimuli").glob("*.json")))
    assert 3 <= done_before < 14, "the run should have been killed part-way"
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    generated = int(out.split(" images generated")[0])
    assert generated == 14 - done_before
    assert "0 images generated, 14 already finished" in subprocess.run(cmd, capture_output=True, text=True).stdout
    assert not [p for p in (run / "stimuli").iterdir() if p.suffix not in (".png", ".json")]


@pytest.mark.slow
def test_conditions_that_share_an_image(tiny_study, tmp_path):
    """Block (c) column 2 at the engine size with the blocks' λos is block (a) column 2: four
    conditions, two images, each made once; every condition keeps its own id."""
    toml = tiny_study / "study.toml"
    toml.write_text(TINY.replace("lambda_os = { paint = 1e-4, brief = 1e-4 }", "lambda_os = { paint = 1e-5, brief = 1e-4 }")
                    .replace("[methods.normalized]\nlambda_os = 1e-2", "[methods.normalized]\nlambda_os = 1e-3"))
    run = tmp_path / "run"
    summary = generate(tiny_study, run, device="cpu", progress=False)
    assert (summary.conditions, summary.total, summary.shared, summary.generated) == (14, 12, 2, 12)
    assert len(list((run / "stimuli").glob("*.png"))) == 12
    manifest = json.loads((run / "manifest.json").read_text())
    stimuli = manifest["stimuli"]
    ids = [s["id"] for s in stimuli]
    assert len(ids) == len(set(ids)) == 14 and manifest["schema"] == 2
    by_id = {s["id"]: s for s in stimuli}
    for method in ("baseline", "normalized"):
        a, c = by_id[f"a-r1-c2-{method}"], by_id[f"c-r1-c2-{method}"]
        assert a["image_id"] == c["image_id"] and a["path"] == c["path"]
        assert a["shared_with"] == [c["id"]] and c["shared_with"] == [a["id"]]
        assert manifest["images"][a["image_id"]]["conditions"] == [a["id"], c["id"]]
    assert sum(bool(s["shared_with"]) for s in stimuli) == 4
    assert sum(len(i["conditions"]) for i in manifest["images"].values()) == 14


def test_cli_errors_for_missing_images_and_study(tiny_study, tmp_path, capsys):
    from stylestudy.cli import main

    (tiny_study / "paint.png").unlink()
    assert main(["generate", str(tiny_study), "--out", str(tmp_path / "r"), "--device", "cpu"]) == 2
    assert "image paint not found" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "nowhere"), "--device", "cpu"]) == 2
    assert main(["generate", str(tiny_study), "--batch", "zero"]) == 2
    assert main(["figures", str(tmp_path / "empty")]) == 2
    assert "no manifest" in capsys.readouterr().err


def test_auto_batch_size_respects_memory():
    per = problem_bytes(512, 512)
    assert auto_batch_size(512, 512, free_bytes=10 * per, headroom=1.0) == 10
    assert auto_batch_size(512, 512, free_bytes=10 * per, headroom=0.5) == 5
    assert auto_batch_size(512, 512, free_bytes=per // 2) == 1  # never zero
    assert auto_batch_size(64, 64, free_bytes=1 << 40, cap=7) == 7
    assert problem_bytes(1024, 1024) == 4 * per


def test_demo_study_is_small():
    jobs = expand_jobs(load_study("studies/demo"))
    assert len(jobs) <= 40 and max(j.config["size"] for j in jobs) <= 128


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_images_from_local_http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    _pattern(20, 20, 5).save(served / "a.png")
    _pattern(20, 20, 6).save(served / "b.png")
    import hashlib

    good = hashlib.sha256((served / "a.png").read_bytes()).hexdigest()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.toml").write_text(f"""
[study]
name = "fetch"
[images]
object = "a"
[images.files.a]
path = "images/a.png"
url = "{base}/a.png"
sha256 = "{good}"
[images.files.b]
path = "images/b.png"
url = "{base}/b.png"
[styles]
rows = ["b"]
[blocks.a]
sweep = "lambda_os"
baseline = [1e-3]
normalized = [1e-3]
""")
    from stylestudy.engine.study.fetch import fetch_images

    try:
        report = fetch_images(folder)
        assert (folder / "images" / "a.png").read_bytes() == (served / "a.png").read_bytes()
        assert any("recorded 1" in line for line in report)
        assert load_study(folder).images["b"].sha256 == hashlib.sha256((served / "b.png").read_bytes()).hexdigest()
        assert all("verified" in line for line in fetch_images(folder))  # second run: nothing to fetch
        # A changed source is refused and the good file stays.
        (folder / "images" / "a.png").unlink()
        (served / "a.png").write_bytes(b"tampered")
        from stylestudy.engine.study.errors import StyleStudyError

        with pytest.raises(StyleStudyError, match="does not match"):
            fetch_images(folder)
        assert not (folder / "images" / "a.png").exists()
        assert not [p for p in (folder / "images").iterdir() if p.name.endswith(".tmp")]
    finally:
        server.shutdown()


def test_cli_fetch_images_from_a_folder(tmp_path, capsys):
    from stylestudy.cli import main

    src = tmp_path / "src"
    src.mkdir()
    _pattern(20, 20, 7).save(src / "a.png")
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.toml").write_text("""
[study]
name = "copy"
[images]
object = "a"
[images.files.a]
path = "images/a.png"
[styles]
rows = ["a"]
[blocks.a]
sweep = "lambda_os"
baseline = [1e-3]
normalized = [1e-3]
""")
    assert main(["fetch-images", str(folder), "--from", str(src)]) == 0
    assert (folder / "images" / "a.png").read_bytes() == (src / "a.png").read_bytes()
    assert "copied" in capsys.readouterr().out and load_study(folder).images["a"].sha256
    assert main(["fetch-images", str(folder), "--from", str(tmp_path / "nowhere")]) == 0  # verified: nothing to copy
    (folder / "images" / "a.png").unlink()
    assert main(["fetch-images", str(folder), "--from", str(tmp_path / "nowhere")]) == 2
    assert "not found; check --from" in capsys.readouterr().err
