"""Figures of the ratings (seaborn): mean heatmaps in the table layout, the difference heatmap
with significance marks, per-cell paired plots, rating distributions and a per-rater panel."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from stylestudy.analysis.table1.table import cell_stats


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _layout_matrix(values: pd.DataFrame, value: str) -> pd.DataFrame:
    """rows 'block/row', columns 'cN' -> value."""
    frame = values.assign(line=values["block"].astype(str) + " / row " + values["row"].astype(str),
                          col="c" + values["column"].astype(str))
    return frame.pivot_table(index="line", columns="col", values=value, aggfunc="first")


def mean_heatmaps(usable: pd.DataFrame, out: Path, scale_max: int = 5) -> Path:
    stats = cell_stats(usable)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.55 * stats[["block", "row"]].drop_duplicates().shape[0] + 2),
                             sharey=True)
    for ax, method in zip(axes, ("baseline", "normalized")):
        matrix = _layout_matrix(stats[stats["method"] == method], "mean")
        sns.heatmap(matrix, annot=True, fmt=".1f", vmin=1, vmax=scale_max, cmap="viridis", ax=ax, cbar=method == "normalized")
        ax.set_title(f"mean rating: {method}")
        ax.set_xlabel("column")
        ax.set_ylabel("")
    return _save(fig, out / "heatmap_means.png")


def difference_heatmap(usable: pd.DataFrame, tests: pd.DataFrame, out: Path) -> Path:
    frame = tests.assign(marks=np.where(tests["p_holm"] < 0.05, "**", np.where(tests["p_wilcoxon"] < 0.05, "*", "")))
    diff = _layout_matrix(frame, "mean_diff")
    marks = _layout_matrix(frame.assign(label=[f"{d:+.1f}{m}" for d, m in zip(frame["mean_diff"], frame["marks"])]),
                           "label") if not frame.empty else diff
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(diff) + 2))
    lim = max(1.0, float(np.nanmax(np.abs(diff.to_numpy()))) if diff.size else 1.0)
    sns.heatmap(diff, annot=marks, fmt="", vmin=-lim, vmax=lim, cmap="RdBu_r", center=0, ax=ax)
    ax.set_title("normalized − baseline (mean); * p<0.05 Wilcoxon, ** after Holm")
    ax.set_ylabel("")
    return _save(fig, out / "heatmap_difference.png")


def paired_plots(usable: pd.DataFrame, out: Path) -> Path:
    data = usable.assign(cell=usable["block"].astype(str) + usable["row"].astype(str) + " c" + usable["column"].astype(str))
    cells = sorted(data["cell"].unique())
    ncols = min(6, len(cells))
    nrows = int(np.ceil(len(cells) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.1 * ncols, 2.0 * nrows), sharey=True, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, cell in zip(axes.flat, cells):
        wide = data[data["cell"] == cell].pivot_table(index="participant_id", columns="method", values="rating")
        if {"baseline", "normalized"} <= set(wide.columns):
            jitter = rng.uniform(-0.08, 0.08, len(wide))
            for (b, n), j in zip(wide[["baseline", "normalized"]].to_numpy(), jitter):
                ax.plot([0, 1], [b + j, n + j], color="grey", alpha=0.5, marker="o", markersize=3)
            ax.plot([0, 1], wide[["baseline", "normalized"]].mean().to_numpy(), color="crimson", linewidth=2.5)
        ax.set_xticks([0, 1], ["B", "N"])
        ax.set_title(cell, fontsize=8)
        ax.set_ylim(0.5, 5.5)
    for ax in list(axes.flat)[len(cells):]:
        ax.set_visible(False)
    fig.suptitle("each participant's two ratings per cell (red: means)")
    return _save(fig, out / "paired_cells.png")


def distributions(usable: pd.DataFrame, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.countplot(usable, x="rating", hue="method", hue_order=["baseline", "normalized"], ax=ax)
    ax.set_title("distribution of ratings")
    return _save(fig, out / "distributions.png")


def rater_panel(usable: pd.DataFrame, screening: pd.DataFrame, out: Path, scale_max: int = 5) -> Path:
    means = usable.groupby(["participant_id", "method"])["rating"].mean().reset_index()
    rejected = set(screening.loc[screening["rejected"], "participant_id"])
    means["participant"] = [pid + (" (BT.500 reject)" if pid in rejected else "") for pid in means["participant_id"]]
    fig, ax = plt.subplots(figsize=(7, 0.3 * means["participant"].nunique() + 1.5))
    sns.pointplot(means, y="participant", x="rating", hue="method", hue_order=["baseline", "normalized"],
                  linestyle="none", ax=ax)
    ax.set_xlim(0.85, scale_max + 0.15)  # the whole scale, 1..k
    ax.set_title("mean rating per participant")
    return _save(fig, out / "raters.png")
