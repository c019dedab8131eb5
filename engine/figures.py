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

from engine.errors import StyleStudyError  # noqa: E402

METHOD_NAMES = {"baseline": "baseline (Gatys)", "normalized": "normalized (Choi & Kim)"}


def load_manifest(run_dir: Path) -> dict:
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise StyleStudyError(f"no manifest at {path}; run: stylestudy generate STUDY --out {run_dir}")
    return json.loads(path.read_text())


def _save(fig, stem: Path) -> list[Path]:
    """PNG (to look at) and PDF (to print) of one figure."""
    written = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=150)
        written.append(path)
    plt.close(fig)
    return written


def _grid(run_dir: Path, cells: dict[tuple[int, int], dict], row_labels: dict[int, str], col_labels: dict[int, str],
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
            stim = cells.get((row, col))
            if stim is not None:
                ax.imshow(Image.open(run_dir / stim["path"]))
                if stim.get("label"):
                    ax.set_title(stim["label"], fontsize=7)
            if c == 0:
                ax.set_ylabel(row_labels[row], fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel(col_labels[col], fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def block_grids(run_dir: Path, manifest: dict, out_dir: Path) -> list[Path]:
    written = []
    stimuli = manifest["stimuli"]
    blocks = manifest["study"]["blocks"]
    for block, spec in blocks.items():
        in_block = [s for s in stimuli if s["block"] == block]
        if not in_block:
            continue
        for method in ("baseline", "normalized"):
            cells = {(s["row"], s["column"]): dict(s, label=s["column_label"]) for s in in_block if s["method"] == method}
            if not cells:
                continue
            rows = {s["row"]: s["row_label"] + (" (briefing)" if s["briefing"] else "")
                    for s in in_block if s["method"] == method}
            cols = {s["column"]: f"c{s['column']}" for s in in_block}
            title = f"Block {block} {spec.get('title', '')}: {METHOD_NAMES[method]}"
            written += _grid(run_dir, cells, rows, cols, title, out_dir / f"block_{block}_{method}")
        # Paired: row 2k-1 = baseline, 2k = normalized, rated rows only.
        rated = [s for s in in_block if not s["briefing"]]
        cells, rows = {}, {}
        for s in rated:
            r = 2 * s["row"] - (1 if s["method"] == "baseline" else 0)
            cells[(r, s["column"])] = dict(s, label=s["column_label"])
            rows[r] = f"{s['row_label']}\n{s['method']}"
        cols = {s["column"]: f"c{s['column']}" for s in rated}
        if cells:
            written += _grid(run_dir, cells, rows, cols, f"Block {block} {spec.get('title', '')}: baseline | normalized",
                             out_dir / f"block_{block}_paired")
    return written


def trace_figure(run_dir: Path, manifest: dict, stimulus_id: str | None, out_dir: Path) -> list[Path]:
    """Fig. 3: partial style losses over the iterations of one stimulus."""
    stimuli = {s["id"]: s for s in manifest["stimuli"]}
    if stimulus_id is None:  # the paper's Fig. 3: Fig. 2(a) row 1, column 4 (baseline)
        candidates = [s for s in manifest["stimuli"] if s["block"] == "a" and s["row"] == 1 and s["method"] == "baseline"]
        candidates.sort(key=lambda s: abs(s["column"] - 4))
        if not candidates:
            return []
        stimulus_id = candidates[0]["id"]
    if stimulus_id not in stimuli:
        raise StyleStudyError(f"no stimulus {stimulus_id!r} in {run_dir}/manifest.json")
    side = json.loads((run_dir / "stimuli" / f"{stimulus_id}.json").read_text())
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
    s = stimuli[stimulus_id]
    fig.suptitle(f"Fig. 3: {s['method']}, block {s['block']} row {s['row']} ({s['row_label']}), {s['column_label']}")
    fig.tight_layout()
    return _save(fig, out_dir / "fig3_trace")


def power_figure(run_dir: Path, manifest: dict, out_dir: Path) -> list[Path]:
    """Fig. 4: mean squared ReLU outputs of the study's images at the study size."""
    import pandas as pd
    import torch

    from engine.images import load_rgb, resize_longer_side, to_tensor
    from engine.layer_names import LAYER_NAMES
    from engine.transfer import get_extractor

    eng = manifest["study"]["engine"]
    extractor = get_extractor(eng["weights"], torch.device("cpu"), eng["pooling"])
    relus = [n for n in LAYER_NAMES if n.startswith("relu")]
    rows = []
    inputs = sorted((run_dir / "inputs").glob("*.png")) if (run_dir / "inputs").is_dir() else []
    images = {p.stem: p for p in inputs}
    study_folder = Path(manifest["study"]["folder"])
    for name, src in manifest["study"]["images"].items():
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


def make_figures(run_dir: str | Path, out: str | Path | None = None, trace_stimulus: str | None = None) -> list[Path]:
    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    out_dir = Path(out) if out else run_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    return (block_grids(run_dir, manifest, out_dir) + trace_figure(run_dir, manifest, trace_stimulus, out_dir)
            + power_figure(run_dir, manifest, out_dir))
