"""The ``acr`` protocol and ``paired`` studies of imported methods as one typed result: MOS per
method and per item, the per-participant pair tests (headline), the mixed model, rater checks,
the reference differences, hidden repeats and gold items; numbers and tables only (the report's
words are ``analysis.protocols``')."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stylestudy.analysis.models.lmm import MethodsFit, NoMixedModel
from stylestudy.analysis.pairwise import support
from stylestudy.analysis.ratings import rank_groups, scores
from stylestudy.analysis.ratings.raters import krippendorff_alpha
from stylestudy.analysis.ratings.raters import screening as rater_screening


@dataclass
class RatingsAnalysis:
    kind: str  # acr | paired
    methods: list[str]
    ratings: int  # every usable rating
    participants: int
    one: pd.DataFrame  # one rating per participant and condition (paired: the reference's averaged)
    table: pd.DataFrame  # MOS per method with clustered CIs and rank groups, best first
    per_condition: pd.DataFrame  # MOS per item and method
    mixed: MethodsFit | NoMixedModel  # the mixed model's fit, or why there is none
    contrasts: pd.DataFrame | None  # every method pair as a t contrast, Holm (the fit's)
    pair: pd.DataFrame  # the headline: per-participant paired tests per method pair
    screening: pd.DataFrame  # per rater: BT.500 and leave-one-out r, and the rule that flags them
    reasons: list[dict]  # why no ranking can be supported yet (support's codes; empty: it can)
    alpha: float  # Krippendorff's alpha (ordinal)
    rater_min_r: float
    scale_points: int
    repeats: pd.DataFrame  # hidden repeats: per participant, agreement with the first rating
    gold_method: str
    gold: pd.DataFrame  # per participant: gold items answered and failed
    reference: str | None = None  # paired: the method every other one was paired with
    reference_differences: pd.DataFrame | None = None
    without_flagged: pd.DataFrame | None = None  # the MOS table without the flagged raters
    without_flagged_participants: int = 0

    @property
    def rejected(self) -> list[str]:
        return self.screening.loc[self.screening["bt500_rejected"], "participant_id"].tolist()

    @property
    def flagged(self) -> pd.DataFrame:
        return self.screening.loc[self.screening["flagged_by"].ne(""), ["participant_id", "r_loo", "flagged_by"]]

    @property
    def low_r(self) -> list[str]:
        return self.screening.loc[self.screening["loo_rejected"], "participant_id"].tolist()

    @property
    def gold_failing(self) -> list[str]:
        return self.gold.loc[self.gold["gold_failed"] > 0, "participant_id"].tolist()

    def summary(self) -> dict:
        out = {"ranking": self.table.to_dict(orient="records"), "krippendorff_alpha_ordinal": self.alpha,
               "bt500_rejected": self.rejected, "pair_tests": self.pair.to_dict(orient="records"),
               "ranking_supported": not self.reasons, "ranking_not_supported_because": self.reasons,
               "raters_flagged": self.flagged.to_dict(orient="records"), "rater_min_r": self.rater_min_r}
        out["mixed_model"] = self.mixed.to_json()
        if self.reference_differences is not None:
            out["reference"] = self.reference
            out["reference_differences"] = self.reference_differences.to_dict(orient="records")
        if len(self.repeats):
            out["repeat_consistency"] = {"mean_abs_diff": float(self.repeats["mean_abs_diff"].mean()),
                                         "exact_agreement": float(self.repeats["exact_agreement"].mean())}
        if self.gold_method:
            out["gold_failed_participants"] = self.gold_failing
        if self.without_flagged is not None:
            out["ranking_without_flagged"] = self.without_flagged.to_dict(orient="records")
        return out


def analyze_ratings(usable: pd.DataFrame, all_rows: pd.DataFrame, methods: list[str], kind: str,
                    reference: str | None, gold_method: str, scale_points: int, rater_min_r: float,
                    mixed_slopes: str = "items", mixed_variances: str = "unrestricted",
                    generalise: str = "participants") -> RatingsAnalysis:
    """``usable``: the rated rows (ratings as floats); ``reference``: for ``paired`` studies."""
    one = scores.one_per_condition(usable)  # paired: the reference's ratings averaged per participant
    table = scores.method_mos(one, methods, scale=(1, scale_points))
    # the model takes every rating: a reference averaged over its trials would be less noisy than
    # the model's one residual variance assumes (the paired rows were conservative, 2.7% at 5%)
    mixed = scores.mixed_contrasts(usable if kind == "paired" else one, methods, mixed_slopes, mixed_variances,
                                   generalise)
    contrasts = mixed.contrasts if isinstance(mixed, MethodsFit) else None
    pair = scores.participant_pair_tests(one, methods)
    screening = rater_screening(one, rater_min_r)
    reasons = support.rating_reasons(one, methods)
    alpha = krippendorff_alpha(one)
    order = table["method"].tolist()
    groups = {m: "a" for m in order} if reasons else rank_groups.from_pair_tests(order, pair)
    if groups is not None:  # None: too many letters to read (rank_groups.note says so)
        table.insert(0, "rank_group", table["method"].map(groups))
    result = RatingsAnalysis(kind, methods, len(usable), usable["participant_id"].nunique(), one, table,
                             scores.condition_mos(one, (1, scale_points)), mixed, contrasts, pair, screening, reasons, alpha, rater_min_r,
                             scale_points, scores.repeat_consistency(all_rows), gold_method,
                             scores.gold_failures(all_rows, gold_method))
    if kind == "paired":
        result.reference = reference
        result.reference_differences = scores.reference_differences(usable, reference)
    flagged = result.flagged
    kept = one[~one["participant_id"].isin(flagged["participant_id"])]
    if len(flagged) and len(kept):  # every rater flagged (a small pilot): no ranking without them; the report says so
        result.without_flagged = scores.method_mos(kept, methods, scale=(1, scale_points))
        result.without_flagged_participants = kept["participant_id"].nunique()
    return result
