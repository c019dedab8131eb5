"""Pairwise preferences (the ``pairwise`` protocol): who beat whom, and a scale for the methods.

* Comparisons: one per answered trial (winner, loser, or a tie when "No preference" was chosen).
* Preference matrix and win rates; a tie counts half a win for each side.
* Bradley–Terry scores (log-strengths, mean 0) fitted by ``choix`` (iterative Luce spectral
  ranking, ``ilsr_pairwise``, with a small ridge ``alpha`` so a method that never lost still has
  a finite score).  Ties count half: every decisive comparison enters twice and every tie once
  in each direction.  95% CIs: percentile bootstrap over participants (their trials resampled
  as a whole, since one participant's choices are not independent).
* Thurstone Case V scale, ``s_i = mean_j Φ⁻¹(p_ij)`` with ``z_ii = 0`` (Mosteller's least-squares
  solution; p clipped to [0.01, 0.99]), as a check on
  the BT ranking: Kendall's τ between the two, and the mean |p_ij − Φ(s_i − s_j)| misfit.
* Per method pair: per-participant preference share minus ½, t-test across participants
  (Holm); beside it the exact binomial test of the decisive comparisons, which ignores that
  one participant's choices are correlated.
* Consistency per participant: the majority winner of each method pair forms a tournament;
  Kendall's coefficient of consistence ζ = 1 − d / d_max over its circular triads d.
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

LEVEL = 0.95
ALPHA_RIDGE = 1e-3


def comparisons(usable: pd.DataFrame) -> pd.DataFrame:
    """One row per answered pairwise trial: participant, trial, item, a, b (a < b by name) and
    ``outcome`` = 1 (a preferred), 0 (b preferred) or 0.5 (no preference)."""
    columns = ["participant_id", "trial", "item", "a", "b", "outcome"]
    frame = usable[["participant_id", "trial", "method", "rating", "flags", "row_label"]]
    frame = frame.sort_values(["participant_id", "trial", "method"], kind="stable")
    both = frame.groupby(["participant_id", "trial"], sort=False)["method"].transform("size").eq(2)
    frame = frame[both]  # trials with both rows usable, now in consecutive (a, b) pairs
    a, b = frame.iloc[0::2].reset_index(drop=True), frame.iloc[1::2].reset_index(drop=True)
    tie = a["flags"].fillna("").astype(str).map(lambda f: "no_preference" in f.split(";"))
    outcome = np.where(tie, 0.5, np.where(a["rating"].eq(1) & b["rating"].eq(0), 1.0,
                                          np.where(a["rating"].eq(0) & b["rating"].eq(1), 0.0, np.nan)))
    out = pd.DataFrame({"participant_id": a["participant_id"], "trial": a["trial"], "item": a["row_label"],
                        "a": a["method"], "b": b["method"], "outcome": outcome}, columns=columns)
    return out.dropna(subset=["outcome"]).reset_index(drop=True)


def position_bias(usable: pd.DataFrame) -> dict:
    """How often the image shown first (left) was chosen in decisive trials, with the exact
    binomial test against 1/2: the order is randomised, so a bias here is the participants'."""
    first = usable[usable["position"].astype(int).eq(1)]
    decisive = first[~first["flags"].fillna("").astype(str).map(lambda f: "no_preference" in f.split(";"))]
    chosen = int(decisive["rating"].eq(1).sum())
    n = len(decisive)
    return {"decisive": n, "image1_share": chosen / n if n else float("nan"),
            "p": float(sps.binomtest(chosen, n).pvalue) if n else float("nan")}


