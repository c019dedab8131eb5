"""``analyze`` for any methods: the ``acr`` and ``pairwise`` protocols, and ``paired`` studies of
imported methods (a reference against each other one).  The paper's own design keeps its Table 1
analysis (``analysis.report``).

Writes into the output folder: ``ranking.csv`` (the methods ranked with 95% CIs), the
protocol's tables (CSV), seaborn figures (``ranking.png``, ``preference_heatmap.png`` or
``item_mos.png``), ``report.md``, a self-contained ``report.html`` and ``summary.json``; for
ratings also ``sureal_dataset.json`` (the raw scores in sureal's dataset layout: one entry per
condition with its scores by subject).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats as sps  # noqa: E402

from stylestudy.analysis import preference, scores
from stylestudy.analysis.page import embed_png
from stylestudy.analysis.raters import bt500_screening, krippendorff_alpha
from stylestudy.analysis.ratings import RatingSet
from stylestudy.analysis.viewing import viewing_line
from stylestudy.engine.study.manifest import StudyManifest


def is_generic(ratings: RatingSet) -> bool:
    """Not the paper's two-method block design: another protocol, or imported methods."""
    if ratings.protocol != "paired":
        return True
    if ratings.manifest is not None:
        return ratings.manifest.imported
    return not set(ratings.usable["method"]) <= {"baseline", "normalized"}


def _methods(ratings: RatingSet) -> list[str]:
    if ratings.manifest is not None:
        return ratings.manifest.methods
    return sorted(ratings.all_rows.loc[ratings.all_rows["role"].eq("rated"), "method"].unique())


def _reference(ratings: RatingSet, methods: list[str]) -> str:
    """The paired study's reference: the manifest's, else the method in every comparison."""
    if ratings.manifest is not None and ratings.manifest.protocol.reference:
        return ratings.manifest.protocol.reference
    trials = ratings.usable.groupby("pair_id")["method"].agg(set)
    common = set(methods).intersection(*trials) if len(trials) else set()
    return sorted(common)[0] if common else methods[0]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def ranking_figure(table: pd.DataFrame, value: str, label: str, out: Path, kind: str = "") -> Path:
    """Methods top to bottom by score, with their 95% CIs."""
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(table) + 1.6))
    y = np.arange(len(table))
    err = np.vstack([table[value] - table["ci_low"], table["ci_high"] - table[value]])
    palette = sns.color_palette("viridis", len(table))
    ax.errorbar(table[value], y, xerr=err, fmt="none", ecolor="grey", capsize=4)
    sns.scatterplot(x=table[value], y=y, hue=table["method"], palette=palette, s=80, legend=False, ax=ax, zorder=3)
    ax.set_yticks(y, table["method"])
    ax.invert_yaxis()
    ax.set_xlabel(label)
    ax.set_ylabel("")
    ax.set_title(f"{kind + ': ' if kind else ''}ranking with 95% CIs")
    return _save(fig, out / "ranking.png")


def preference_heatmap(wins: pd.DataFrame, counts: pd.DataFrame, order: list[str], out: Path) -> Path:
    share = (wins / counts.where(counts > 0)).loc[order, order]
    fig, ax = plt.subplots(figsize=(1.1 * len(order) + 2.5, 0.9 * len(order) + 1.5))
    sns.heatmap(share, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="RdBu_r", center=0.5, ax=ax,
                cbar_kws={"label": "share preferred"})
    ax.set_title("row preferred over column (ties half)")
    ax.set_xlabel("")
    ax.set_ylabel("")
    return _save(fig, out / "preference_heatmap.png")


def item_heatmap(per_condition: pd.DataFrame, order: list[str], scale_max: int, out: Path) -> Path:
    matrix = per_condition.pivot(index="item", columns="method", values="mos").reindex(columns=order)
    fig, ax = plt.subplots(figsize=(1.1 * len(order) + 2.5, 0.32 * len(matrix) + 1.5))
    sns.heatmap(matrix, annot=len(matrix) <= 40, fmt=".1f", vmin=1, vmax=scale_max, cmap="viridis", ax=ax)
    ax.set_title("MOS per item and method")
    ax.set_xlabel("")
    return _save(fig, out / "item_mos.png")


