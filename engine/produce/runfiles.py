"""A run directory's stimuli: where each image and its sidecar live, and when one is finished
(its PNG exists and the sidecar, written after it, records that PNG's SHA-256)."""

from __future__ import annotations

import json
from pathlib import Path

from stylestudy.engine.study.files import file_sha256
from stylestudy.engine.study.jobs import Job


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
