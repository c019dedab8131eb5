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

from stylestudy.analysis.models.lmm import MethodsFit, NoMixedModel
from stylestudy.analysis.pairwise import preference, preference_tests
from stylestudy.analysis.pairwise.analysis import PairwiseAnalysis, analyze_pairwise
from stylestudy.analysis.pairwise.scale import CI_METHOD
from stylestudy.analysis.ratings import rank_groups, scores
from stylestudy.analysis.ratings.analysis import RatingsAnalysis, analyze_ratings
from stylestudy.analysis.ratings.raters import LOO_MIN_R
from stylestudy.analysis.render import statistics_text
from stylestudy.analysis.render.csv_files import write_csv
from stylestudy.analysis.render.document import Document, Section, Table, top_rows
from stylestudy.analysis.render.ranking_plot import ANNOTATED, inches_per_method, ranking_figure
from stylestudy.analysis.sources import viewing
from stylestudy.analysis.sources.ratings import RatingSet, excluded_text, simulated_line
from stylestudy.engine.study.manifest import StudyManifest


def is_generic(ratings: RatingSet) -> bool:
    """Not the paper's two-method block design: another protocol, or imported methods."""
    if ratings.protocol != "paired" or not ratings.native:
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
    if ratings.manifest is not None and ratings.manifest.protocol.reference_method:
        return ratings.manifest.protocol.reference_method
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
    cell = inches_per_method(len(order), 1.1)
    fig, ax = plt.subplots(figsize=(cell * len(order) + 2.5, 0.82 * cell * len(order) + 1.5))
    sns.heatmap(share, annot=len(order) <= ANNOTATED, fmt=".2f", vmin=0, vmax=1, cmap="RdBu_r", center=0.5, ax=ax,
                cbar_kws={"label": "share preferred"})
    ax.set_title("row preferred over column (ties half)")
    ax.set_xlabel("")
    ax.set_ylabel("")
    return _save(fig, out / "preference_heatmap.png")


def item_heatmap(per_condition: pd.DataFrame, order: list[str], scale_max: int, out: Path) -> Path:
    matrix = per_condition.pivot(index="item", columns="method", values="mos").reindex(columns=order)
    fig, ax = plt.subplots(figsize=(inches_per_method(len(order), 1.1) * len(order) + 2.5, 0.32 * len(matrix) + 1.5))
    sns.heatmap(matrix, annot=len(matrix) <= 40 and len(order) <= ANNOTATED, fmt=".1f", vmin=1, vmax=scale_max, cmap="viridis", ax=ax)
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
                out[f"{t.a}-{t.b}"] = bool(t.p_holm < alpha and (t.participant_share_a - 0.5) * planted > 0)
    elif kind == "acr":
        tests = scores.participant_pair_tests(usable, methods, wilcoxon=False)
        for t in tests.itertuples():
            planted = qualities[t.a] - qualities[t.b]
            if planted:
                out[f"{t.a}-{t.b}"] = bool(t.p_holm < alpha and t.mean_diff * planted > 0)
    else:
        reference = manifest.protocol.reference_method or methods[0]
        tests = scores.reference_differences(usable, reference, wilcoxon=False)
        for t in tests.itertuples():
            planted = qualities[t.method] - qualities[reference]
            if planted:
                out[f"{t.method}-{reference}"] = bool(t.p_holm < alpha and t.mean_diff * planted > 0)
    return out


