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

from stylestudy.engine.study.bundled import bundled_folder

DEMO_STUDY = bundled_folder() / "demo"


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

    def score(self, png: bytes, points: int = 5) -> float:
        """The rater's impression on the 1..points scale, before rounding (noise included)."""
        img = Image.open(io.BytesIO(png)).convert("RGB")
        ref = np.asarray(self.object_image.resize(img.size, Image.Resampling.LANCZOS), float) / 255
        change = float(np.abs(np.asarray(img, float) / 255 - ref).mean())
        if change < 0.02:
            score = 1.0  # untouched: "style not transferred"
        else:
            score = points - abs(change - self.ideal) / self.width * 1.5
        return score + float(self.rng.normal(0, self.noise))

    def rate(self, png: bytes, points: int = 5) -> int:
        return int(np.clip(round(self.score(png, points)), 1, points))

    def prefer(self, pngs: list[bytes], points: int = 5) -> int:
        """Pairwise: 1 or 2, the image with the better impression."""
        first, second = (self.score(p, points) for p in pngs)
        return 1 if first >= second else 2


# The simulated participants answer as soon as they have the images, so every answer is too_fast,
# which analyze leaves out by default: the demo's analyses keep them (and their reports say so).
SIMULATED_KEPT = ("timeout", "short_display")

def _serve_in_thread(app) -> tuple[str, object]:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the demo's output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def simulate_participants(base_url: str, run_dir: Path, object_name: str, participants: int) -> int:
    """Simulated participants take the study over HTTP; returns how many trials they submitted."""
    from stylestudy.evalserver.client import AlreadyStarted, StudyClient

    object_image = Image.open(run_dir / "inputs" / f"{object_name}.png").convert("RGB")

    def one(i: int) -> int:
        rater = SimulatedRater(seed=i, object_image=object_image)
        client = StudyClient(base_url, f"demo-sim-{i + 1:02d}")
        try:
            client.join()
        except AlreadyStarted:  # a re-run: this id started in an earlier run's client
            return 0
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


def demo_methods_folder(run_dir: Path, object_name: str, dest: Path) -> Path:
    """The demo's stimuli as images 'from elsewhere': ``dest/<method>/<item>.png`` for baseline and
    normalized (every rated cell of the blocks at the engine size, item = the cell) and ``photo``,
    the unstyled photograph at the same size (a sanity anchor that should rank last)."""
    from stylestudy.engine.study.manifest import StudyManifest

    manifest = StudyManifest.load(run_dir)
    sizes = {}
    for pair_id, members in sorted(manifest.pairs.items()):
        for c in members:
            with Image.open(manifest.image_file(c)) as im:
                sizes.setdefault(im.size, []).append((c, pair_id))
    size, members = max(sizes.items(), key=lambda kv: len(kv[1]))  # the engine size (block c's others aside)
    photo = Image.open(run_dir / "inputs" / f"{object_name}.png").convert("RGB").resize(size, Image.Resampling.LANCZOS)
    for c, _ in members:
        item = f"{c.block}-r{c.row}-c{c.column}"
        (dest / c.method).mkdir(parents=True, exist_ok=True)
        (dest / "photo").mkdir(parents=True, exist_ok=True)
        (dest / c.method / f"{item}.png").write_bytes(manifest.image_file(c).read_bytes())
        photo.save(dest / "photo" / f"{item}.png")
    return dest


def run_protocol_demo(run_dir: str | Path, object_name: str, participants: int = 10) -> dict:
    """The demo's stimuli imported as three methods and rated with ``acr`` and ``pairwise`` by
    simulated participants over HTTP; each analysed into ``RUN_DIR/protocols/<kind>/report``."""
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze
    from stylestudy.engine.study.importer import import_images
    from stylestudy.evalserver.app import create_app
    from stylestudy.evalserver.client import AlreadyStarted, StudyClient

    run_dir = Path(run_dir)
    root = run_dir / "protocols"
    source = demo_methods_folder(run_dir, object_name, root / "methods")
    object_image = Image.open(run_dir / "inputs" / f"{object_name}.png").convert("RGB")
    results = {}
    for kind in ("acr", "pairwise"):
        run = root / kind
        import_images(source, run, kind)
        app = create_app(run)
        base_url, server = _serve_in_thread(app)

        def one(i: int, base_url=base_url) -> int:
            rater = SimulatedRater(seed=i, object_image=object_image)
            client = StudyClient(base_url, f"demo-sim-{i + 1:02d}")
            try:
                client.join()
            except AlreadyStarted:  # a re-run: this id started in an earlier run's client
                return 0
            return client.take(lambda state, _t: (rater.prefer([client.image(u) for u in state["images"]])
                                                  if state["protocol"] == "pairwise"
                                                  else [rater.rate(client.image(u)) for u in state["images"]]),
                               fetch_images=False)

        try:
            with ThreadPoolExecutor(min(participants, 8)) as pool:
                trials = sum(pool.map(one, range(participants)))
        finally:
            server.shutdown()
        summary = analyze(run, AnalyzeOptions(out=run / "report", bootstrap=500, exclude_flags=SIMULATED_KEPT))
        results[kind] = {"run_dir": str(run), "trials": trials, "report": str(run / "report" / "report.html"),
                         "ranking": summary["ranking"]}
    return results


def run_demo(out: str | Path = "runs/demo", participants: int = 10, device: str = "auto",
             progress: bool = True) -> dict:
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze
    from stylestudy.engine.produce.claims import measure_claims, write_claims
    from stylestudy.engine.produce.figures import make_figures
    from stylestudy.engine.produce.generate import generate
    from stylestudy.engine.study.studyfile import load_study
    from stylestudy.evalserver.app import create_app
    from stylestudy.evalserver.export import export_csv

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
        (out / "ratings.csv").write_text(export_csv(session, app.config["MANIFEST"].protocol.display), encoding="utf-8")
    report = analyze(out, AnalyzeOptions(out=out / "report", exclude_flags=SIMULATED_KEPT))  # the live database

    result = {
        "run_dir": str(out), "stimuli": summary.total, "generated": summary.generated, "generate_seconds": t_generate,
        "figures": str(out / "figures"), "database": str(out / "ratings.sqlite"), "ratings_csv": str(out / "ratings.csv"),
        "report": str(out / "report" / "report.html"), "trials_submitted": trials, "seconds": time.perf_counter() - start,
        "omnibus": report["omnibus"], "claims": claims,
    }
    return result
