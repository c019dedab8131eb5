"""``stylestudy metrics``: one row per condition of a run with every objective metric, computed
once per distinct (stimulus, references) and cached by their hashes, batched on the device
``generate`` uses.

The stimulus is measured at its own size: the content image is resized to exactly the
stimulus's width and height (Lanczos), the style image to the stimulus's pixel area (Grams are
not divided by the number of positions, as in generation).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from stylestudy.engine.metrics import ID_COLUMNS, colour, features, structural
from stylestudy.engine.metrics.references import Measured, available, hashes, measured_conditions
from stylestudy.engine.neural.device import get_extractor, resolve_device
from stylestudy.engine.neural.tensors import to_tensor
from stylestudy.engine.produce.plan import weights_identity
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import atomic_write_bytes
from stylestudy.engine.study.images import load_rgb, resize_to_area
from stylestudy.engine.study.jobs import short_hash
from stylestudy.engine.study.layer_names import min_image_side
from stylestudy.engine.study.manifest import StudyManifest

METRICS_VERSION = 1  # bump when a metric's definition changes: cached values are then recomputed
CACHE_NAME = "metrics_cache.json"

CONTENT_METRICS = ["ssim", "ms_ssim", "content_vgg"]
STYLE_METRICS = [n for n in features.feature_names() if n.startswith("style_")] + ["colour_swd_lab"]
WEIGHTS = "caffe"  # the bundled VGG-19 the paper's network is
LEARNED_NOTE = ("LPIPS and other learned metrics: not computed (their weights are not bundled, and stylestudy never "
                "downloads weights during a study)")


@dataclass
class MetricsReport:
    """What ``compute_metrics`` wrote and how."""

    path: Path
    rows: int
    images: int  # distinct (stimulus, references) measured
    computed: int  # of those, computed now (the rest came from the cache)
    metrics: list[str]
    ms_ssim_scales: int
    device: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def _key(m: Measured, sha: dict[Path, str], kinds: list[str], scales: int, weights: str) -> str:
    return short_hash({"version": METRICS_VERSION, "stimulus": sha[m.stimulus], "kinds": kinds, "scales": scales,
                       "weights": weights, **{k: sha[getattr(m, k)] for k in kinds}})


def _load_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # no cache, or a damaged one: everything is recomputed


def measure_batch(batch: list[Measured], kinds: list[str], scales: int, device: torch.device) -> list[dict]:
    """The metrics of same-size stimuli, in one forward pass of VGG-19."""
    images = [load_rgb(m.stimulus) for m in batch]
    w, h = images[0].size
    x = torch.cat([to_tensor(img, device) for img in images])
    rows: list[dict] = [{} for _ in batch]
    extractor = get_extractor(WEIGHTS, device)
    feats = features.image_features(extractor, x)
    if "content" in kinds:
        content = torch.cat([to_tensor(load_rgb(m.content).resize((w, h), Image.Resampling.LANCZOS), device)
                             for m in batch])
        for row, s, ms, d in zip(rows, structural.ssim(x, content).tolist(),
                                 structural.ms_ssim(x, content, scales).tolist(),
                                 features.content_distances(extractor, feats, content)):
            row.update(ssim=s, ms_ssim=ms, content_vgg=d)
    if "style" in kinds:
        styles = [resize_to_area(load_rgb(m.style), w * h) for m in batch]
        distances = features.style_distances(extractor, feats, [to_tensor(s, device) for s in styles])
        for row, distance, img, style in zip(rows, distances, images, styles):
            row.update(distance)
            row["colour_swd_lab"] = colour.sliced_wasserstein(
                colour.lab_quantiles(np.asarray(img, np.float64) / 255),
                colour.lab_quantiles(np.asarray(style, np.float64) / 255))
    return rows


def compute_metrics(run_dir: str | Path, out: str | Path | None = None, device: str = "auto", batch: int = 8,
                    progress: bool = True) -> MetricsReport:
    """Measure every condition of ``run_dir`` and write ``out`` (default RUN_DIR/metrics.csv)."""
    started = time.perf_counter()
    manifest = StudyManifest.load(run_dir, check_files=True)
    out = Path(out) if out else manifest.run_dir / "metrics.csv"
    if out.is_dir():
        raise StyleStudyError(f"--out {out} is a folder; give a file name, e.g. {out / 'metrics.csv'}")
    measured = measured_conditions(manifest)
    kinds, notes = available(measured)
    sizes = {m.stimulus: _size(m.stimulus) for m in measured}
    need = min_image_side(features.STYLE_LAYERS)
    small = next((p for p, (w, h) in sizes.items() if min(w, h) < need), None)
    if small is not None:
        raise StyleStudyError(f"{small} is {sizes[small][0]}x{sizes[small][1]} px; the VGG-19 distances need at "
                              f"least {need} px on each side; measure images of at least that size")
    shorter = min(min(s) for s in sizes.values())
    scales = structural.ms_ssim_scales(shorter) if "content" in kinds else 0
    if "content" in kinds and scales < len(structural.MS_SSIM_WEIGHTS):
        notes.append(f"MS-SSIM over {scales} scales, not 5: the smallest image's shorter side is {shorter} px "
                     f"(5 scales need 161 px)" if scales >= 2 else
                     f"MS-SSIM not computed: the smallest image's shorter side is {shorter} px (2 scales need 21 px)")
    notes.append(LEARNED_NOTE)
    dev = resolve_device(device)
    sha = hashes(measured)
    weights = weights_identity(WEIGHTS)
    keys = {m.condition.id: _key(m, sha, kinds, scales, weights) for m in measured}
    cache_path = manifest.run_dir / CACHE_NAME
    cache = _load_cache(cache_path)
    jobs = {keys[m.condition.id]: m for m in measured}
    pending: dict[tuple[int, int], list[tuple[str, Measured]]] = defaultdict(list)
    for key, m in jobs.items():
        if key not in cache:
            pending[sizes[m.stimulus]].append((key, m))
    todo = sum(len(v) for v in pending.values())
    bar = tqdm(total=len(jobs), initial=len(jobs) - todo, desc="metrics", unit="img", disable=not progress,
               dynamic_ncols=True)
    for group in pending.values():
        for i in range(0, len(group), batch):
            chunk = group[i : i + batch]
            for (key, _), row in zip(chunk, measure_batch([m for _, m in chunk], kinds, scales, dev)):
                cache[key] = row
            atomic_write_bytes(cache_path, json.dumps(cache).encode())  # resumable after each batch
            bar.update(len(chunk))
    bar.close()
    metrics = [n for n in CONTENT_METRICS + STYLE_METRICS if n in cache[keys[measured[0].condition.id]]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ID_COLUMNS + metrics)
    for m in measured:
        row = cache[keys[m.condition.id]]
        writer.writerow([m.condition.image_id, m.condition.id, m.condition.method, m.item]
                        + [repr(float(row[n])) for n in metrics])
    try:
        atomic_write_bytes(out, buffer.getvalue().encode(), mode=0o644)
    except OSError as exc:
        raise StyleStudyError(f"cannot write {out} ({exc.strerror or exc}); choose another --out") from None
    return MetricsReport(out, len(measured), len(jobs), todo, metrics, scales, str(dev),
                         time.perf_counter() - started, notes)
