"""Significance tests and effect sizes, per cell (paired by participant) and overall.

One rule for a paired comparison everywhere (``paired_test``; Table 1 cells and omnibus, ACR
method pairs, reference differences, pairwise preference shares, power simulations): the paired
t-test where t is defined, the exact signed-rank test where it is not (every difference equal
and non-zero: a unanimous effect gets p = 2/2^n, never 1), p = 1 only when nothing differs;
exact Wilcoxon, d_z (noncentral-t CI) and rank-biserial r (Fisher-z CI) alongside; Holm across
comparisons.

Per cell: Wilcoxon signed-rank with the exact permutation distribution (zeros dropped, "wilcox"
handling; tied |differences| get mid-ranks), computed by the recursion over rank sums rather
than by enumerating the 2^n sign flips; the sign test (exact binomial); the paired t-test; 95%
CIs of each method's mean and of the difference (t-based and bootstrap).  Holm and
Benjamini-Hochberg across cells on the Wilcoxon p.  Omnibus (the headline): per-participant mean
difference (normalized - baseline) per block and overall, by ``paired_test``; then a linear mixed
model rating ~ method + (0 + method | participant) + (0 + method | cell) (``analysis.models.lmm``:
by-participant and by-cell method slopes, REML, Satterthwaite df), or the simpler model it falls
back to.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from stylestudy.analysis.models.lmm import MethodsFit, NoMixedModel, fit_methods

ALPHA = 0.05


def paired_cells(usable: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """(block, row, column) -> participants x {baseline, normalized}, complete pairs only.

    One rating per participant and condition is guaranteed upstream (``analysis.sources.ratings``);
    ``pivot`` raises rather than silently keep one of two."""
    out = {}
    for key, part in usable.groupby(["block", "row", "column"]):
        wide = part.pivot(index="participant_id", columns="method", values="rating")
        if {"baseline", "normalized"} <= set(wide.columns):
            out[tuple(key)] = wide[["baseline", "normalized"]].dropna()
    return out


def signed_rank_null(ranks: np.ndarray) -> np.ndarray:
    """Exact null distribution of T+ (the sum of the ranks given a positive sign; every sign
    equally likely), by the recursion over rank sums instead of enumerating the 2^n flips.

    Mid-ranks are multiples of 1/2, so sums are counted in half units: entry s is P(T+ = s/2)."""
    units = np.rint(2 * np.asarray(ranks, float)).astype(np.int64)
    probs = np.zeros(int(units.sum()) + 1)
    probs[0] = 1.0
    top = 0
    for u in units:  # this rank joins T+ or not: P'(s) = (P(s) + P(s - u)) / 2
        probs[u:top + u + 1] += probs[:top + 1].copy()
        top += int(u)
        probs /= 2.0
    return probs


def wilcoxon_exact(d: np.ndarray) -> tuple[float, float]:
    """(min(T+, T-), two-sided p) with zeros dropped and the exact permutation null of the
    (mid-)ranks: p = 2 min(P(T+ <= t), P(T+ >= t)), capped at 1.  The same number as enumerating
    every sign flip (the test suite checks it against the enumeration), from the rank-sum
    recursion: 40 participants cost microseconds, not 2^40 flips."""
    d = np.asarray(d, float)
    nz = d[d != 0]
    if len(nz) == 0:
        return float("nan"), 1.0
    ranks = sps.rankdata(np.abs(nz))
    t_plus = float(ranks[nz > 0].sum())
    probs = signed_rank_null(ranks)
    t = round(2 * t_plus)
    lower, upper = probs[:t + 1].sum(), probs[t:].sum()
    return min(t_plus, float(ranks.sum()) - t_plus), float(min(1.0, 2 * min(lower, upper)))


def sign_test(d: np.ndarray) -> float:
    nz = d[d != 0]
    if len(nz) == 0:
        return 1.0
    return float(sps.binomtest(int((nz > 0).sum()), len(nz), 0.5).pvalue)


def rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial r = (T+ - T-) / (T+ + T-), zeros dropped."""
    nz = d[d != 0]
    if len(nz) == 0:
        return 0.0
    ranks = sps.rankdata(np.abs(nz))
    return float((ranks[nz > 0].sum() - ranks[nz < 0].sum()) / ranks.sum())


def cohens_dz(d: np.ndarray) -> float:
    sd = d.std(ddof=1) if len(d) > 1 else float("nan")
    if not sd:
        return float("nan") if d.mean() == 0 else math.copysign(float("inf"), d.mean())
    return float(d.mean() / sd)


def t_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    if len(x) < 2:
        return float("nan"), float("nan")
    sem = x.std(ddof=1) / math.sqrt(len(x))
    if sem == 0:
        return float(x.mean()), float(x.mean())
    lo, hi = sps.t.interval(level, len(x) - 1, loc=x.mean(), scale=sem)
    return float(lo), float(hi)


