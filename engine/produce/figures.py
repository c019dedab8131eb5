"""``stylestudy figures``: the paper's figures from a run directory.

* Fig. 2 / Fig. 6: one grid per block and method (rows = styles, columns = the swept value),
  and a paired grid per block with the baseline row above the normalized row.
* Fig. 3: per-layer partial style losses over the iterations of one stimulus (raw, log scale;
  and each divided by its initial value).
* Fig. 4: mean squared output of every ReLU layer for the object and style images (log scale).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from PIL import Image  # noqa: E402

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.manifest import Condition, StudyManifest

METHOD_NAMES = {"baseline": "baseline (Gatys)", "normalized": "normalized (Choi & Kim)"}


def _save(fig, stem: Path) -> list[Path]:
    """PNG (to look at) and PDF (to print) of one figure."""
    written = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=150)
        written.append(path)
    plt.close(fig)
    return written


def _grid(run_dir: Path, cells: dict[tuple[int, int], Condition], row_labels: dict[int, str], col_labels: dict[int, str],
          title: str, out: Path) -> list[Path]:
    rows, cols = sorted(row_labels), sorted(col_labels)
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.1 * len(cols) + 0.8, 1.8 * len(rows) + 0.7),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c, col in enumerate(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            cond = cells.get((row, col))
            if cond is not None:
                ax.imshow(Image.open(run_dir / cond.path))
                ax.set_title(cond.column_label, fontsize=7)
            if c == 0:
                ax.set_ylabel(row_labels[row], fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel(col_labels[col], fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def block_grids(manifest: StudyManifest, out_dir: Path) -> list[Path]:
    written = []
    run_dir = manifest.run_dir
    for block, spec in manifest.study["blocks"].items():
        in_block = [c for c in manifest.conditions if c.block == block]
        if not in_block:
            continue
        for method in ("baseline", "normalized"):
            cells = {(c.row, c.column): c for c in in_block if c.method == method}
            if not cells:
                continue
            rows = {c.row: c.row_label + (" (briefing)" if c.briefing else "") for c in in_block if c.method == method}
            cols = {c.column: f"c{c.column}" for c in in_block}
            title = f"Block {block} {spec.get('title', '')}: {METHOD_NAMES[method]}"
            written += _grid(run_dir, cells, rows, cols, title, out_dir / f"block_{block}_{method}")
        # Paired: row 2k-1 = baseline, 2k = normalized, rated rows only.
        rated = [c for c in in_block if not c.briefing]
        cells, rows = {}, {}
        for c in rated:
            r = 2 * c.row - (1 if c.method == "baseline" else 0)
            cells[(r, c.column)] = c
            rows[r] = f"{c.row_label}\n{c.method}"
        cols = {c.column: f"c{c.column}" for c in rated}
        if cells:
            written += _grid(run_dir, cells, rows, cols, f"Block {block} {spec.get('title', '')}: baseline | normalized",
                             out_dir / f"block_{block}_paired")
    return written


def trace_figure(manifest: StudyManifest, condition_id: str | None, out_dir: Path) -> list[Path]:
    """Fig. 3: partial style losses over the iterations of one condition's image."""
    if condition_id is None:  # the paper's Fig. 3: Fig. 2(a) row 1, column 4 (baseline)
        candidates = [c for c in manifest.conditions if c.block == "a" and c.row == 1 and c.method == "baseline"]
        candidates.sort(key=lambda c: abs(c.column - 4))
        if not candidates:
            return []
        condition_id = candidates[0].id
    if condition_id not in manifest.by_id:
        raise StyleStudyError(f"no condition {condition_id!r} in {manifest.source}; give one of its stimuli[].id "
                              f"values, e.g. {manifest.conditions[0].id if manifest.conditions else 'a-r1-c4-baseline'}")
    s = manifest.by_id[condition_id]
    side = json.loads(manifest.image_file(s).with_suffix(".json").read_text())
    style = side["trace"]["style"]
    fig, (raw, rel) = plt.subplots(1, 2, figsize=(10, 3.8))
    palette = sns.color_palette("viridis", len(style))
    for color, (layer, values) in zip(palette, style.items()):
        iters = range(len(values))
        raw.plot(iters, values, label=layer, color=color)
        rel.plot(iters, [v / values[0] if values[0] else float("nan") for v in values], label=layer, color=color)
    raw.set_yscale("log")
    raw.set_title("partial style loss (as defined by the method)")
    rel.set_title("relative to its initial value")
    for ax in (raw, rel):
        ax.set_xlabel("L-BFGS iteration")
        ax.legend(fontsize=7)
    fig.suptitle(f"Fig. 3: {s.method}, block {s.block} row {s.row} ({s.row_label}), {s.column_label}")
    fig.tight_layout()
    return _save(fig, out_dir / "fig3_trace")


def power_figure(manifest: StudyManifest, out_dir: Path) -> list[Path]:
    """Fig. 4: mean squared ReLU outputs of the study's images at the study size."""
    import pandas as pd
    import torch

    from stylestudy.engine.neural.device import get_extractor
    from stylestudy.engine.neural.tensors import to_tensor
    from stylestudy.engine.study.images import load_rgb, resize_longer_side
    from stylestudy.engine.study.layer_names import LAYER_NAMES

    run_dir = manifest.run_dir
    eng = manifest.study["engine"]
    extractor = get_extractor(eng["weights"], torch.device("cpu"), eng["pooling"])
    relus = [n for n in LAYER_NAMES if n.startswith("relu")]
    rows = []
    inputs = sorted((run_dir / "inputs").glob("*.png")) if (run_dir / "inputs").is_dir() else []
    images = {p.stem: p for p in inputs}
    study_folder = Path(manifest.study["folder"])
    for name, src in manifest.study["images"].items():
        if name not in images and not src["path"].startswith("skimage:") and (study_folder / src["path"]).is_file():
            images[name] = study_folder / src["path"]
    for name, path in images.items():
        x = to_tensor(resize_longer_side(load_rgb(path), eng["size"]))
        with torch.no_grad():
            feats = extractor(x, relus)
        rows += [{"image": name, "layer": layer, "power": float(feats[layer].double().pow(2).mean())} for layer in relus]
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(12, 4))
    sns.barplot(frame, x="layer", y="power", hue="image", ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel("mean squared output")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.set_title(f"Fig. 4: VGG-19 layer output power ({eng['weights']} weights, {eng['size']} px)")
    fig.tight_layout()
    return _save(fig, out_dir / "fig4_power")


def make_figures(run_dir: str | Path, out: str | Path | None = None, trace_condition: str | None = None) -> list[Path]:
    manifest = StudyManifest.load(run_dir, check_files=True)
    out_dir = Path(out) if out else manifest.run_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    return (block_grids(manifest, out_dir) + trace_figure(manifest, trace_condition, out_dir)
            + power_figure(manifest, out_dir))
