"""Writing a generation run: each rendered image (PNG first, verified, then its sidecar) and the
manifest of every finished condition.  Only the driver writes; executors return bytes."""

from __future__ import annotations

import json
from pathlib import Path

from stylestudy.engine.produce.runfiles import finished_record, stimulus_paths
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import atomic_write_bytes, file_sha256
from stylestudy.engine.study.jobs import Job
from stylestudy.engine.study.manifest import write_manifest
from stylestudy.engine.study.schema import Study


def write_rendered(run_dir: Path, rendered) -> None:
    """PNG first, verified against the worker's hash; then the sidecar, which marks it finished."""
    png, side = stimulus_paths(run_dir, rendered.image_id)
    atomic_write_bytes(png, rendered.png, mode=0o644)  # a stimulus: the server may run as another user
    if file_sha256(png) != rendered.record["png_sha256"]:
        png.unlink(missing_ok=True)
        raise StyleStudyError(f"{png} does not match the hash its worker sent; disk trouble? re-run generate")
    atomic_write_bytes(side, json.dumps(rendered.record, indent=1).encode())


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
