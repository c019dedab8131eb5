"""``stylestudy generate``: expand a study into conditions, make their images in batches, write
the manifest.

Each condition's image is identified by a hash of everything that determines its pixels
(``image_id``), so an interrupted run resumes, a re-run is a no-op, and conditions with the same
config (the paper's block (c) column 2 and four block (a) cells) share one image, made once.
An image is finished when its PNG exists and its JSON sidecar (written after the PNG) records
that PNG's SHA-256.  The manifest (``engine.manifest``) lists every condition with its image.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from stylestudy.engine.neural.device import resolve_device
from stylestudy.engine.produce.executors import EXECUTORS, RAY_TASK_MEMORY, run_local, run_ray
from stylestudy.engine.produce.plan import (
    assign_ids,
    free_memory,
    plan_batches,
    resolve_image,
    used_images,
    weights_identity,
)
from stylestudy.engine.produce.runfiles import finished_record
from stylestudy.engine.produce.write import write_rendered, write_run_manifest
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import file_sha256, make_dirs
from stylestudy.engine.study.jobs import expand_jobs, filter_jobs
from stylestudy.engine.study.studyfile import load_study

# --- the run ----------------------------------------------------------------------------------

@dataclass
class GenerateSummary:
    total: int  # distinct images of the selected conditions
    generated: int
    skipped: int
    seconds: float
    manifest: Path
    missing: list[str] = field(default_factory=list)  # image ids still missing
    conditions: int = 0  # selected conditions (each shows one image; some share one)
    shared: int = 0  # images shown by more than one condition
    failed: dict[str, str] = field(default_factory=dict)  # image id -> why its batch failed (Ray)


def generate(study_path: str | Path, run_dir: str | Path | None = None, device: str = "auto",
             batch: str | int = "auto", jobs_filter: str | None = None, progress: bool = True,
             bf16: bool = False, executor: str = "local", ray_address: str | None = None,
             gpus_per_task: float = 0.0) -> GenerateSummary:
    """Make every missing image of the study's (selected) conditions, then write the manifest.

    ``executor``: ``local`` runs the batches here; ``ray`` submits one Ray task per batch (a
    local Ray instance unless ``ray_address``), with ``gpus_per_task`` GPUs each (0: CPU tasks with
    as many CPUs as this process's torch threads)."""
    if executor not in EXECUTORS:
        raise StyleStudyError(f"unknown executor {executor!r}; use {' or '.join(EXECUTORS)}")
    study = load_study(study_path)
    run_dir = Path(run_dir or Path("runs") / study.name)
    make_dirs(run_dir / "stimuli")
    shutil.copyfile(study.folder / "study.toml", run_dir / "study.toml")
    paths = {name: resolve_image(study, name, run_dir) for name in used_images(study)}
    image_sha = {name: file_sha256(p) for name, p in paths.items()}
    jobs = expand_jobs(study)
    assign_ids(jobs, image_sha, {w: weights_identity(w) for w in {j.config["weights"] for j in jobs}},
               "bf16" if bf16 else None)
    selected = filter_jobs(jobs, jobs_filter)
    images = {j.image_id: j for j in selected}  # one job per distinct image: shared images are made once
    pending = [j for j in images.values() if finished_record(run_dir, j) is None]
    if executor == "local":
        dev = resolve_device(device)
        memory, cap = free_memory(dev), 32 if dev.type == "cuda" else 8
    else:  # the driver cannot see the workers' memory: plan for a typical task (--batch N overrides)
        memory, cap = RAY_TASK_MEMORY["gpu" if gpus_per_task else "cpu"], 32 if gpus_per_task else 8
    tasks = plan_batches(pending, paths, image_sha, batch, memory, cap, device, bf16,
                         progress=progress and executor == "local")
    start = time.perf_counter()
    overall = tqdm(total=len(images), initial=len(images) - len(pending), desc="images", unit="img",
                   disable=not progress, dynamic_ncols=True)
    inputs = {name: paths[name].read_bytes() for name in {n for t in tasks for n in (*t.contents, *t.styles)}}
    outcomes = (run_local(tasks, inputs) if executor == "local"
                else run_ray(tasks, inputs, ray_address, gpus_per_task, progress))
    failed: dict[str, str] = {}
    for outcome in outcomes:
        if outcome.error:
            failed.update({image_id: outcome.error for image_id in outcome.task.image_ids})
            continue
        for rendered in outcome.images:
            write_rendered(run_dir, rendered)
            overall.update(1)
    overall.close()
    manifest_path, missing = write_run_manifest(study, jobs, run_dir)
    shown_by = defaultdict(int)
    for job in selected:
        shown_by[job.image_id] += 1
    generated = len(pending) - len(failed)
    return GenerateSummary(len(images), generated, len(images) - len(pending), time.perf_counter() - start,
                           manifest_path, missing, len(selected), sum(n > 1 for n in shown_by.values()), failed)
