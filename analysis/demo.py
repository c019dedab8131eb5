"""``stylestudy demo``: the whole pipeline offline on the embedded defaults, in minutes.

studies/demo (scikit-image samples, bundled Caffe VGG-19) -> generate + figures + claims -> the real
rating server on loopback -> simulated participants take the study through its HTTP interface
-> export -> analysis report.  This is the one module that drives every stage, so it imports
the engine (and torch) only inside ``run_demo``.

The simulated participants look at the pictures: each rates an image by how far it moved from
the object photograph (too little = "not transferred", too much = "excessive"), with its own
taste and noise.  They are a pipeline check, labelled ``demo-sim-NN``; their ratings say nothing
about people.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DEMO_STUDY = Path(__file__).resolve().parent.parent / "studies" / "demo"


@dataclass
class SimulatedRater:
    """Rates by the mean absolute pixel change from the object image, peaked at ``ideal``."""

    seed: int
    object_image: Image.Image
    ideal: float = 0.16  # mean |x - o| in [0, 1] that this rater finds "transferred well"
    width: float = 0.07
    noise: float = 0.5

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.ideal *= float(self.rng.uniform(0.8, 1.25))

    def rate(self, png: bytes, points: int = 5) -> int:
        img = Image.open(io.BytesIO(png)).convert("RGB")
        ref = np.asarray(self.object_image.resize(img.size, Image.Resampling.LANCZOS), float) / 255
        change = float(np.abs(np.asarray(img, float) / 255 - ref).mean())
        if change < 0.02:
            score = 1.0  # untouched: "style not transferred"
        else:
            score = points - abs(change - self.ideal) / self.width * 1.5
        return int(np.clip(round(score + self.rng.normal(0, self.noise)), 1, points))


def _serve_in_thread(app) -> tuple[str, object]:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the demo's output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def simulate_participants(base_url: str, run_dir: Path, object_name: str, participants: int) -> int:
    """Simulated participants take the study over HTTP; returns how many trials they submitted."""
    from evalserver.client import StudyClient

    object_image = Image.open(run_dir / "inputs" / f"{object_name}.png").convert("RGB")

    def one(i: int) -> int:
        rater = SimulatedRater(seed=i, object_image=object_image)
        client = StudyClient(base_url, f"demo-sim-{i + 1:02d}")
        client.join()
        submitted = 0
        while True:
            state = client.state()
            if state["done"]:
                return submitted
            pngs = [client.image(url) for url in state["images"]]
            client.submit(state["trial"], [rater.rate(p, len(state["scale"])) for p in pngs],
                          shown_ms=[float(state["image_ms"])] * 2, response_ms=[1200.0, 1800.0])
            submitted += 1

    with ThreadPoolExecutor(min(participants, 8)) as pool:
        return sum(pool.map(one, range(participants)))


def run_demo(out: str | Path = "runs/demo", participants: int = 10, device: str = "auto",
             progress: bool = True) -> dict:
    from analysis.report import AnalyzeOptions, analyze
    from engine.claims import measure_claims, write_claims
    from engine.figures import make_figures
    from engine.generate import generate
    from engine.study import load_study
    from evalserver.app import create_app
    from evalserver.export import export_csv

    start = time.perf_counter()
    out = Path(out)
    study = load_study(DEMO_STUDY)
    summary = generate(DEMO_STUDY, out, device=device, progress=progress)
    t_generate = time.perf_counter() - start
    make_figures(out)
    claims = measure_claims(out, device)
    write_claims(claims, out / "claims")  # 'analyze RUN_DIR' puts them in the report
    app = create_app(out)
    base_url, server = _serve_in_thread(app)
    try:
        trials = simulate_participants(base_url, out, study.object_image, participants)
    finally:
        server.shutdown()
    with app.config["DB_SESSIONMAKER"]() as session:
        (out / "ratings.csv").write_text(export_csv(session), encoding="utf-8")
    report = analyze(out, AnalyzeOptions(out=out / "report"))  # the live database, as 'stylestudy analyze RUN_DIR'

    result = {
        "run_dir": str(out), "stimuli": summary.total, "generated": summary.generated, "generate_seconds": t_generate,
        "figures": str(out / "figures"), "database": str(out / "ratings.sqlite"), "ratings_csv": str(out / "ratings.csv"),
        "report": str(out / "report" / "report.html"), "trials_submitted": trials, "seconds": time.perf_counter() - start,
        "omnibus": report["omnibus"], "claims": claims,
    }
    return result
