"""The headline test of the ``pairwise`` protocol: per method pair, how often a was preferred
over b, as two named quantities that differ when participants made unequal numbers of comparisons.

A participant's choices are correlated (the same taste decides them), so the participant is the
unit.  The headline is the **average participant's share** (``participant_share_a``: each
participant's share of a over b, ties half, averaged with equal weight): its 95% CI is the t
interval of the participants' shares and its p the test of each share − 1/2 through
``analysis.ratings.stats.paired_test`` (t across participants, the exact signed-rank test where t is
undefined: a pair every participant decided the same way gets p = 2/2^n, never 1), Holm over pairs.
Beside it, the **share of all comparisons** (``pooled_share_a``, a participant weighted by their
comparisons) with its own cluster-robust CI (a ratio, CR2 SE, t on Bell-McCaffrey df) and Wald t test
(``p_pooled``).  With 16 participants making 28 comparisons and 15 making 112, one row once showed
the pooled share's CI [0.650, 0.877] beside the average participant's p = 0.45: two quantities in
one row.  The exact binomial test of the decisive comparisons stays as ``p_binomial``; it treats
every choice as independent and so overstates.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

from stylestudy.analysis.ratings.multiple import holm
from stylestudy.analysis.ratings.stats import paired_test

LEVEL = 0.95


def clustered_share(wins: np.ndarray, counts: np.ndarray, level: float = LEVEL) -> dict:
    """sum(wins) / sum(counts) with participants as clusters: share, CI (cluster-robust SE, t on
    its df, clipped to [0, 1]) and the Wald t test of share = 1/2 (NaN where the SE is 0).

    The SE and df are Bell & McCaffrey's (2002) CR2: each participant's score w − share·n divided
    by sqrt(1 − n/N), the leverage of their n of the N comparisons, and Satterthwaite's df of that
    variance under independent comparisons.  With equal participation that is the usual P/(P − 1)
    correction on P − 1 df; with a few heavy participants the df fall below P − 1 (CR1 on P − 1
    df was liberal there: 6.8-7.1% at 10 participants,
    docs/measurements/calibration-unequal-participation.md)."""
    nan = float("nan")
    if (counts > 0).sum() < 2:  # one participant's comparisons (or none): no spread between participants
        return {"share": wins.sum() / counts.sum() if counts.sum() else nan, "ci": (nan, nan), "p": nan}
    share = wins.sum() / counts.sum()
    n = counts.astype(float)
    total = n.sum()
    weight = 1 / ((1 - n / total) * total ** 2)  # CR2's per-participant factor
    se = math.sqrt((weight * (wins - share * n) ** 2).sum())
    cross = np.diag(n) - np.outer(n, n) / total  # a_g' a_k: how two participants' scores co-vary
    df = float((weight * np.diag(cross)).sum() ** 2 / (np.outer(weight, weight) * cross ** 2).sum())
    half = sps.t.ppf(1 - (1 - level) / 2, df) * se
    p = float(2 * sps.t.sf(abs(share - 0.5) / se, df)) if se > 0 else nan
    return {"share": float(share), "ci": (float(max(0.0, share - half)), float(min(1.0, share + half))), "p": p}


def share_tests(comps: pd.DataFrame, methods: list[str], effect_cis: bool = True) -> pd.DataFrame:
    """Per method pair (a < b by name): comparisons, ties, the average participant's share of a with
    its CI and test (the headline; Holm in ``p_holm``), and the share of all comparisons with its own
    CI and test (see the module docstring)."""
    rows = []
    outcome = comps.assign(tie=comps["outcome"].eq(0.5), a_won=comps["outcome"].eq(1.0))
    per_pair = outcome.groupby(["a", "b"])[["tie", "a_won"]].sum()
    participants = dict(tuple(outcome.groupby(["a", "b", "participant_id"])["outcome"].agg(["sum", "count"])
                              .groupby(level=["a", "b"])))  # one pass over the comparisons, not one per pair
    for a, b in combinations(sorted(methods), 2):
        if (a, b) not in participants:
            continue
        per = participants[(a, b)]
        wins, counts = per["sum"].to_numpy(float), per["count"].to_numpy(float)
        test = paired_test(wins / counts - 0.5, LEVEL, effect_cis=effect_cis)
        pooled = clustered_share(wins, counts)
        if np.isnan(pooled["p"]) and len(wins) > 1:  # SE 0: every participant's share is the pooled one
            pooled["p"] = test["p"]
        ties, a_wins = (int(v) for v in per_pair.loc[(a, b)])
        decisive = int(counts.sum()) - ties
        rows.append({"a": a, "b": b, "comparisons": int(counts.sum()), "ties": ties,
                     "participants": len(wins), "participant_share_a": 0.5 + test["mean_diff"],
                     "ci_low": float(np.clip(0.5 + test["ci_low"], 0, 1)),
                     "ci_high": float(np.clip(0.5 + test["ci_high"], 0, 1)),
                     "p": test["p"], "test": test["test"], "p_ttest": test["p_ttest"],
                     "p_wilcoxon": test["p_wilcoxon"], "cohens_dz": test["cohens_dz"],
                     "dz_ci_low": test.get("dz_ci_low", float("nan")), "dz_ci_high": test.get("dz_ci_high", float("nan")),
                     "rank_biserial": test["rank_biserial"], "rb_ci_low": test.get("rb_ci_low", float("nan")),
                     "rb_ci_high": test.get("rb_ci_high", float("nan")),
                     "pooled_share_a": pooled["share"], "pooled_ci_low": pooled["ci"][0],
                     "pooled_ci_high": pooled["ci"][1], "p_pooled": pooled["p"],
                     "p_binomial": float(sps.binomtest(a_wins, decisive).pvalue) if decisive else float("nan")})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = holm(frame["p"])
    return frame