def bootstrap_ci(x: np.ndarray, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap of the mean (9999 resamples); degenerate data give a point."""
    if len(x) < 2 or np.all(x == x[0]):
        return (float(x[0]), float(x[0])) if len(x) else (float("nan"), float("nan"))
    res = sps.bootstrap((x,), np.mean, n_resamples=9999, confidence_level=level, method="percentile",
                        random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def dz_ci(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """CI of Cohen's d_z by inverting the noncentral t (exact for normal differences):
    the noncentrality parameters whose t distribution puts the observed t at the tails."""
    n = len(d)
    sd = d.std(ddof=1) if n > 1 else 0.0
    if n < 2 or not sd:
        return float("nan"), float("nan")
    t_obs, df, root_n = d.mean() / sd * math.sqrt(n), n - 1, math.sqrt(n)
    from scipy.optimize import brentq

    spread = math.sqrt(1 + t_obs**2 / (2 * df))  # approximate sd of t around its noncentrality
    tail = (1 - level) / 2

    def ncp(q: float) -> float:
        def f(nc: float) -> float:  # decreasing in nc
            return sps.nct.cdf(t_obs, df, nc) - q

        return brentq(f, t_obs - 8 * spread - 1, t_obs + 8 * spread + 1, xtol=1e-8)

    try:
        lo, hi = ncp(1 - tail) / root_n, ncp(tail) / root_n
        if math.isfinite(lo) and math.isfinite(hi):
            return float(lo), float(hi)
    except (ValueError, RuntimeError):
        pass  # the noncentral t's tail underflows for very large t: the normal approximation
    half = sps.norm.ppf(1 - tail) * spread / root_n
    return float(t_obs / root_n - half), float(t_obs / root_n + half)


def rank_biserial_ci(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Approximate CI of the matched-pairs rank-biserial r: Fisher's z of r with the null
    standard error of r (2 sd(T+) / max T, as R's ``effectsize`` does).  r = +-1 (every
    difference one way) is pulled in by one rank unit (1 / max T) before the transform and its
    interval closed at +-1, so the other end says how far the data let r fall."""
    nz = d[d != 0]
    m = len(nz)
    if m < 2:
        return float("nan"), float("nan")
    max_t = m * (m + 1) / 2
    r_obs = rank_biserial(d)
    r = float(np.clip(r_obs, -1 + 1 / max_t, 1 - 1 / max_t))
    se = 2 * math.sqrt(m * (m + 1) * (2 * m + 1) / 24) / max_t
    q = sps.norm.ppf(1 - (1 - level) / 2)
    lo, hi = float(np.tanh(np.arctanh(r) - q * se)), float(np.tanh(np.arctanh(r) + q * se))
    return (-1.0 if r_obs <= -1 else lo), (1.0 if r_obs >= 1 else hi)


def paired_test(d: np.ndarray, level: float = 0.95, effect_cis: bool = True) -> dict:
    """The headline test of one paired comparison (per-participant differences ``d``).

    One rule for every protocol: the paired t-test where t is defined; where every difference
    is the same non-zero number (a unanimous effect: sd 0, t undefined) the exact signed-rank
    test, whose p (2 / 2^n) is what the data can say; p = 1 only when nothing differs.  The
    exact Wilcoxon p, d_z and rank-biserial r (with CIs) go alongside."""
    d = np.asarray(d, float)
    n = len(d)
    sd = d.std(ddof=1) if n > 1 else float("nan")
    w_stat, p_w = wilcoxon_exact(d)
    if n > 1 and sd > 0:
        t = float(d.mean() / (sd / math.sqrt(n)))
        p_t = float(2 * sps.t.sf(abs(t), n - 1))
        p, test = p_t, "paired t"
    else:
        t, p_t = (float("nan"), float("nan"))
        if n == 0:
            p, test = float("nan"), "no data"
        elif not d.any():
            p, test = 1.0, "no differences"
        else:  # unanimous (or one participant): t undefined, the exact test answers
            p, test = p_w, "exact signed-rank (t undefined: all differences equal)"
    lo, hi = t_ci(d, level)
    out = {"n": n, "mean_diff": float(d.mean()) if n else float("nan"), "ci_low": lo, "ci_high": hi,
           "t": t, "df": n - 1, "p_ttest": p_t, "wilcoxon_stat": w_stat, "p_wilcoxon": p_w, "p": p, "test": test,
           "cohens_dz": cohens_dz(d) if n else float("nan"),
           "rank_biserial": rank_biserial(d) if n else float("nan")}
    if effect_cis:
        out["dz_ci_low"], out["dz_ci_high"] = dz_ci(d, level)
        out["rb_ci_low"], out["rb_ci_high"] = rank_biserial_ci(d, level)
    return out


def min_attainable_p(n_nonzero: int) -> float:
    """Smallest two-sided p an exact signed-rank or sign test can give with n non-zero pairs."""
    return 1.0 if n_nonzero == 0 else min(1.0, 2.0 / 2**n_nonzero)


def cell_tests(usable: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rows = []
    for (block, row, column), wide in sorted(paired_cells(usable).items()):
        b, n = wide["baseline"].to_numpy(float), wide["normalized"].to_numpy(float)
        d = n - b
        test = paired_test(d)
        rows.append({
            "block": block, "row": row, "column": column, "n_pairs": len(d), "n_nonzero": int((d != 0).sum()),
            "mean_baseline": b.mean(), "mean_normalized": n.mean(), "mean_diff": d.mean(),
            "ci_baseline_t": t_ci(b), "ci_normalized_t": t_ci(n), "ci_diff_t": t_ci(d),
            "ci_baseline_boot": bootstrap_ci(b, seed), "ci_normalized_boot": bootstrap_ci(n, seed),
            "ci_diff_boot": bootstrap_ci(d, seed),
            "wilcoxon_stat": test["wilcoxon_stat"], "p_wilcoxon": test["p_wilcoxon"], "p_sign": sign_test(d),
            "p_ttest": test["p_ttest"], "p_paired": test["p"], "paired_test": test["test"],
            "rank_biserial": test["rank_biserial"], "rb_ci": (test["rb_ci_low"], test["rb_ci_high"]),
            "cohens_dz": test["cohens_dz"], "dz_ci": (test["dz_ci_low"], test["dz_ci_high"]),
            "min_attainable_p": min_attainable_p(int((d != 0).sum())),
        })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["p_holm"] = multipletests(frame["p_wilcoxon"], alpha=ALPHA, method="holm")[1]
        frame["p_bh"] = multipletests(frame["p_wilcoxon"], alpha=ALPHA, method="fdr_bh")[1]
    return frame


def attainability(cells: pd.DataFrame, alpha: float = ALPHA) -> dict:
    """Whether any cell can pass the corrected threshold at all: the smallest p-value an exact
    test can give at the cells' counts against Holm's first threshold (numbers; the report words them)."""
    if cells.empty:
        return {"cells": 0}
    m = len(cells)
    best = float(cells["min_attainable_p"].min())
    return {"cells": m, "max_nonzero": int(cells["n_nonzero"].max()), "min_attainable_p": best, "alpha": alpha,
            "holm_first_threshold": alpha / m, "attainable": bool(best <= alpha / m)}


def participant_differences(usable: pd.DataFrame, block: str | None = None) -> pd.Series:
    """Per participant: mean over cells of (normalized - baseline), complete pairs only."""
    diffs = []
    for (b, _row, _col), wide in paired_cells(usable).items():
        if block is None or b == block:
            diffs.append((wide["normalized"] - wide["baseline"]).rename("d"))
    if not diffs:
        return pd.Series(dtype=float)
    return pd.concat(diffs).groupby(level=0).mean()


def omnibus(usable: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for block in [None, *sorted(usable["block"].unique())]:
        d = participant_differences(usable, block).to_numpy(float)
        if len(d) == 0:
            continue
        test = paired_test(d)
        rows.append({"scope": "all blocks" if block is None else f"block {block}", "participants": len(d),
                     "mean_diff": d.mean(), "ci_t": t_ci(d), "ci_boot": bootstrap_ci(d), "p": test["p"],
                     "test": test["test"], "p_ttest": test["p_ttest"], "p_wilcoxon": test["p_wilcoxon"],
                     "cohens_dz": test["cohens_dz"], "dz_ci": (test["dz_ci_low"], test["dz_ci_high"]),
                     "rank_biserial": test["rank_biserial"], "rb_ci": (test["rb_ci_low"], test["rb_ci_high"])})
    return pd.DataFrame(rows)


def mixed_model(usable: pd.DataFrame, selection: str = "items", variances: str = "unrestricted",
                generalise: str = "participants") -> MethodsFit | NoMixedModel:
    """normalized - baseline from ``rating ~ method * cell (cells fixed) + (0 + method | participant)``
    (``generalise`` "items": the cells random and crossed, ``+ (0 + method | cell)``; REML,
    Satterthwaite df; ``analysis.models.lmm``), or the simpler model it falls back to, which the
    result's notes say; its first contrast is normalized - baseline."""

    data = usable[["rating", "method", "participant_id", "block", "row", "column"]].copy()
    data["cell"] = data["block"].astype(str) + "-" + data["row"].astype(str) + "-" + data["column"].astype(str)
    data = data.rename(columns={"participant_id": "participant"})
    data = data[data["method"].isin(["baseline", "normalized"])]
    return fit_methods(data, ["normalized", "baseline"], item="cell", selection=selection, variances=variances,
                       generalise=generalise)