def sureal_dataset(usable: pd.DataFrame, name: str) -> dict:
    """The raw scores in sureal's dataset layout (``ref_videos`` = items, ``dis_videos`` = conditions
    with ``os``: subject -> score), so sureal's subject models can be run on them."""
    items = sorted(usable["row_label"].unique())
    content = {item: i for i, item in enumerate(items)}
    dis = []
    for asset, (cid, part) in enumerate(sorted(usable.groupby("condition_id"), key=lambda kv: kv[0])):
        dis.append({"content_id": content[part["row_label"].iloc[0]], "asset_id": asset, "condition_id": cid,
                    "method": part["method"].iloc[0],
                    "os": {str(p): float(r) for p, r in zip(part["participant_id"], part["rating"])}})
    return {"dataset_name": name, "ref_videos": [{"content_id": i, "content_name": item} for item, i in content.items()],
            "dis_videos": dis}


def pair_decisions(frame: pd.DataFrame, manifest: StudyManifest, qualities: dict[str, float],
                   alpha: float = 0.05) -> dict[str, bool]:
    """For simulation: per method pair with different planted qualities, whether the report's
    test tells them apart in the planted direction (Holm-corrected)."""
    usable = frame[frame["role"].eq("rated") & frame["rating"].notna()].copy()
    usable["rating"] = usable["rating"].astype(float)
    methods = manifest.methods
    kind = manifest.protocol.kind
    out: dict[str, bool] = {}
    if kind == "pairwise":
        tests = preference.pair_tests(preference.comparisons(usable), methods)
        for t in tests.itertuples():
            planted = qualities[t.a] - qualities[t.b]
            if planted:
                out[f"{t.a}-{t.b}"] = bool(t.p_holm < alpha and (t.share_a - 0.5) * planted > 0)
    elif kind == "acr":
        tests = scores.participant_pair_tests(usable, methods, wilcoxon=False)
        for t in tests.itertuples():
            planted = qualities[t.a] - qualities[t.b]
            if planted:
                out[f"{t.a}-{t.b}"] = bool(t.p_holm < alpha and t.mean_diff * planted > 0)
    else:
        reference = manifest.protocol.reference or methods[0]
        tests = scores.reference_differences(usable, reference, wilcoxon=False)
        for t in tests.itertuples():
            planted = qualities[t.method] - qualities[reference]
            if planted:
                out[f"{t.method}-{reference}"] = bool(t.p_holm < alpha and t.mean_diff * planted > 0)
    return out


def _table_md(frame: pd.DataFrame) -> str:
    """A Markdown table (3 significant digits), without pulling in tabulate for it."""
    if not len(frame):
        return "(none)"

    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return f"{v:.3g}"
        if isinstance(v, tuple):
            return "[" + ", ".join(cell(x) for x in v) + "]"
        return str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False, name=None)]
    return "\n".join(lines)


