"""The report's section "Do objective metrics agree with the participants?", its CSVs
(``metric_agreement.csv``, ``metric_comparisons.csv``, text cells neutralised against spreadsheet
formulas), the scatter figure and the ``summary.json`` entry."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from stylestudy.analysis.agreement.analysis import AgreementResult, analyze_agreement  # noqa: E402
from stylestudy.analysis.agreement.metrics_file import read_metrics  # noqa: E402
from stylestudy.analysis.render.csv_files import write_csv  # noqa: E402
from stylestudy.analysis.render.document import Section, Table  # noqa: E402

HEADING = "Do objective metrics agree with the participants?"
SHOWN_COLUMNS = ["metric", "n", "pearson", "spearman", "spearman_ci_low", "spearman_ci_high", "kendall", "rmse",
                 "rmse_star", "outlier_ratio"]
CHOICE_COLUMNS = ["choice_share", "choice_ci_low", "choice_ci_high", "direction"]
NOTE = ("Agreement on one study does not transfer: it holds for these images, these methods and these participants, "
        "and a metric that tracks people here can fail on another study's stimuli.")


def scatter(result: AgreementResult, out: Path) -> Path:
    """One panel per metric: the conditions' scores against the metric, methods coloured, the mapping curve."""
    names = [r.metric for r in result.rows]
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    values = result.values
    palette = dict(zip(sorted(values["method"].unique()), sns.color_palette("colorblind")))
    label = "MOS" if result.subjective.kind == "mos" else "JOD (per cell)"
    for ax, r in zip(axes.flat, result.rows):
        for method, part in values.groupby("method"):
            ax.scatter(part[r.metric], part["score"], s=14, color=palette[method], label=method)
        grid = np.linspace(values[r.metric].min(), values[r.metric].max(), 100)
        ax.plot(grid, result.points[r.metric].mapping(grid), color="black", lw=1)
        ax.set_title(f"{r.metric}\nSpearman {r.spearman:+.2f}", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = out / "metric_agreement.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def agreement_section(usable: pd.DataFrame, protocol: str, metrics_path: str | Path, out: Path, reps: int,
                      seed: int) -> tuple[dict, Section]:
    """Analyse, write the CSVs and the figure; the ``summary.json`` entry and the report section."""
    metrics, names = read_metrics(metrics_path)
    result = analyze_agreement(usable, protocol, metrics, names, reps, seed)
    table = result.table()
    table = table[SHOWN_COLUMNS[:-1] + [c for c in table.columns if c not in SHOWN_COLUMNS[:-1]]]  # the first
    comparisons = pd.DataFrame([asdict(c) for c in result.comparisons],
                               columns=["a", "b", "difference", "ci_low", "ci_high", "p", "p_holm"])
    write_csv(table, out / "metric_agreement.csv")
    write_csv(comparisons, out / "metric_comparisons.csv")
    figure = scatter(result, out) if result.rows else None
    skipped = [n for n in names if n not in table["metric"].tolist()]
    score = ("the MOS of each condition (its mean rating)" if result.subjective.kind == "mos" else
             "the JOD of each condition within its cell (maximum likelihood, 1 JOD = 75% preference)")
    paragraphs: list[str | list[str]] = [
        f"Each metric of {metrics_path} against {score}, over {len(result.values)} conditions. Pearson after ITU-T "
        "P.1401's monotonic third-order mapping (the curve in the figure); Spearman and Kendall on the raw metric; "
        "RMSE of the mapped metric (N - 4 degrees of freedom), RMSE* counting only the part of each error beyond the "
        "score's 95% interval, the outlier ratio the share of conditions whose error exceeds that interval. 95% "
        f"CIs: percentile bootstrap over participants and items together ({result.reps} resamples)."
        + (" choice_share: the share of the participants' choices (ties half) that went to the condition the metric "
           "favours (its 'direction' end, the one its Spearman sign points to), with a CI from the same bootstrap."
           if result.subjective.kind == "jod" else ""),
        NOTE,
    ]
    if skipped:
        paragraphs.append(f"Not judged (missing values, e.g. MS-SSIM of images too small for it): {', '.join(skipped)}.")
    holm = [c for c in result.comparisons if c.p_holm < 0.05]
    paragraphs.append(
        f"Metric against metric (|Spearman| difference, bootstrap p, Holm over {len(result.comparisons)} pairs; "
        f"metric_comparisons.csv): " + ("; ".join(f"{c.a} vs {c.b} {c.difference:+.2f} [{c.ci_low:+.2f}, "
                                                  f"{c.ci_high:+.2f}], p_holm = {c.p_holm:.3g}" for c in holm[:10])
                                        + ("; ..." if len(holm) > 10 else "") if holm else
                                        "no two metrics differ after Holm at 5%."))
    shown = SHOWN_COLUMNS + (CHOICE_COLUMNS if result.subjective.kind == "jod" else [])
    summary = {"file": str(metrics_path), "score": result.subjective.kind, "conditions": len(result.values),
               "bootstrap": result.reps, "metrics": table.to_dict(orient="records"), "not_judged": skipped,
               "comparisons": comparisons.to_dict(orient="records")}
    return summary, Section(HEADING, paragraphs, Table.of(table[shown]) if len(table) else None,
                            [figure] if figure else [])