def preference_matrix(comps: pd.DataFrame, methods: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(wins, counts): wins[i, j] = times i was preferred over j (ties half), counts[i, j] = comparisons."""
    wins = pd.DataFrame(0.0, index=methods, columns=methods)
    counts = pd.DataFrame(0, index=methods, columns=methods)
    for a, b, o in comps[["a", "b", "outcome"]].itertuples(index=False, name=None):
        wins.loc[a, b] += o
        wins.loc[b, a] += 1 - o
        counts.loc[a, b] += 1
        counts.loc[b, a] += 1
    return wins, counts


def win_rates(comps: pd.DataFrame, methods: list[str]) -> pd.Series:
    wins, counts = preference_matrix(comps, methods)
    total = counts.sum(axis=1)
    return (wins.sum(axis=1) / total.where(total > 0)).rename("win_rate")


def _choix_data(comps: pd.DataFrame, index: dict[str, int]) -> list[tuple[int, int]]:
    data = []
    for a, b, o in comps[["a", "b", "outcome"]].itertuples(index=False, name=None):
        i, j = index[a], index[b]
        if o == 1:
            data += [(i, j), (i, j)]
        elif o == 0:
            data += [(j, i), (j, i)]
        else:
            data += [(i, j), (j, i)]
    return data


def bradley_terry(comps: pd.DataFrame, methods: list[str], alpha: float = ALPHA_RIDGE) -> np.ndarray:
    """BT log-strengths (mean 0) by choix's ILSR; ties half (see the module docstring)."""
    return _fit(_choix_data(comps, {m: i for i, m in enumerate(methods)}), len(methods), alpha)


def _fit(data: list[tuple[int, int]], n: int, alpha: float = ALPHA_RIDGE) -> np.ndarray:
    import choix

    if not data:
        return np.full(n, np.nan)
    scores = np.asarray(choix.ilsr_pairwise(n, data, alpha=alpha), float)
    return scores - scores.mean()


def bt_table(comps: pd.DataFrame, methods: list[str], reps: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per method: BT score, bootstrap 95% CI over participants, win rate, comparisons, the
    bootstrap share of resamples in which it ranks first, and its rank."""
    scores = bradley_terry(comps, methods)
    index = {m: i for i, m in enumerate(methods)}
    by_participant = [_choix_data(part, index) for _, part in comps.groupby("participant_id")]
    rng = np.random.default_rng(seed)
    boot = np.empty((reps, len(methods)))
    for r in range(reps):
        sample = rng.integers(0, len(by_participant), len(by_participant))
        boot[r] = _fit([c for k in sample for c in by_participant[k]], len(methods))
    lo, hi = np.nanquantile(boot, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2], axis=0)
    best = np.bincount(np.nanargmax(boot, axis=1), minlength=len(methods)) / reps
    _, counts = preference_matrix(comps, methods)
    frame = pd.DataFrame({"method": methods, "bt_score": scores, "ci_low": lo, "ci_high": hi,
                          "win_rate": win_rates(comps, methods).to_numpy(), "comparisons": counts.sum(axis=1).to_numpy(),
                          "p_best": best})
    frame = frame.sort_values("bt_score", ascending=False, ignore_index=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


def thurstone_case_v(comps: pd.DataFrame, methods: list[str]) -> tuple[pd.Series, float]:
    """(scale values, mean |observed − predicted| preference probability)."""
    wins, counts = preference_matrix(comps, methods)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (wins / counts).to_numpy(float)
    z = sps.norm.ppf(np.clip(p, 0.01, 0.99))
    np.fill_diagonal(z, 0.0)  # Mosteller's least-squares solution: the row mean with z_ii = 0
    scale = np.nanmean(z, axis=1)
    scale = scale - np.nanmean(scale)
    predicted = sps.norm.cdf(scale[:, None] - scale[None, :])
    mask = ~np.isnan(p) & ~np.eye(len(methods), dtype=bool)
    misfit = float(np.abs(p[mask] - predicted[mask]).mean()) if mask.any() else float("nan")
    return pd.Series(scale, index=methods, name="thurstone"), misfit


def pair_tests(comps: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per method pair: share of a over b, per-participant t-test of (share − ½), binomial test."""
    rows = []
    for a, b in combinations(sorted(methods), 2):
        part = comps[(comps["a"] == a) & (comps["b"] == b)]
        if part.empty:
            continue
        shares = part.groupby("participant_id")["outcome"].mean().to_numpy(float) - 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p_t = float(sps.ttest_1samp(shares, 0).pvalue) if len(shares) > 1 and shares.std() > 0 else float("nan")
        decisive = part[part["outcome"] != 0.5]
        a_wins = int((decisive["outcome"] == 1).sum())
        p_binom = float(sps.binomtest(a_wins, len(decisive)).pvalue) if len(decisive) else float("nan")
        rows.append({"a": a, "b": b, "comparisons": len(part), "ties": int((part["outcome"] == 0.5).sum()),
                     "share_a": float(part["outcome"].mean()), "participants": len(shares), "p_ttest": p_t,
                     "p_binomial": p_binom})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = multipletests(frame["p_ttest"].fillna(1.0), method="holm")[1]
    return frame


def circular_triads(comps: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per participant: method pairs with a majority winner, circular triads d among the complete
    triples, and Kendall's ζ = 1 − d / d_max (NaN below three methods)."""
    m = len(methods)
    d_max = (m**3 - m) / 24 if m % 2 else (m**3 - 4 * m) / 24
    rows = []
    for pid, part in comps.groupby("participant_id"):
        beats: dict[tuple[str, str], bool] = {}
        for (a, b), pair in part.groupby(["a", "b"]):
            share = pair["outcome"].mean()
            if share != 0.5:
                beats[(a, b)] = share > 0.5
                beats[(b, a)] = share < 0.5
        d = 0
        complete = 0
        for x, y, z in combinations(methods, 3):
            if all((u, v) in beats for u, v in ((x, y), (y, z), (x, z))):
                complete += 1
                if beats[(x, y)] == beats[(y, z)] == beats[(z, x)]:
                    d += 1
        rows.append({"participant_id": pid, "decided_pairs": len(beats) // 2, "complete_triples": complete,
                     "circular_triads": d, "zeta": 1 - d / d_max if d_max and complete else float("nan")})
    return pd.DataFrame(rows, columns=["participant_id", "decided_pairs", "complete_triples", "circular_triads", "zeta"])