def analyze_protocol(ratings: RatingSet, out: Path, seed: int = 0, bootstrap: int = 1000,
                     rater_min_r: float = LOO_MIN_R, mixed_slopes: str = "items",
                     mixed_variances: str = "unrestricted", generalise: str = "participants",
                     ) -> tuple[dict, Document, MethodsFit | NoMixedModel | None]:
    """Rank the methods with CIs (the protocol's typed analysis), write its tables and figures,
    and return the summary (numbers), the report's document (``analysis.analyze`` renders it) and
    the mixed model's result (None: pairwise, which has none)."""
    out.mkdir(parents=True, exist_ok=True)
    methods = _methods(ratings)
    kind = ratings.protocol
    usable = ratings.usable.copy()
    usable["rating"] = usable["rating"].astype(float)
    c = ratings.counts
    summary: dict = {"source": ratings.source, "synthetic": ratings.synthetic, "simulated": ratings.simulated,
                     "protocol": kind, "methods": methods,
                     "counts": c, "excluded_flags": ratings.excluded_flags}
    if kind == "pairwise":
        result = analyze_pairwise(usable, methods, bootstrap, seed)
        mixed = None
        pngs = _pairwise_files(result, out, ratings.synthetic)
        sections = _pairwise_sections(result)
    else:
        k = len(ratings.manifest.protocol.scale) if ratings.manifest else int(max(5, usable["rating"].max()))
        reference = _reference(ratings, methods) if kind == "paired" else None
        gold_method = ratings.manifest.protocol.gold_method if ratings.manifest else ""
        result = analyze_ratings(usable, ratings.all_rows, methods, kind, reference, gold_method, k, rater_min_r,
                                 mixed_slopes, mixed_variances, generalise)
        mixed = result.mixed
        pngs = _ratings_files(result, out, ratings.synthetic)
        sections = _ratings_sections(result)
    summary.update(result.summary())

    counts_text = (f"{c['participants']} participants, {c['rows']} rows: {c['usable']} usable, {c['missing']} missing "
                   f"(timeouts), {excluded_text(c, ratings.excluded_flags)}, "
                   f"{c['attention_rows']} attention-check rows ({c['attention_failed']} failed), "
                   f"{c.get('repeat_rows', 0)} hidden-repeat rows."
                   + (f" {c['duplicates_merged']} repeated ratings of a condition merged into one "
                      f"(--duplicates {ratings.duplicates})." if c.get("duplicates_merged") else ""))
    viewing_section = viewing.section(ratings.all_rows)
    reasons = result.inference.reasons if kind == "pairwise" else result.reasons
    document = Document(f"stylestudy analysis: {kind} protocol", ratings.synthetic,
                        [*simulated_line(ratings), *([statistics_text.ranking_not_supported(reasons)] if reasons else []),
                         f"Ratings from {ratings.source}.", counts_text],
                        [Section("Figures", figures=pngs), *sections,
                         *([viewing_section] if viewing_section else [])])
    return summary, document, mixed


def _figure_note(n: int, what: str, interval: str, kind: str, synthetic: bool) -> str:
    return f"n = {n} participants, {what}; 95% CI: {interval}; protocol: {kind}" + ("; SYNTHETIC DATA" if synthetic else "")


def _pairwise_files(result: PairwiseAnalysis, out: Path, synthetic: bool) -> list[Path]:
    """The pairwise tables as CSV and its figures; the figures' paths."""
    table = result.inference.table
    note = _figure_note(result.inference.participants, f"{len(result.comparisons)} comparisons",
                        f"{CI_METHOD} ({result.bootstrap} resamples)", "pairwise", synthetic)
    pngs = [ranking_figure(table, "bt_score", "Bradley–Terry score (log-strength, mean 0)", out, "pairwise", note,
                           synthetic=synthetic),
            preference_heatmap(result.wins, result.counts, result.order, out)]
    write_csv(table, out / "ranking.csv")
    write_csv(result.tests, out / "pair_tests.csv")
    write_csv(result.triads, out / "consistency.csv")
    write_csv(result.inference.raters, out / "raters_agreement.csv")
    write_csv(result.preference_share(), out / "preference_matrix.csv", index=True)
    return pngs