def analyze_protocol(ratings: RatingSet, out: Path, seed: int = 0, bootstrap: int = 1000) -> dict:
    """Rank the methods with CIs and write the report (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    methods = _methods(ratings)
    kind = ratings.protocol
    usable = ratings.usable.copy()
    usable["rating"] = usable["rating"].astype(float)
    c = ratings.counts
    summary: dict = {"source": ratings.source, "synthetic": ratings.synthetic, "protocol": kind, "methods": methods,
                     "counts": c, "excluded_flags": ratings.excluded_flags}
    sections: list[tuple[str, str, pd.DataFrame | None]] = []  # (heading, text, table)
    pngs: list[Path] = []
    if kind == "pairwise":
        comps = preference.comparisons(usable)
        table = preference.bt_table(comps, methods, bootstrap, seed)
        thurstone, misfit = preference.thurstone_case_v(comps, methods)
        table["thurstone"] = table["method"].map(thurstone)
        tau = sps.kendalltau(table["bt_score"], table["thurstone"]).statistic if len(table) > 1 else float("nan")
        tests = preference.pair_tests(comps, methods)
        triads = preference.circular_triads(comps, methods)
        wins, counts = preference.preference_matrix(comps, methods)
        order = table["method"].tolist()
        pngs += [ranking_figure(table, "bt_score", "Bradley–Terry score (log-strength, mean 0)", out, kind),
                 preference_heatmap(wins, counts, order, out)]
        table.to_csv(out / "ranking.csv", index=False)
        tests.to_csv(out / "pair_tests.csv", index=False)
        triads.to_csv(out / "consistency.csv", index=False)
        (wins / counts.where(counts > 0)).loc[order, order].to_csv(out / "preference_matrix.csv")
        cyclic = int((triads["circular_triads"] > 0).sum())
        bias = preference.position_bias(usable)
        summary.update(position_bias=bias)
        summary.update(ranking=table.to_dict(orient="records"), comparisons=len(comps),
                       ties=int((comps["outcome"] == 0.5).sum()), thurstone_kendall_tau=float(tau),
                       thurstone_misfit=misfit, pair_tests=tests.to_dict(orient="records"),
                       participants_with_circular_triads=cyclic, mean_zeta=float(triads["zeta"].mean()))
        sections += [
            ("Ranking (Bradley–Terry)", f"{len(comps)} comparisons ({summary['ties']} ties, counted half) by "
             f"{comps['participant_id'].nunique()} participants. Scores: choix ILSR log-strengths, mean 0; 95% CIs and "
             f"p_best from {bootstrap} bootstrap resamples of participants. Thurstone Case V agrees with Kendall's "
             f"tau = {tau:.2f}; its mean |observed - predicted| preference is {misfit:.3f}.", table),
            ("Method pairs", "share_a: how often a was preferred over b (ties half); p_ttest: per-participant share "
             "- 1/2 across participants, Holm-corrected in p_holm; p_binomial ignores that a participant's choices "
             "are correlated.", tests),
            ("Consistency", f"Per participant, majority winners of each method pair; {cyclic} of {len(triads)} "
             f"participants have circular triads (mean Kendall zeta = {summary['mean_zeta']:.2f}; 1 = transitive). "
             f"Position: Image 1 was chosen in {bias['image1_share']:.0%} of {bias['decisive']} decisive trials "
             f"(exact binomial p = {bias['p']:.3g} against 1/2).", None),
        ]
    else:
        one = scores.one_per_condition(usable)  # paired: the reference's ratings averaged per participant
        table = scores.method_mos(one, methods, seed=seed)
        per_condition = scores.condition_mos(one)
        mixed = scores.mixed_contrasts(one, methods)
        pair = scores.participant_pair_tests(one, methods)
        screening = bt500_screening(one)
        alpha = krippendorff_alpha(one)
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        order = table["method"].tolist()
        k = len(ratings.manifest.protocol.scale) if ratings.manifest else int(max(5, usable["rating"].max()))
        pngs += [ranking_figure(table, "mos", f"MOS (1..{k})", out, kind), item_heatmap(per_condition, order, k, out)]
        table.to_csv(out / "ranking.csv", index=False)
        per_condition.to_csv(out / "condition_mos.csv", index=False)
        pair.to_csv(out / "pair_tests.csv", index=False)
        screening.to_csv(out / "raters_bt500.csv", index=False)
        (out / "sureal_dataset.json").write_text(json.dumps(sureal_dataset(one, out.name), indent=1), encoding="utf-8")
        rejected = screening.loc[screening["rejected"], "participant_id"].tolist()
        summary.update(ranking=table.to_dict(orient="records"), krippendorff_alpha_ordinal=alpha,
                       bt500_rejected=rejected, pair_tests=pair.to_dict(orient="records"))
        mixed_text = mixed.get("error", "")
        if "contrasts" in mixed:
            contrasts = mixed.pop("contrasts")
            contrasts.to_csv(out / "mixed_contrasts.csv", index=False)
            summary["mixed_model"] = {**mixed, "contrasts": contrasts.to_dict(orient="records")}
            mixed_text = (f"{mixed['formula']} (participant and item crossed, REML), {mixed['n_obs']} ratings; "
                          f"variances: participant {mixed['participant_var']:.3f}, item {mixed['item_var']:.3f}, "
                          f"residual {mixed['residual_var']:.3f}. Every pair of methods as a Wald contrast, Holm-"
                          "corrected in p_holm.")
        else:
            contrasts = None
        sections += [
            ("Ranking (MOS)", f"{len(usable)} ratings by {usable['participant_id'].nunique()} participants"
             + (" (a reference rated in several trials counts once per participant: its mean)" if kind == "paired"
                else "") + ". MOS per method with a 95% CI from a bootstrap over participants (2000 resamples).", table),
            ("Method differences (mixed model)", mixed_text, contrasts),
            ("Method differences (per-participant means)", "Paired t-test and exact Wilcoxon of each participant's "
             "method means; Holm over pairs on the t-test.", pair),
        ]
        if kind == "paired":
            reference = _reference(ratings, methods)
            diffs = scores.reference_differences(usable, reference)
            diffs.to_csv(out / "reference_differences.csv", index=False)
            summary["reference"] = reference
            summary["reference_differences"] = diffs.to_dict(orient="records")
            sections.append((f"Against the reference ({reference})", "Within each trial, other - reference, averaged "
                             "per participant; t-test and exact Wilcoxon across participants, Holm over methods.",
                             diffs))
        repeats = scores.repeat_consistency(ratings.all_rows)
        gold_method = ratings.manifest.protocol.gold_method if ratings.manifest else ""
        gold = scores.gold_failures(ratings.all_rows, gold_method)
        raters_text = (f"Krippendorff's alpha (ordinal) = {alpha:.3f}. BT.500 screening rejects: "
                       f"{', '.join(rejected) or 'nobody'} (flagged only).")
        if len(repeats):
            repeats.to_csv(out / "repeat_consistency.csv", index=False)
            summary["repeat_consistency"] = {"mean_abs_diff": float(repeats["mean_abs_diff"].mean()),
                                             "exact_agreement": float(repeats["exact_agreement"].mean())}
            raters_text += (f" Hidden repeats: mean |first - repeat| = {repeats['mean_abs_diff'].mean():.2f} points, "
                            f"exact agreement {repeats['exact_agreement'].mean():.0%}.")
        if gold_method:
            gold.to_csv(out / "gold.csv", index=False)
            failing = gold.loc[gold["gold_failed"] > 0, "participant_id"].tolist()
            summary["gold_failed_participants"] = failing
            raters_text += (f" Gold items ({gold_method}): {int(gold['gold_failed'].sum())} of "
                            f"{int(gold['gold_answered'].sum())} answered outside the accepted ratings, by "
                            f"{len(failing)} participant(s).")
        sections += [("Per item", "MOS per item and method, t-based 95% CI over the item's ratings.", per_condition),
                     ("Raters", raters_text, None)]

    counts_text = (f"{c['participants']} participants, {c['rows']} rows: {c['usable']} usable, {c['missing']} missing "
                   f"(timeouts), {c['excluded_by_flags']} excluded by flags ({', '.join(ratings.excluded_flags) or 'none'}), "
                   f"{c['attention_rows']} attention-check rows ({c['attention_failed']} failed), "
                   f"{c.get('repeat_rows', 0)} hidden-repeat rows.")
    viewing = viewing_line(ratings.all_rows)
    counts_text += f" {viewing}" if viewing else ""
    title = f"stylestudy analysis: {kind} protocol" + (" (SYNTHETIC DATA)" if ratings.synthetic else "")
    md = [f"# {title}", "", f"Ratings from {ratings.source}.", "", counts_text, ""]
    for heading, text, frame in sections:
        md += [f"## {heading}", "", text, ""] + ([_table_md(frame), ""] if frame is not None else [])
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")

    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:auto;padding:1rem}"
             "table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ccc;padding:.2rem .4rem}"
             "img{max-width:100%}.synthetic{color:#a00;font-weight:700}")
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>Ratings from {html.escape(ratings.source)}.</p>",
            f"<p>{html.escape(counts_text)}</p>", "<h2>Figures</h2>", *(embed_png(p) for p in pngs)]
    for heading, text, frame in sections:
        body += [f"<h2>{html.escape(heading)}</h2>", f"<p>{html.escape(text)}</p>"]
        if frame is not None and len(frame):
            body.append(frame.to_html(index=False, float_format=lambda v: f"{v:.3g}"))
    (out / "report.html").write_text(f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
                                     f"{html.escape(title)}</title><style>{style}</style></head><body>"
                                     + "".join(body) + "</body></html>", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    summary["out"] = str(out)
    return summary
