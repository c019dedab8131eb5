"""Scores of any number of methods on a category scale: the ``acr`` protocol, and ``paired``
studies of imported methods (a reference against each other method).

* MOS ± 95% CI per condition (item × method): mean ± t(0.975, n−1)·s/√n over its ratings, the
  usual per-condition interval (ITU-T P.1401 with the t quantile).
* MOS ± 95% CI per method: participants rate many items, so the ratings of one method are not
  independent; the interval is a percentile bootstrap over participants (resample participants
  with replacement, recompute the method's mean over all of their ratings).
* Method differences: a linear mixed model ``rating ~ method + (1 | participant) + (1 | item)``
  (crossed random intercepts as statsmodels variance components, as in the Table 1 analysis),
  every pair of methods as a Wald contrast from that one fit, Holm-corrected; beside it, per
  pair, the paired t-test and exact Wilcoxon test of per-participant method means.
* ``paired`` only: the within-trial difference (other − reference), per participant averaged,
  for each method against the reference.
* Intra-rater consistency from hidden repeats; gold-item failures per participant.
"""

from __future__ import annotations

import math
import warnings
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from stylestudy.analysis.stats import t_ci, wilcoxon_exact

LEVEL = 0.95


def one_per_condition(usable: pd.DataFrame) -> pd.DataFrame:
    """One rating per (participant, condition): a paired study shows its reference once per other
    method, so its ratings are averaged (ACR data have one already, repeats aside)."""
    keys = ["participant_id", "condition_id", "method", "row_label"]
    return usable.groupby(keys, as_index=False)["rating"].mean()


