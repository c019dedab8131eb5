"""Rater checks: ITU-R BT.500 observer screening and inter-rater agreement.

BT.500 (Annex 2, section 2.3.1, the beta-2 rule): for each presentation (stimulus) compute the
mean u, standard deviation s and kurtosis beta2 = m4 / m2^2 of the ratings.  If 2 <= beta2 <= 4
(close to normal) a rating counts as high (P) when >= u + 2s and low (Q) when <= u - 2s;
otherwise the band is u +/- sqrt(20) s.  An observer is rejected when
(P + Q) / N > 0.05 and |P - Q| / (P + Q) < 0.3, N = number of their ratings.

Agreement: Krippendorff's alpha (ordinal; the ``krippendorff`` package) over raters x conditions,
and ICC(2,1) / ICC(2,k) (two-way random effects, absolute agreement; Shrout & Fleiss 1979) over
the conditions every rater rated.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


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
    if n < 2 or k < 2:
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
