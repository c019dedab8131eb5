"""Pairwise preferences (the ``pairwise`` protocol): who beat whom, and a scale for the methods.

* Comparisons: one per answered trial (winner, loser, or a tie when "No preference" was chosen).
* Preference matrix and win rates; a tie counts half a win for each side.
* Bradley–Terry log-strengths and JOD (Thurstone Case V in pwcmp's units: 1 JOD = 75%
  preference), both by maximum likelihood for any design (``analysis.pairwise.scaling``); a method the
  data cannot place (never won, never lost, never compared) gets a bound and a labelled
  prior-regularised value (``analysis.pairwise.separation``); 95% intervals from a bootstrap over
  participants with a t(n−1) quantile (``analysis.pairwise.scale``).  Ties count half.
  choix's ILSR fit stays as the library cross-check (``bradley_terry``).
* Thurstone Case V scale in z units (``thurstone_case_v``): the JOD / 1.4826, with the mean
  |p_ij − Φ(s_i − s_j)| misfit over compared pairs.
* Per method pair: per-participant preference share minus ½, t-test across participants
  (Holm); beside it the exact binomial test of the decisive comparisons, which ignores that
  one participant's choices are correlated.
* Consistency per participant: the majority winner of each method pair forms a tournament;
  Kendall's coefficient of consistence ζ = 1 − d / d_max over its circular triads d.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from stylestudy.analysis.pairwise import scale as pairwise_scale
from stylestudy.analysis.pairwise import scaling, separation

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
    if first.empty:  # the input does not say which image was shown first (a sureal dataset)
        return {"decisive": 0, "image1_share": float("nan"), "p": float("nan")}
    decisive = first[~first["flags"].fillna("").astype(str).map(lambda f: "no_preference" in f.split(";"))]
    chosen = int(decisive["rating"].eq(1).sum())
    n = len(decisive)
    return {"decisive": n, "image1_share": chosen / n if n else float("nan"),
            "p": float(sps.binomtest(chosen, n).pvalue) if n else float("nan")}


def preference_matrix(comps: pd.DataFrame, methods: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(wins, counts): wins[i, j] = times i was preferred over j (ties half), counts[i, j] = comparisons."""
    wins = pairwise_scale.participant_matrices(comps, methods)[0].sum(0)
    counts = (wins + wins.T).round().astype(int)
    return pd.DataFrame(wins, index=methods, columns=methods), pd.DataFrame(counts, index=methods, columns=methods)


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
    """BT log-strengths (mean 0) by choix's ILSR with ridge ``alpha``; ties half.  The report uses
    the maximum-likelihood ``ranking`` instead (which refuses to invent a separated method's
    score); this stays as the cross-check against a library fit."""
    import choix

    data = _choix_data(comps, {m: i for i, m in enumerate(methods)})
    if not data:
        return np.full(len(methods), np.nan)
    scores = np.asarray(choix.ilsr_pairwise(len(methods), data, alpha=alpha), float)
    return scores - scores.mean()


def ranking(comps: pd.DataFrame, methods: list[str], reps: int = 1000,
            seed: int = 0) -> tuple[pd.DataFrame, separation.GraphCheck]:
    """Per method: Bradley–Terry score and JOD (maximum likelihood where the data identify
    them, else a labelled bound), 95% intervals over participants, win rate, comparisons and
    P(best); best first.  Also the comparison graph's verdict (separation, connectivity)."""
    bt, graph, boot = pairwise_scale.scale_table(comps, methods, "bt", reps, seed)
    jod, _, _ = pairwise_scale.scale_table(comps, methods, "jod", reps, seed)
    best = pairwise_scale.p_best(boot, graph.identified, graph)
    _, counts = preference_matrix(comps, methods)
    frame = pd.DataFrame({"method": methods, "bt_score": bt["score"], "ci_low": bt["ci_low"], "ci_high": bt["ci_high"],
                          "jod": jod["score"], "jod_ci_low": jod["ci_low"], "jod_ci_high": jod["ci_high"],
                          "estimate": bt["estimate"], "win_rate": win_rates(comps, methods).to_numpy(),
                          "comparisons": counts.sum(axis=1).to_numpy(),
                          "p_best": [best.get(m, float("nan")) for m in methods]})
    frame = frame.sort_values(["bt_score", "win_rate"], ascending=False, ignore_index=True, na_position="last")
    return frame, graph


def bt_table(comps: pd.DataFrame, methods: list[str], reps: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``ranking`` without the graph verdict."""
    return ranking(comps, methods, reps, seed)[0]


def thurstone_case_v(comps: pd.DataFrame, methods: list[str]) -> tuple[pd.Series, float]:
    """(Thurstone Case V scale by maximum likelihood, P(i > j) = Phi(s_i - s_j), mean 0 over the
    identified methods, NaN for the others; mean |observed - predicted| preference over compared
    pairs).  The JOD of ``ranking`` is this scale times 1.4826 (``scaling.JOD_SIGMA``)."""
    wins, counts = preference_matrix(comps, methods)
    W = wins.to_numpy(float)
    graph = separation.check(W, methods)
    scale = np.full(len(methods), np.nan)
    ident = [methods.index(m) for m in graph.identified]
    if len(ident) >= 2:
        scale[ident] = scaling.fit(W[np.ix_(ident, ident)], "jod") / scaling.JOD_SIGMA
    with np.errstate(invalid="ignore", divide="ignore"):
        p = W / counts.to_numpy(float)
    predicted = sps.norm.cdf(scale[:, None] - scale[None, :])
    mask = ~np.isnan(p) & ~np.isnan(predicted) & ~np.eye(len(methods), dtype=bool)
    misfit = float(np.abs(p[mask] - predicted[mask]).mean()) if mask.any() else float("nan")
    return pd.Series(scale, index=methods, name="thurstone"), misfit


def circular_triads(comps: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per participant: method pairs with a majority winner, circular triads d among the complete
    triples, and Kendall's ζ = 1 − d / d_max (NaN below three methods)."""
    m = len(methods)
    d_max = (m**3 - m) / 24 if m % 2 else (m**3 - 4 * m) / 24
    index = {name: i for i, name in enumerate(methods)}
    shares = comps.groupby(["participant_id", "a", "b"])["outcome"].mean()
    rows = []
    for pid, part in shares.groupby(level="participant_id"):
        # B[i, j] = 1: i is the majority winner over j; every circular triad is one directed 3-cycle of B
        # (trace(B^3) counts it from each of its 3 methods), every complete triple a triangle of B + B'
        a = part.index.get_level_values("a").map(index).to_numpy()
        b = part.index.get_level_values("b").map(index).to_numpy()
        share = part.to_numpy(float)
        B = np.zeros((m, m))
        B[a, b] = share > 0.5
        B[b, a] = share < 0.5
        decided = B + B.T
        d = int(round(np.trace(B @ B @ B) / 3))
        complete = int(round(np.trace(decided @ decided @ decided) / 6))
        rows.append({"participant_id": pid, "decided_pairs": int(decided.sum()) // 2, "complete_triples": complete,
                     "circular_triads": d, "zeta": 1 - d / d_max if d_max and complete else float("nan")})
    return pd.DataFrame(rows, columns=["participant_id", "decided_pairs", "complete_triples", "circular_triads", "zeta"])