def _pairwise_sections(result: PairwiseAnalysis) -> list[Section]:
    inference, bias, zeta = result.inference, result.position_bias, result.zeta
    zeta_text = (f"mean Kendall zeta = {zeta:.2f}; 1 = transitive" if not np.isnan(zeta) else
                 "Kendall zeta not computable: it needs three methods and a majority winner of every pair per "
                 "participant")
    ties = inference.ties_table()
    tests, tests_shown = top_rows(result.tests, "pair_tests.csv", "p_holm")
    ranking, ranking_shown = top_rows(inference.table, "ranking.csv")
    sections = [
        Section("Method pairs (headline test)", [
            "Headline, one quantity: participant_share_a, the average participant's share (each participant's "
            "share of a over b, ties half, averaged with equal weight), its 95% CI (ci_low, ci_high: t across "
            "participants) and p (each participant's share - 1/2, paired t; the exact signed-rank test where every "
            "share is the same and t is undefined; 'test' says which), Holm-corrected in p_holm; exact Wilcoxon, d_z "
            "and rank-biserial r with 95% CIs alongside. Beside it, another quantity: pooled_share_a, the share of "
            "all comparisons (a participant counts by their comparisons), its CI clustered by participant "
            "(pooled_ci_low, pooled_ci_high) and its own Wald t test (p_pooled); the two differ when participants "
            "made unequal numbers of comparisons. p_binomial ignores that a participant's choices are correlated."
            + tests_shown], tests),
        Section("Ranking (Bradley–Terry and JOD)", [inference.ranking_text(result.bootstrap) + ranking_shown], ranking),
        Section("Ties", [inference.ties_text()], Table.of(ties) if ties is not None else None),
        Section("Agreement", [inference.agreement_text() + " " + inference.raters_text()]),
    ]
    if inference.without_flagged is not None:
        sections.append(Section("Ranking without the flagged raters", [
            f"Left out: {', '.join(inference.flagged)} (agreeing with the others less than chance). The same analysis "
            "on the other participants."], Table.of(inference.without_flagged)))
    sections.append(Section("Consistency", [
        f"Per participant, majority winners of each method pair; {result.cyclic} of {len(result.triads)} participants "
        f"have circular triads ({zeta_text}). "
        + (f"Position: Image 1 was chosen in {bias['image1_share']:.0%} of {bias['decisive']} decisive trials (exact "
           f"binomial p = {bias['p']:.3g} against 1/2)." if bias["decisive"] else
           "Position: not known (the input does not say which image was shown first).")]))
    return sections


def _ratings_files(result: RatingsAnalysis, out: Path, synthetic: bool) -> list[Path]:
    """The rating tables as CSV, sureal's dataset and the figures; the figures' paths."""
    k, kind = result.scale_points, result.kind
    note = _figure_note(result.one["participant_id"].nunique(), f"{len(result.one)} ratings", scores.MOS_CI_METHOD,
                        kind, synthetic)
    pngs = [ranking_figure(result.table, "mos", f"MOS (the whole scale, 1..{k})", out, kind, note,
                           scale=(0.85, k + 0.15), synthetic=synthetic),
            item_heatmap(result.per_condition, result.table["method"].tolist(), k, out)]
    write_csv(result.table, out / "ranking.csv")
    write_csv(result.per_condition, out / "condition_mos.csv")
    write_csv(result.pair, out / "pair_tests.csv")
    write_csv(result.screening, out / "raters_screening.csv")
    (out / "sureal_dataset.json").write_text(json.dumps(sureal_dataset(result.one, out.name), indent=1),
                                             encoding="utf-8")
    if result.contrasts is not None:
        write_csv(result.contrasts, out / "mixed_contrasts.csv")
    if result.reference_differences is not None:
        write_csv(result.reference_differences, out / "reference_differences.csv")
    if len(result.repeats):
        write_csv(result.repeats, out / "repeat_consistency.csv")
    if result.gold_method:
        write_csv(result.gold, out / "gold.csv")
    return pngs


def _mixed_text(mixed: dict) -> str:
    if "unavailable" in mixed:
        return statistics_text.unavailable(mixed)
    variances = statistics_text.variances(mixed)
    steps = statistics_text.fit_steps(mixed)
    return (f"Fitted {statistics_text.formula(mixed)} by REML, {mixed['n_obs']} ratings"
            + f" ({steps or statistics_text.maximal(mixed, 'item')})"
            + f". Variances: {variances}; residual {mixed['residual_var']:.3f}"
            + (f" (singular fit: the {', '.join(mixed['singular_terms'])} variance is estimated at 0)"
               if mixed["singular"] else "")
            + ". Every pair of methods as a t contrast with Satterthwaite df (as lmerTest), Holm-corrected in p_holm.")


