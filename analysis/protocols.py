"""``analyze`` for any methods: the ``acr`` and ``pairwise`` protocols, and ``paired`` studies of
imported methods (a reference against each other one).  The paper's own design keeps its Table 1
analysis (``analysis.analyze``).

Writes into the output folder: ``ranking.csv`` (the methods ranked with 95% CIs), the
protocol's tables (CSV), seaborn figures (``ranking.png``, ``preference_heatmap.png`` or
``item_mos.png``), ``report.md``, a self-contained ``report.html`` and ``summary.json``; for
ratings also ``sureal_dataset.json`` (the raw scores in sureal's dataset layout: one entry per
condition with its scores by subject).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from stylestudy.analysis.pairwise import inference as pairwise_inference
from stylestudy.analysis.pairwise import preference, preference_tests, support
from stylestudy.analysis.pairwise.scale import CI_METHOD
from stylestudy.analysis.ratings import rank_groups, scores
from stylestudy.analysis.ratings.raters import LOO_MIN_R, krippendorff_alpha
from stylestudy.analysis.ratings.raters import screening as rater_screening
from stylestudy.analysis.render.document import Document, Section, Table
from stylestudy.analysis.render.ranking_plot import ranking_figure
from stylestudy.analysis.sources import viewing
from stylestudy.analysis.sources.ratings import RatingSet
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
        tests = preference_tests.share_tests(preference.comparisons(usable), methods, effect_cis=False)
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


def analyze_protocol(ratings: RatingSet, out: Path, seed: int = 0, bootstrap: int = 1000,
                     rater_min_r: float = LOO_MIN_R, mixed_slopes: str = "items",
                     mixed_variances: str = "unrestricted") -> tuple[dict, Document]:
    """Rank the methods with CIs; the summary (numbers) and the report's document (see the module
    docstring); ``analysis.analyze`` renders it."""
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
        tests = preference_tests.share_tests(comps, methods)
        inference = pairwise_inference.infer(comps, methods, tests, bootstrap, seed)
        table = inference.table
        triads = preference.circular_triads(comps, methods)
        wins, counts = preference.preference_matrix(comps, methods)
        order = table["method"].tolist()
        note = (f"n = {inference.participants} participants, {len(comps)} comparisons; 95% CI: {CI_METHOD} "
                f"({bootstrap} resamples); protocol: {kind}" + ("; SYNTHETIC DATA" if ratings.synthetic else ""))
        pngs += [ranking_figure(table, "bt_score", "Bradley–Terry score (log-strength, mean 0)", out, kind, note,
                                synthetic=ratings.synthetic),
                 preference_heatmap(wins, counts, order, out)]
        table.to_csv(out / "ranking.csv", index=False)
        tests.to_csv(out / "pair_tests.csv", index=False)
        triads.to_csv(out / "consistency.csv", index=False)
        inference.raters.to_csv(out / "raters_agreement.csv", index=False)
        (wins / counts.where(counts > 0)).loc[order, order].to_csv(out / "preference_matrix.csv")
        cyclic = int((triads["circular_triads"] > 0).sum())
        bias = preference.position_bias(usable)
        zeta = float(triads["zeta"].mean())
        summary.update(position_bias=bias)
        summary.update(inference.summary(), comparisons=len(comps), ties=int((comps["outcome"] == 0.5).sum()),
                       pair_tests=tests.to_dict(orient="records"), participants_with_circular_triads=cyclic,
                       mean_zeta=zeta)
        zeta_text = (f"mean Kendall zeta = {zeta:.2f}; 1 = transitive" if not np.isnan(zeta) else
                     "Kendall zeta not computable: it needs three methods and a majority winner of every pair per "
                     "participant")
        sections += [
            ("Method pairs (headline test)", "share_a: how often a was preferred over b (ties half), 95% CI clustered "
              "by participant. p: each participant's share - 1/2 across participants, paired t (the exact signed-rank "
              "test where every participant's share is the same and t is undefined; 'test' says which), "
              "Holm-corrected in p_holm; exact Wilcoxon, d_z and rank-biserial r with 95% CIs alongside; "
              "p_binomial ignores that a participant's choices are correlated.", tests),
            ("Ranking (Bradley–Terry and JOD)", inference.ranking_text(bootstrap), table),
            ("Ties", inference.ties_text(), inference.ties_table()),
            ("Agreement", inference.agreement_text() + " " + inference.raters_text(), None),
            *([("Ranking without the flagged raters", f"Left out: {', '.join(inference.flagged)} (agreeing with the "
                "others less than chance). The same analysis on the other participants.", inference.without_flagged)]
              if inference.without_flagged is not None else []),
            ("Consistency", f"Per participant, majority winners of each method pair; {cyclic} of {len(triads)} "
             f"participants have circular triads ({zeta_text}). "
             f"Position: Image 1 was chosen in {bias['image1_share']:.0%} of {bias['decisive']} decisive trials "
             f"(exact binomial p = {bias['p']:.3g} against 1/2).", None),
        ]
    else:
        one = scores.one_per_condition(usable)  # paired: the reference's ratings averaged per participant
        table = scores.method_mos(one, methods)
        per_condition = scores.condition_mos(one)
        # the model takes every rating: a reference averaged over its trials would be less noisy than
        # the model's one residual variance assumes (the paired rows were conservative, 2.7% at 5%)
        mixed = scores.mixed_contrasts(usable if kind == "paired" else one, methods, mixed_slopes,
                                       mixed_variances)
        pair = scores.participant_pair_tests(one, methods)
        screening = rater_screening(one, rater_min_r)
        reasons = support.rating_reasons(one, methods)
        alpha = krippendorff_alpha(one)
        order = table["method"].tolist()
        groups = {m: "a" for m in order} if reasons else rank_groups.from_pair_tests(order, pair)
        table.insert(0, "rank_group", table["method"].map(groups))
        k = len(ratings.manifest.protocol.scale) if ratings.manifest else int(max(5, usable["rating"].max()))
        note = (f"n = {one['participant_id'].nunique()} participants, {len(one)} ratings; 95% CI: participant "
                f"bootstrap; protocol: {kind}" + ("; SYNTHETIC DATA" if ratings.synthetic else ""))
        pngs += [ranking_figure(table, "mos", f"MOS (the whole scale, 1..{k})", out, kind, note, scale=(0.85, k + 0.15),
                                synthetic=ratings.synthetic), item_heatmap(per_condition, order, k, out)]
        table.to_csv(out / "ranking.csv", index=False)
        per_condition.to_csv(out / "condition_mos.csv", index=False)
        pair.to_csv(out / "pair_tests.csv", index=False)
        screening.to_csv(out / "raters_screening.csv", index=False)
        (out / "sureal_dataset.json").write_text(json.dumps(sureal_dataset(one, out.name), indent=1), encoding="utf-8")
        rejected = screening.loc[screening["bt500_rejected"], "participant_id"].tolist()
        flagged = screening.loc[screening["flagged_by"].ne(""), ["participant_id", "r_loo", "flagged_by"]]
        summary.update(ranking=table.to_dict(orient="records"), krippendorff_alpha_ordinal=alpha,
                       bt500_rejected=rejected, pair_tests=pair.to_dict(orient="records"),
                       ranking_supported=not reasons, ranking_not_supported_because=reasons,
                       raters_flagged=flagged.to_dict(orient="records"), rater_min_r=rater_min_r)
        mixed_text = mixed.get("error", "")
        if "contrasts" in mixed:
            contrasts = mixed.pop("contrasts")
            contrasts.to_csv(out / "mixed_contrasts.csv", index=False)
            summary["mixed_model"] = {**mixed, "contrasts": contrasts.to_dict(orient="records")}
            variances = "; ".join(f"{term} " + ", ".join(f"{v:.3f}" for v in var.values())
                                  for term, var in mixed["variances"].items())
            mixed_text = (f"Fitted {mixed['formula']} by REML, {mixed['n_obs']} ratings"
                          + (f" ({mixed['fallback']})" if mixed["fallback"] else " (the maximal model: by-participant and by-item "
                             "method slopes, Barr et al. 2013)")
                          + f". Variances: {variances}; residual {mixed['residual_var']:.3f}"
                          + (f" (singular fit: the {', '.join(mixed['singular_terms'])} variance is estimated at 0)"
                             if mixed["singular"] else "")
                          + ". Every pair of methods as a t contrast with Satterthwaite df (as lmerTest), "
                          "Holm-corrected in p_holm.")
        else:
            contrasts = None
        sections += [
            ("Ranking (MOS)", (support.sentence(reasons) + " " if reasons else "")
             + f"{len(usable)} ratings by {usable['participant_id'].nunique()} participants"
             + (" (a reference rated in several trials counts once per participant: its mean)" if kind == "paired"
                else "") + ". MOS per method with a 95% CI clustered by participant (t on participants - 1 df). "
             "rank_group: methods sharing a letter were not told apart by the per-participant tests (Holm, 5%).",
             table),
            ("Method differences (headline: per-participant means)", "Each participant's mean per method, then per "
             "pair the paired t-test (the exact signed-rank test where all differences are equal and t is undefined; "
             "'test' says which), Holm over pairs in p_holm; exact Wilcoxon, d_z and rank-biserial r with 95% CIs "
             "alongside.", pair),
            ("Method differences (mixed model, second)", mixed_text, contrasts),
        ]
        if kind == "paired":
            reference = _reference(ratings, methods)
            diffs = scores.reference_differences(usable, reference)
            diffs.to_csv(out / "reference_differences.csv", index=False)
            summary["reference"] = reference
            summary["reference_differences"] = diffs.to_dict(orient="records")
            sections.append((f"Against the reference ({reference})", "Within each trial, other - reference, averaged "
                             "per participant; paired test across participants (t, or the exact signed-rank test "
                             "where t is undefined), Holm over methods in p_holm; exact Wilcoxon and effect sizes "
                             "alongside.",
                             diffs))
        repeats = scores.repeat_consistency(ratings.all_rows)
        gold_method = ratings.manifest.protocol.gold_method if ratings.manifest else ""
        gold = scores.gold_failures(ratings.all_rows, gold_method)
        low_r = screening.loc[screening["loo_rejected"], "participant_id"].tolist()
        raters_text = (f"Krippendorff's alpha (ordinal) = {alpha:.3f}. BT.500 screening rejects: "
                       f"{', '.join(rejected) or 'nobody'}; correlation with the others' MOS (leave-one-out, "
                       f"P.913-style) below {rater_min_r:g}: {', '.join(low_r) or 'nobody'} (flagged only; "
                       "raters_screening.csv has every rater's r and the rule that flags them"
                       + ("; see 'Ranking without the flagged raters'" if len(flagged) else "") + ").")
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
        if len(flagged):
            kept = one[~one["participant_id"].isin(flagged["participant_id"])]
            without = scores.method_mos(kept, methods)
            summary["ranking_without_flagged"] = without.to_dict(orient="records")
            sections.append(("Ranking without the flagged raters", "Left out: " + "; ".join(
                f"{r.participant_id} ({r.flagged_by}, r = {r.r_loo:.2f})" for r in flagged.itertuples())
                + f". The same MOS and clustered CIs on the other {kept['participant_id'].nunique()} participants.", without))
        sections += [("Per item", "MOS per item and method, t-based 95% CI over the item's ratings.", per_condition),
                     ("Raters", raters_text, None)]

    counts_text = (f"{c['participants']} participants, {c['rows']} rows: {c['usable']} usable, {c['missing']} missing "
                   f"(timeouts), {c['excluded_by_flags']} excluded by flags ({', '.join(ratings.excluded_flags) or 'none'}), "
                   f"{c['attention_rows']} attention-check rows ({c['attention_failed']} failed), "
                   f"{c.get('repeat_rows', 0)} hidden-repeat rows.")
    viewing_section = viewing.section(ratings.all_rows)
    document = Document(f"stylestudy analysis: {kind} protocol", ratings.synthetic,
                        [f"Ratings from {ratings.source}.", counts_text],
                        [Section("Figures", figures=pngs),
                         *(Section(heading, [text], Table.of(frame) if frame is not None else None)
                           for heading, text, frame in sections),
                         *([viewing_section] if viewing_section else [])])
    return summary, document
