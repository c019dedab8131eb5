"""Rater checks: ITU-R BT.500 observer screening and inter-rater agreement.

BT.500 (Annex 2, section 2.3.1, the beta-2 rule): for each presentation (stimulus) compute the
mean u, standard deviation s and kurtosis beta2 = m4 / m2^2 of the ratings.  If 2 <= beta2 <= 4
(close to normal) a rating counts as high (P) when >= u + 2s and low (Q) when <= u - 2s;
otherwise the band is u +/- sqrt(20) s.  An observer is rejected when
(P + Q) / N > 0.05 and |P - Q| / (P + Q) < 0.3, N = number of their ratings.

Agreement: Krippendorff's alpha (ordinal; the ``krippendorff`` package) over raters x conditions,
and ICC(2,1) / ICC(2,k) (two-way random effects, absolute agreement; Shrout & Fleiss 1979) over
the conditions every rater rated.  For pairwise judgments, Kendall's coefficient of agreement u
with its chi-square test.

Leave-one-out screening (P.913-style): each rater's Pearson correlation with the mean of the
other raters on the same conditions; a rater below ``min_r`` is flagged.  It catches what the
beta-2 rule misses (a rater answering at random, or with the scale reversed, sits inside the
u +/- 2s band on most stimuli); BT.500 is kept beside it and every exclusion names its rule.
"""

from __future__ import annotations

import math
from math import comb

import numpy as np
import pandas as pd
from scipy import stats as sps

LOO_MIN_R = 0.3  # default threshold of the leave-one-out correlation (analyze --rater-min-r)


def bt500_screening(usable: pd.DataFrame) -> pd.DataFrame:
    """Per participant: P, Q, N and whether BT.500 rejects them."""
    counts = {pid: {"P": 0, "Q": 0, "N": 0} for pid in usable["participant_id"].unique()}
    for _, part in usable.groupby("condition_id"):
        x = part["rating"].to_numpy(float)
        if len(x) < 2:
            continue
        u, s = x.mean(), x.std(ddof=1)
        m2 = ((x - u) ** 2).mean()
        beta2 = ((x - u) ** 4).mean() / m2**2 if m2 > 0 else float("nan")
        k = 2.0 if 2 <= beta2 <= 4 else math.sqrt(20)
        for pid, value in zip(part["participant_id"], x):
            c = counts[pid]
            c["N"] += 1
            if s > 0 and value >= u + k * s:
                c["P"] += 1
            if s > 0 and value <= u - k * s:
                c["Q"] += 1
    rows = []
    for pid, c in counts.items():
        pq = c["P"] + c["Q"]
        reject = c["N"] > 0 and pq / c["N"] > 0.05 and abs(c["P"] - c["Q"]) / pq < 0.3 if pq else False
        rows.append({"participant_id": pid, **c, "rejected": bool(reject)})
    return pd.DataFrame(rows).sort_values("participant_id").reset_index(drop=True)


def rating_matrix(usable: pd.DataFrame) -> pd.DataFrame:
    """Raters (rows) x conditions (columns), NaN where missing (one rating per cell: see ``ratings``)."""
    return usable.pivot(index="participant_id", columns="condition_id", values="rating")


def krippendorff_alpha(usable: pd.DataFrame) -> float:
    import krippendorff

    matrix = rating_matrix(usable)
    if matrix.shape[0] < 2 or matrix.shape[1] < 2:
        return float("nan")
    values = matrix.to_numpy(float)
    if np.nanstd(values) == 0:
        return float("nan")
    # The scale points, plus half points where --duplicates mean averaged two ratings.
    domain = sorted(set(range(1, int(np.nanmax(values)) + 1)) | set(np.unique(values[~np.isnan(values)]).tolist()))
    return float(krippendorff.alpha(reliability_data=values, level_of_measurement="ordinal", value_domain=domain))