def _ratings_sections(result: RatingsAnalysis) -> list[Section]:
    reasons, flagged = result.reasons, result.flagged
    ranking, ranking_shown = top_rows(result.table, "ranking.csv")
    pair, pair_shown = top_rows(result.pair, "pair_tests.csv", "p_holm")
    contrasts, contrasts_shown = (top_rows(result.contrasts, "mixed_contrasts.csv", "p_holm")
                                  if result.contrasts is not None else (None, ""))
    sections = [
        Section("Ranking (MOS)", [(statistics_text.ranking_not_supported(reasons) + " " if reasons else "")
                                  + f"{result.ratings} ratings by {result.participants} participants"
                                  + (" (a reference rated in several trials counts once per participant: its mean)"
                                     if result.kind == "paired" else "")
                                  + f". MOS per method with a 95% CI clustered by participant (t on participants - 1 "
                                  f"df; ends clipped to the scale 1..{result.scale_points}). rank_group: methods sharing a letter were not told apart by the "
                                  "per-participant tests (Holm, 5%)."
                                  + rank_groups.note(result.table) + ranking_shown], ranking),
        Section("Method differences (headline: per-participant means)", [
            "Each participant's mean per method, then per pair the paired t-test (the exact signed-rank test where all "
            "differences are equal and t is undefined; 'test' says which), Holm over pairs in p_holm; exact Wilcoxon, "
            "d_z and rank-biserial r with 95% CIs alongside." + pair_shown], pair),
        Section("Method differences (mixed model, second)", [_mixed_text(result.mixed.to_json()) + contrasts_shown],
                contrasts),
    ]
    if result.reference_differences is not None:
        sections.append(Section(f"Against the reference ({result.reference})", [
            "Within each trial, other - reference, averaged per participant; paired test across participants (t, or "
            "the exact signed-rank test where t is undefined), Holm over methods in p_holm; exact Wilcoxon and effect "
            "sizes alongside."], Table.of(result.reference_differences)))
    raters_text = (f"Krippendorff's alpha (ordinal) = {result.alpha:.3f}. BT.500 screening rejects: "
                   f"{', '.join(result.rejected) or 'nobody'}; correlation with the others' MOS (leave-one-out, "
                   f"P.913-style) below {result.rater_min_r:g}: {', '.join(result.low_r) or 'nobody'} (flagged only; "
                   "raters_screening.csv has every rater's r and the rule that flags them"
                   + ("; see 'Ranking without the flagged raters'" if result.without_flagged is not None else "") + ").")
    repeats, gold = result.repeats, result.gold
    if len(repeats):
        raters_text += (f" Hidden repeats: mean |first - repeat| = {repeats['mean_abs_diff'].mean():.2f} points, "
                        f"exact agreement {repeats['exact_agreement'].mean():.0%}.")
    if result.gold_method:
        raters_text += (f" Gold items ({result.gold_method}): {int(gold['gold_failed'].sum())} of "
                        f"{int(gold['gold_answered'].sum())} answered outside the accepted ratings, by "
                        f"{len(result.gold_failing)} participant(s).")
    if len(flagged) and result.without_flagged is None:
        raters_text += (f" Every one of the {result.participants} raters is flagged, so there is no ranking without "
                        "the flagged raters; the ranking above uses them all.")
    if result.without_flagged is not None:
        sections.append(Section("Ranking without the flagged raters", [
            "Left out: " + "; ".join(f"{r.participant_id} ({r.flagged_by}, r = {r.r_loo:.2f})"
                                     for r in flagged.itertuples())
            + f". The same MOS and clustered CIs on the other {result.without_flagged_participants} participants."],
            Table.of(result.without_flagged)))
    per_item, per_item_shown = top_rows(result.per_condition, "condition_mos.csv")
    return sections + [
        Section("Per item", [f"MOS per item and method, t-based 95% CI over the item's ratings (ends clipped to the scale "
                             f"1..{result.scale_points})." + per_item_shown], per_item),
        Section("Raters", [raters_text]),
    ]
