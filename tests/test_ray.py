"""Generation on Ray (a local Ray instance, as on a laptop or in CI): the same images as the local
executor, a killed worker that costs nothing, a bad input that fails once with its reason."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylestudy.engine.produce.generate import generate
from tests.conftest import _pattern, import_or_missing, stylestudy_without
from tests.test_generate import TINY

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parent.parent / "studies" / "demo"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for these tests (generate() uses it instead of starting its own).
    Without Ray they skip on a developer machine and fail in CI; the missing-Ray message test
    below needs no Ray and always runs."""
    ray = import_or_missing("ray", "pip install -e '.[cluster]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _tiny(root: Path, iterations: int = 3) -> Path:
    folder = root / "study"
    folder.mkdir(parents=True)
    (folder / "study.toml").write_text(TINY.replace("iterations = 3", f"iterations = {iterations}"))
    for name, (w, h, seed) in {"photo": (40, 30, 1), "paint": (36, 36, 2), "brief": (30, 38, 3)}.items():
        _pattern(w, h, seed).save(folder / f"{name}.png")
    return folder


def _psnr(a: Path, b: Path) -> float:
    x, y = (np.asarray(Image.open(p).convert("RGB"), np.float64) for p in (a, b))
    mse = ((x - y) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_ray_makes_the_demo_images_the_local_executor_makes(local_ray, tmp_path):
    """The demo study's block (a) (15 images, 96 px, 25 iterations): same condition and image ids
    and, as docs/how-to/ray.md says, bit-identical images (15 of 15): equal manifest hashes and equal bytes
    on disk (a CPU task runs with the driver's torch thread count, so its float sums are the same)."""
    local = generate(DEMO, tmp_path / "local", device="cpu", jobs_filter="block=a", progress=False)
    remote = generate(DEMO, tmp_path / "ray", device="cpu", jobs_filter="block=a", progress=False, executor="ray")
    assert (remote.generated, remote.failed) == (local.generated, {}) and local.generated == 15
    a, b = (json.loads((tmp_path / d / "manifest.json").read_text())["stimuli"] for d in ("local", "ray"))
    assert [(s["id"], s["image_id"]) for s in a] == [(s["id"], s["image_id"]) for s in b]
    identical = sum(x["sha256"] == y["sha256"] for x, y in zip(a, b))
    same_bytes = sum((tmp_path / "local" / x["path"]).read_bytes() == (tmp_path / "ray" / y["path"]).read_bytes()
                     for x, y in zip(a, b))
    psnr = [_psnr(tmp_path / "local" / x["path"], tmp_path / "ray" / y["path"]) for x, y in zip(a, b)]
    print(f"ray vs local: {identical} of {len(a)} bit-identical, min PSNR {min(psnr):.1f} dB")
    assert (identical, same_bytes, len(a)) == (15, 15, 15)


def _ray_workers_running_a_batch() -> list[int]:
    """PIDs of Ray workers executing render_batch (Ray titles them 'ray::render_batch')."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::render_batch"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def test_a_killed_worker_loses_nothing(local_ray, tmp_path):
    folder = _tiny(tmp_path, iterations=60)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for pid in _ray_workers_running_a_batch():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    summary = generate(folder, tmp_path / "run", device="cpu", batch=2, progress=False, executor="ray")
    thread.join()
    assert killed, "no worker was seen running a batch"
    assert (summary.generated, summary.failed, summary.missing) == (14, {}, [])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["stimuli"]) == 14
    import hashlib

    for s in manifest["stimuli"]:
        assert hashlib.sha256((tmp_path / "run" / s["path"]).read_bytes()).hexdigest() == s["sha256"]


def test_a_bad_image_fails_once_with_its_reason(local_ray, tmp_path, capsys):
    folder = _tiny(tmp_path)
    (folder / "paint.png").write_bytes(b"\x89PNG not really")
    start = time.time()
    summary = generate(folder, tmp_path / "run", device="cpu", progress=False, executor="ray")
    assert time.time() - start < 60
    assert summary.failed and all(r.startswith("ImageError: cannot read image 'paint' of the study")
                                  for r in summary.failed.values())
    # Whole batches fail (a batch shares one optimisation); nothing else is lost or retried forever.
    made = json.loads((tmp_path / "run" / "manifest.json").read_text())["stimuli"]
    assert len(summary.failed) + summary.generated == 14 and len({s["image_id"] for s in made}) == summary.generated
    assert sorted(summary.missing) == sorted(summary.failed)


def test_without_ray_the_executor_says_how_to_install(tmp_path):
    folder = _tiny(tmp_path)
    blocked = stylestudy_without("ray")
    out = subprocess.run([sys.executable, "-c", blocked, "generate", str(folder), "--out", str(tmp_path / "r"),
                          "--device", "cpu", "--executor", "ray", "--quiet"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "pip install -e '.[cluster]'" in out.stderr