def icc(matrix: np.ndarray) -> dict[str, float]:
    """ICC(2,1) and ICC(2,k) for targets (rows) x raters (columns), complete data."""
    n, k = matrix.shape
    if n < 2 or k < 2 or np.ptp(matrix) == 0:  # no variation at all: agreement is undefined, not 0/0
        return {"icc2_1": float("nan"), "icc2_k": float("nan"), "targets": n, "raters": k}
    grand = matrix.mean()
    ss_rows = k * ((matrix.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((matrix.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((matrix - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    icc21 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icc2k = (msr - mse) / (msr + (msc - mse) / n)
    return {"icc2_1": float(icc21), "icc2_k": float(icc2k), "targets": n, "raters": k}


def agreement(usable: pd.DataFrame) -> dict:
    complete = rating_matrix(usable).T.dropna(axis=0, how="any")  # stimuli x raters
    return {"krippendorff_alpha_ordinal": krippendorff_alpha(usable), **icc(complete.to_numpy(float))}


def loo_correlation(usable: pd.DataFrame, min_r: float = LOO_MIN_R) -> pd.DataFrame:
    """Per rater: Pearson r of their ratings with the others' mean rating of the same
    conditions (the leave-one-out MOS), the conditions it rests on, and whether r < min_r."""
    matrix = rating_matrix(usable)
    values = matrix.to_numpy(float)
    present = ~np.isnan(values)
    sums, counts = np.nansum(values, axis=0), present.sum(axis=0)
    rows = []
    for k, pid in enumerate(matrix.index):
        others = counts - present[k]
        loo = (sums - np.where(present[k], values[k], 0.0)) / np.where(others > 0, others, np.nan)
        ok = present[k] & ~np.isnan(loo)
        x, y = values[k, ok], loo[ok]
        r = float(np.corrcoef(x, y)[0, 1]) if ok.sum() >= 3 and x.std() > 0 and y.std() > 0 else float("nan")
        rows.append({"participant_id": pid, "conditions": int(ok.sum()), "r_loo": r,
                     "loo_rejected": bool(not math.isnan(r) and r < min_r)})
    return pd.DataFrame(rows, columns=["participant_id", "conditions", "r_loo", "loo_rejected"])


def screening(usable: pd.DataFrame, min_r: float = LOO_MIN_R) -> pd.DataFrame:
    """BT.500's rule and the leave-one-out correlation side by side; ``flagged_by`` names the
    rule(s) that flag each rater."""
    frame = bt500_screening(usable).merge(loo_correlation(usable, min_r), on="participant_id", how="outer")
    frame["flagged_by"] = [";".join(r for r, hit in (("bt500", b), (f"loo_r<{min_r:g}", lo)) if hit is True)
                           for b, lo in zip(frame["rejected"], frame["loo_rejected"])]
    return frame.rename(columns={"rejected": "bt500_rejected"})


def kendall_u(comps: pd.DataFrame) -> dict:
    """Kendall's coefficient of agreement u over pairwise judgments (Kendall & Babington Smith
    1940): every comparison is a judgment; a tie counts half for each side.  u = 1: all
    judgments of each pair agree; u near 0 (its minimum is -1/(n-1)): no more agreement than
    chance.  Test of H0 "judgments at random": Kendall's chi-square, summed over method pairs
    so that unequal numbers of judgments per pair are allowed (with equal n and no ties it is
    Kendall's statistic: 4/(n-2) [sum C(a,2) - C(m,2) C(n,2)(n-3)/(2(n-2))], df = C(m,2) n(n-1)/(n-2)^2);
    pairs judged fewer than 3 times and ties are left out of the test (counted)."""
    agreements, possible = 0.0, 0.0
    chi2, df, tested, skipped = 0.0, 0.0, 0, 0
    for _, pair in comps.groupby(["a", "b"]):
        o = pair["outcome"].to_numpy(float)
        n = len(o)
        a = o.sum()
        agreements += a * (a - 1) / 2 + (n - a) * (n - a - 1) / 2
        possible += comb(n, 2)
        decisive = o[o != 0.5]
        nd = len(decisive)
        if nd < 3:
            skipped += 1
            continue
        ad = int(decisive.sum())
        sigma = comb(ad, 2) + comb(nd - ad, 2)
        chi2 += 4 / (nd - 2) * (sigma - comb(nd, 2) * (nd - 3) / (2 * (nd - 2)))
        df += nd * (nd - 1) / (nd - 2) ** 2
        tested += 1
    u = 2 * agreements / possible - 1 if possible else float("nan")
    p = float(sps.chi2.sf(chi2, df)) if tested else float("nan")
    return {"u": float(u), "chi2": float(chi2) if tested else float("nan"), "df": float(df) if tested else float("nan"),
            "p": p, "pairs_tested": tested, "pairs_skipped": skipped,
            "ties_left_out_of_test": int((comps["outcome"] == 0.5).sum())}


def pairwise_agreement(comps: pd.DataFrame, methods: list[str], alpha: float = 0.05) -> pd.DataFrame:
    """Per participant (pairwise): the share of their decisive choices that pick the method the
    other participants' Bradley–Terry fit (leave-one-out) scores higher, and the one-sided
    binomial p of a share that low under 1/2.  Flagged: agreeing less than chance (p < alpha),
    e.g. a participant who answers the question reversed.  A participant choosing at random sits
    near 1/2 and is not flagged here; their circular triads show them.  ``counted``: decisive
    choices between two methods the others' fit does not score equal."""
    from stylestudy.analysis.pairwise import scale as pairwise_scale
    from stylestudy.analysis.pairwise import scaling

    Wp, pids = pairwise_scale.participant_matrices(comps, methods)
    loo = np.zeros((len(pids), len(methods)))
    if len(pids) > 1:
        loo = scaling.fit(Wp.sum(0)[None] - Wp, "bt", prior_sd=5.0)
    index = {m: i for i, m in enumerate(methods)}
    rows = []
    for k, pid in enumerate(pids):
        part = comps[comps["participant_id"].eq(pid) & comps["outcome"].ne(0.5)]
        winner = np.where(part["outcome"].eq(1), part["a"], part["b"])
        loser = np.where(part["outcome"].eq(1), part["b"], part["a"])
        diff = np.array([loo[k, index[w]] - loo[k, index[v]] for w, v in zip(winner, loser)])
        decided = diff != 0
        agree = int((diff > 0).sum())
        n = int(decided.sum())
        p = float(sps.binomtest(agree, n, 0.5, alternative="less").pvalue) if n else float("nan")
        rows.append({"participant_id": pid, "counted": n, "agreement": agree / n if n else float("nan"),
                     "p_less_than_chance": p, "flagged": bool(n and p < alpha)})
    return pd.DataFrame(rows, columns=["participant_id", "counted", "agreement", "p_less_than_chance", "flagged"])