def condition_mos(usable: pd.DataFrame) -> pd.DataFrame:
    """Per condition (item × method): n, MOS, std (ddof 1) and the t-based 95% CI."""
    rows = []
    for (item, method, cid), part in usable.groupby(["row_label", "method", "condition_id"]):
        x = part["rating"].to_numpy(float)
        lo, hi = t_ci(x, LEVEL)
        rows.append({"item": item, "method": method, "condition_id": cid, "n": len(x), "mos": x.mean(),
                     "std": x.std(ddof=1) if len(x) > 1 else float("nan"), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def method_mos(usable: pd.DataFrame, methods: list[str], reps: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per method: n, MOS and a participant-bootstrap 95% CI."""
    participants = np.array(sorted(usable["participant_id"].unique()))
    sums = usable.groupby(["participant_id", "method"])["rating"].agg(["sum", "count"]).unstack("method")
    total = sums["sum"].reindex(index=participants, columns=methods).fillna(0).to_numpy()
    count = sums["count"].reindex(index=participants, columns=methods).fillna(0).to_numpy()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(participants), (reps, len(participants)))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = total[draws].sum(axis=1) / count[draws].sum(axis=1)  # reps x methods
    alpha = (1 - LEVEL) / 2
    rows = []
    for j, m in enumerate(methods):
        x = usable.loc[usable["method"] == m, "rating"].to_numpy(float)
        lo, hi = np.nanquantile(boot[:, j], [alpha, 1 - alpha]) if len(x) else (float("nan"), float("nan"))
        rows.append({"method": m, "n": len(x), "participants": int((count[:, j] > 0).sum()),
                     "mos": x.mean() if len(x) else float("nan"), "std": x.std(ddof=1) if len(x) > 1 else float("nan"),
                     "ci_low": float(lo), "ci_high": float(hi)})
    return pd.DataFrame(rows).sort_values("mos", ascending=False, ignore_index=True)


def mixed_contrasts(data: pd.DataFrame, methods: list[str]) -> dict:
    """``rating ~ method + (1 | participant) + (1 | item)``; every method pair as a Wald contrast."""
    import statsmodels.formula.api as smf

    frame = data[["rating", "method", "participant_id", "row_label"]].copy()
    frame["method"] = pd.Categorical(frame["method"], categories=methods)
    frame["everyone"] = 1
    if frame["participant_id"].nunique() < 2 or frame["method"].nunique() < 2:
        return {"error": "needs at least two participants and two methods"}
    vc = {"participant": "0 + C(participant_id)"}
    if frame["row_label"].nunique() > 1:
        vc["item"] = "0 + C(row_label)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = smf.mixedlm("rating ~ method", frame, groups=frame["everyone"], re_formula="0", vc_formula=vc)
            fit = model.fit(reml=True, method=["lbfgs", "powell"])
    except (ValueError, np.linalg.LinAlgError) as exc:
        return {"error": f"mixed model did not fit: {exc}"}
    names = {m: (None if i == 0 else f"method[T.{m}]") for i, m in enumerate(methods)}
    cov = fit.cov_params()
    rows = []
    for a, b in combinations(methods, 2):
        vector = pd.Series(0.0, index=fit.params.index)
        if names[a]:
            vector[names[a]] += 1
        if names[b]:
            vector[names[b]] -= 1
        estimate = float(vector @ fit.params)
        se = float(np.sqrt(vector @ cov.loc[vector.index, vector.index] @ vector))
        z = estimate / se if se > 0 else float("nan")
        p = float(2 * sps.norm.sf(abs(z))) if se > 0 else float("nan")
        q = sps.norm.ppf(1 - (1 - LEVEL) / 2)
        rows.append({"a": a, "b": b, "estimate": estimate, "se": se, "ci_low": estimate - q * se,
                     "ci_high": estimate + q * se, "p": p})
    contrasts = pd.DataFrame(rows)
    contrasts["p_holm"] = multipletests(contrasts["p"].fillna(1.0), method="holm")[1]
    variances = dict(zip(model.exog_vc.names, (float(v) for v in fit.vcomp)))
    return {"formula": "rating ~ method + (1 | participant) + (1 | item)", "contrasts": contrasts,
            "participant_var": variances.get("participant", float("nan")),
            "item_var": variances.get("item", float("nan")), "residual_var": float(fit.scale),
            "n_obs": int(fit.nobs), "converged": bool(fit.converged)}


def participant_pair_tests(data: pd.DataFrame, methods: list[str], wilcoxon: bool = True) -> pd.DataFrame:
    """Per method pair: paired t and exact Wilcoxon over per-participant method means; Holm on
    the t-test.  ``wilcoxon=False`` (power simulations) skips the permutation test."""
    means = data.groupby(["participant_id", "method"])["rating"].mean().unstack("method")
    rows = []
    for a, b in combinations(methods, 2):
        if a not in means or b not in means:
            continue
        d = (means[a] - means[b]).dropna().to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p_t = float(sps.ttest_1samp(d, 0).pvalue) if len(d) > 1 and d.std() > 0 else float("nan")
        p_w = _wilcoxon(d) if wilcoxon else float("nan")
        lo, hi = t_ci(d, LEVEL)
        rows.append({"a": a, "b": b, "participants": len(d), "mean_diff": d.mean() if len(d) else float("nan"),
                     "ci_low": lo, "ci_high": hi, "p_ttest": p_t, "p_wilcoxon": p_w})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = multipletests(frame["p_ttest"].fillna(1.0), method="holm")[1]
    return frame


def _wilcoxon(d: np.ndarray) -> float:
    """Exact (all sign flips) up to 20 participants, else the normal approximation."""
    if len(d) <= 20:
        return wilcoxon_exact(d)[1]
    return float(sps.wilcoxon(d[d != 0]).pvalue) if (d != 0).any() else 1.0


def reference_differences(usable: pd.DataFrame, reference: str, wilcoxon: bool = True) -> pd.DataFrame:
    """``paired``: per method, the within-trial difference other − reference, averaged per
    participant, then t and Wilcoxon across participants (Holm over methods)."""
    rows = []
    trials = usable.groupby(["participant_id", "trial"])
    diffs: dict[str, dict[str, list[float]]] = {}
    for (pid, _), part in trials:
        if len(part) != 2 or reference not in set(part["method"]):
            continue
        ref = part.loc[part["method"] == reference, "rating"].iloc[0]
        other = part[part["method"] != reference]
        if len(other) != 1:
            continue
        diffs.setdefault(other["method"].iloc[0], {}).setdefault(pid, []).append(other["rating"].iloc[0] - ref)
    for method, by_participant in sorted(diffs.items()):
        d = np.array([np.mean(v) for v in by_participant.values()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p_t = float(sps.ttest_1samp(d, 0).pvalue) if len(d) > 1 and d.std() > 0 else float("nan")
        lo, hi = t_ci(d, LEVEL)
        rows.append({"method": method, "reference": reference, "participants": len(d), "mean_diff": d.mean(),
                     "ci_low": lo, "ci_high": hi, "p_ttest": p_t, "p_wilcoxon": _wilcoxon(d) if wilcoxon else float("nan")})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = multipletests(frame["p_ttest"].fillna(1.0), method="holm")[1]
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
    failed = rows["flags"].fillna("").map(lambda f: "gold_failed" in f.split(";"))
    frame = rows.assign(gold_failed=failed.astype(int), gold_answered=1)
    return (frame.groupby("participant_id")[["gold_answered", "gold_failed"]].sum().reset_index()
            if len(frame) else pd.DataFrame(columns=["participant_id", "gold_answered", "gold_failed"]))
