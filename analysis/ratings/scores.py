"""Scores of any number of methods on a category scale: the ``acr`` protocol, and ``paired``
studies of imported methods (a reference against each other method).

* MOS ± 95% CI per condition (item × method): mean ± t(0.975, n−1)·s/√n over its ratings, the
  usual per-condition interval (ITU-T P.1401 with the t quantile).
* MOS ± 95% CI per method: participants rate many items, so the ratings of one method are not
  independent; the interval is clustered by participant (cluster-robust SE of the ratio, t on
  P − 1 df: the t interval of the participants' means when the design is balanced).
* Method differences, the headline: per method pair, each participant's mean per method, then
  ``analysis.ratings.stats.paired_test`` (paired t; the exact signed-rank test where t is undefined;
  exact Wilcoxon, d_z and rank-biserial r with CIs alongside), Holm over pairs.  Second, a
  linear mixed model ``rating ~ method + (0 + method | participant) + (0 + method | item)``
  (method slopes by participant and by item, REML, Satterthwaite df; ``analysis.models.lmm``), every
  pair a contrast, Holm.
* ``paired`` only: the within-trial difference (other − reference), per participant averaged,
  for each method against the reference.
* Intra-rater consistency from hidden repeats; gold-item failures per participant.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

from stylestudy.analysis.ratings.multiple import holm
from stylestudy.analysis.ratings.stats import paired_test, t_ci
from stylestudy.evalserver.flags import Flag

LEVEL = 0.95


def one_per_condition(usable: pd.DataFrame) -> pd.DataFrame:
    """One rating per (participant, condition): a paired study shows its reference once per other
    method, so its ratings are averaged (ACR data have one already, repeats aside)."""
    keys = ["participant_id", "condition_id", "method", "row_label"]
    return usable.groupby(keys, as_index=False)["rating"].mean()


def _clipped(lo: float, hi: float, scale: tuple[float, float] | None) -> tuple[float, float]:
    """A CI inside a bounded scale (1..5: no end at 5.01); the report says the ends are clipped."""
    return (float(np.clip(lo, *scale)), float(np.clip(hi, *scale))) if scale else (float(lo), float(hi))


def condition_mos(usable: pd.DataFrame, scale: tuple[float, float] | None = None) -> pd.DataFrame:
    """Per condition (item × method): n, MOS, std (ddof 1) and the t-based 95% CI (clipped to ``scale``)."""
    rows = []
    for (item, method, cid), part in usable.groupby(["row_label", "method", "condition_id"]):
        x = part["rating"].to_numpy(float)
        lo, hi = _clipped(*t_ci(x, LEVEL), scale)
        rows.append({"item": item, "method": method, "condition_id": cid, "n": len(x), "mos": x.mean(),
                     "std": x.std(ddof=1) if len(x) > 1 else float("nan"), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


# what method_mos computes, in the words the figures and report use
MOS_CI_METHOD = "clustered by participant (cluster-robust SE, t on participants - 1 df)"


def method_mos(usable: pd.DataFrame, methods: list[str], level: float = LEVEL,
               scale: tuple[float, float] | None = None) -> pd.DataFrame:
    """Per method: n, MOS and a 95% CI clustered by participant (clipped to ``scale``).

    A participant's ratings of one method are not independent, so the interval treats the
    participant as the unit: the MOS is a ratio (sum of ratings / number of ratings) and its
    standard error the cluster-robust one, sqrt(P/(P-1) sum_i (T_i - MOS n_i)^2) / sum_i n_i,
    with a t quantile on P - 1 df.  When every participant rated a method equally often this is
    exactly the t interval of the participants' means.  Its coverage is measured in
    ``tests/benchmarks/calibration.py`` (94-95% at 5, 10 and 30 participants)."""
    sums = usable.groupby(["participant_id", "method"])["rating"].agg(["sum", "count"]).unstack("method")
    rows = []
    for m in methods:
        x = usable.loc[usable["method"] == m, "rating"].to_numpy(float)
        total = sums["sum"][m].dropna().to_numpy(float) if m in sums["sum"] else np.array([])
        count = sums["count"][m].dropna().to_numpy(float) if m in sums["count"] else np.array([])
        lo = hi = float("nan")
        if len(total) > 1:
            mos = total.sum() / count.sum()
            se = math.sqrt(len(total) / (len(total) - 1) * ((total - mos * count) ** 2).sum()) / count.sum()
            half = sps.t.ppf(1 - (1 - level) / 2, len(total) - 1) * se
            lo, hi = _clipped(mos - half, mos + half, scale)
        rows.append({"method": m, "n": len(x), "participants": len(total),
                     "mos": x.mean() if len(x) else float("nan"), "std": x.std(ddof=1) if len(x) > 1 else float("nan"),
                     "ci_low": float(lo), "ci_high": float(hi)})
    return pd.DataFrame(rows).sort_values("mos", ascending=False, ignore_index=True)


def mixed_contrasts(data: pd.DataFrame, methods: list[str], selection: str = "items",
                    variances: str = "unrestricted", generalise: str = "participants"):
    """``rating ~ method * item (items fixed) + (0 + method | participant)`` (``generalise``
    "items": the items random, ``+ (0 + method | item)``), or the simpler model ``analysis.models.lmm``
    falls back to, its steps in ``notes``; every method pair as a Satterthwaite t contrast,
    Holm-corrected (``lmm.MethodsFit``, or ``lmm.NoMixedModel``)."""
    from stylestudy.analysis.models.lmm import fit_methods

    frame = data[["rating", "method", "participant_id", "row_label"]].rename(
        columns={"participant_id": "participant", "row_label": "item"})
    return fit_methods(frame, methods, item="item", selection=selection, variances=variances, generalise=generalise)


PAIR_COLUMNS = ["participants", "mean_diff", "ci_low", "ci_high", "p", "test", "p_ttest", "p_wilcoxon", "cohens_dz",
                "dz_ci_low", "dz_ci_high", "rank_biserial", "rb_ci_low", "rb_ci_high"]


def _pair_row(d: np.ndarray, effect_cis: bool) -> dict:
    test = paired_test(d, LEVEL, effect_cis=effect_cis)
    test["participants"] = test.pop("n")
    return {k: test.get(k, float("nan")) for k in PAIR_COLUMNS}


def participant_pair_tests(data: pd.DataFrame, methods: list[str], wilcoxon: bool = True) -> pd.DataFrame:
    """The headline for ratings: per method pair, each participant's mean per method, then the
    paired test of ``analysis.ratings.stats.paired_test`` (t, or the exact test where t is undefined;
    exact Wilcoxon, d_z and rank-biserial with CIs alongside); Holm over pairs on its p.
    ``wilcoxon=False`` (power simulations) skips the effect-size CIs."""
    means = data.groupby(["participant_id", "method"])["rating"].mean().unstack("method")
    rows = []
    for a, b in combinations(methods, 2):
        if a not in means or b not in means:
            continue
        d = (means[a] - means[b]).dropna().to_numpy(float)
        rows.append({"a": a, "b": b, **_pair_row(d, wilcoxon)})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = holm(frame["p"])
    return frame


def reference_differences(usable: pd.DataFrame, reference: str, wilcoxon: bool = True) -> pd.DataFrame:
    """``paired``: per method, the within-trial difference other − reference, averaged per
    participant, then ``paired_test`` across participants (Holm over methods)."""
    rows = []
    keys = [usable["participant_id"], usable["trial"]]
    is_ref = usable["method"].eq(reference)
    size = usable.groupby(keys)["method"].transform("size")
    refs = is_ref.groupby(keys).transform("sum")
    trials = usable[size.eq(2) & refs.eq(1)]  # one reference and one other method per trial
    ref = trials[trials["method"].eq(reference)].set_index(["participant_id", "trial"])["rating"]
    other = trials[~trials["method"].eq(reference)].set_index(["participant_id", "trial"])
    other = other.assign(d=other["rating"] - ref.reindex(other.index).to_numpy())
    per_participant = other.groupby(["method", "participant_id"])["d"].mean()
    for method in sorted(per_participant.index.get_level_values(0).unique()):
        d = per_participant.loc[method].to_numpy(float)
        rows.append({"method": method, "reference": reference, **_pair_row(d, wilcoxon)})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = holm(frame["p"])
    return frame


def repeat_consistency(all_rows: pd.DataFrame) -> pd.DataFrame:
    """Per participant: hidden repeats answered, mean |first − repeat| and exact agreement."""
    rated = all_rows[all_rows["role"].eq("rated") & all_rows["rating"].notna()]
    repeats = all_rows[all_rows["role"].eq("repeat") & all_rows["rating"].notna()]
    first = rated.set_index(["participant_id", "condition_id"])["rating"]
    rows = []
    for pid, part in repeats.groupby("participant_id"):
        pairs = [(first.get((pid, c)), r) for c, r in zip(part["condition_id"], part["rating"])]
        pairs = [(a, b) for a, b in pairs if a is not None and not (isinstance(a, float) and math.isnan(a))]
        if not pairs:
            continue
        a, b = np.array(pairs, float).T
        rows.append({"participant_id": pid, "repeats": len(a), "mean_abs_diff": float(np.abs(a - b).mean()),
                     "exact_agreement": float((a == b).mean())})
    return pd.DataFrame(rows, columns=["participant_id", "repeats", "mean_abs_diff", "exact_agreement"])


def gold_failures(all_rows: pd.DataFrame, gold_method: str) -> pd.DataFrame:
    """Per participant: gold items (the gold method's rated images) answered, and how many got a
    rating outside the accepted ones (flag ``gold_failed``, set by the server)."""
    rows = all_rows[all_rows["role"].eq("rated") & all_rows["method"].eq(gold_method) & all_rows["rating"].notna()]
    failed = rows["flags"].fillna("").map(lambda f: Flag.GOLD_FAILED in f.split(";"))
    frame = rows.assign(gold_failed=failed.astype(int), gold_answered=1)
    return (frame.groupby("participant_id")[["gold_answered", "gold_failed"]].sum().reset_index()
            if len(frame) else pd.DataFrame(columns=["participant_id", "gold_answered", "gold_failed"]))
