"""The ranking figure, saying on itself what it rests on: the number of participants (and
comparisons or ratings), the interval method, the protocol, and SYNTHETIC when the data are
simulated; rank-group letters beside each method (methods sharing a letter were not told
apart); a bound drawn as an arrow to the axis edge; a MOS axis over the whole scale 1..k.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

ANNOTATED = 15  # heatmaps print their numbers up to this many methods (beyond, the CSV has them)


def inches_per_method(n: int, most: float) -> float:
    """A row or column per method that shrinks with many methods (a 100-method figure stays ~20 inches)."""
    return most if n <= 20 else max(0.16, min(most, 20 * most / n))


def ranking_figure(table: pd.DataFrame, value: str, label: str, out: Path, kind: str = "", note: str = "",
                   scale: tuple[float, float] | None = None, synthetic: bool = False) -> Path:
    """Methods top to bottom as in ``table`` with their 95% intervals; ``note`` (n, CI method)
    is printed under the title; ``scale`` fixes the axis (a MOS axis shows the whole scale)."""
    fig, ax = plt.subplots(figsize=(7.5, inches_per_method(len(table), 0.45) * len(table) + 2.2))
    y = np.arange(len(table))
    x = table[value].to_numpy(float)
    lo, hi = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    finite = np.concatenate([v[np.isfinite(v)] for v in (x, lo, hi)])
    if scale is not None:
        left, right = scale
    elif len(finite):
        pad = 0.1 * max(finite.max() - finite.min(), 1.0)
        left, right = finite.min() - pad, finite.max() + pad
    else:
        left, right = -1.0, 1.0
    ax.set_xlim(left, right)
    palette = sns.color_palette("viridis", len(table))
    for k in range(len(table)):
        a, b = (np.clip(lo[k], left, right), np.clip(hi[k], left, right)) if np.isfinite(x[k]) else (np.nan, np.nan)
        if np.isfinite(a) and np.isfinite(b):
            ax.plot([a, b], [y[k], y[k]], color="grey", linewidth=1.5, zorder=1)
            for end, raw, arrow in ((a, lo[k], "<"), (b, hi[k], ">")):
                ax.plot([end], [y[k]], marker=arrow if np.isinf(raw) else "|", color="grey", markersize=9)
        if np.isfinite(x[k]):
            open_marker = "estimate" in table and not str(table["estimate"].iloc[k]).startswith(("maximum", "mos"))
            ax.scatter([x[k]], [y[k]], s=80, zorder=3, color=palette[k], edgecolor="black",
                       facecolor="white" if open_marker else palette[k])
    names = table["method"].astype(str).tolist()
    if "rank_group" in table:
        names = [f"{n}  [{g}]" for n, g in zip(names, table["rank_group"])]
    ax.set_yticks(y, names, fontsize=10 if len(table) <= 20 else 6)
    ax.invert_yaxis()
    ax.set_xlabel(label)
    ax.set_ylabel("")
    ax.set_title(ranking_title(table, kind, synthetic), color="#a00" if synthetic else "black", fontsize=11)
    legend = "\n[letters]: methods sharing a letter were not told apart" if "rank_group" in table else ""
    legend += "; open marker: bound / prior-regularised value" if "estimate" in table and legend else ""
    fig.text(0.01, 0.01, note + legend, fontsize=7.5, va="bottom", ha="left", wrap=True)
    fig.tight_layout(rect=(0, 0.14 if note else 0, 1, 1))
    fig.savefig(out / "ranking.png", dpi=130)
    plt.close(fig)
    return out / "ranking.png"


def ranking_title(table: pd.DataFrame, kind: str = "", synthetic: bool = False) -> str:
    """The figure's title promises intervals only where the table has some (one participant: none)."""
    drawn = bool((np.isfinite(table["ci_low"].to_numpy(float)) | np.isfinite(table["ci_high"].to_numpy(float))).any())
    return (f"{kind + ': ' if kind else ''}ranking " + ("with 95% intervals" if drawn else "(provisional: no intervals)")
            + ("  (SYNTHETIC DATA)" if synthetic else ""))
