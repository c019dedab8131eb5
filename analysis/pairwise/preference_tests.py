"""The headline test of the ``pairwise`` protocol: per method pair, how often a was preferred
over b, with a CI clustered by participant, and the per-participant test that holds its level.

A participant's choices are correlated (the same taste decides them), so the participant is the
unit: each participant's share of a over b (ties half) minus 1/2 goes through
``analysis.ratings.stats.paired_test`` (t across participants, the exact signed-rank test where t is
undefined: a pair every participant decided the same way gets p = 2/2^n, never 1), Holm over
pairs.  The pooled share's 95% CI is the cluster-robust one of a ratio (t on P − 1 df, clipped
to [0, 1]).  The exact binomial test of the decisive comparisons stays beside it as
``p_binomial``; it treats every choice as independent and so overstates.
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


def clustered_share_ci(wins: np.ndarray, counts: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """CI of sum(wins) / sum(counts) with participants as clusters (cluster-robust SE, t on P − 1)."""
    if len(wins) < 2 or counts.sum() == 0:
        return float("nan"), float("nan")
    share = wins.sum() / counts.sum()
    se = math.sqrt(len(wins) / (len(wins) - 1) * ((wins - share * counts) ** 2).sum()) / counts.sum()
    half = sps.t.ppf(1 - (1 - level) / 2, len(wins) - 1) * se
    return float(max(0.0, share - half)), float(min(1.0, share + half))


def share_tests(comps: pd.DataFrame, methods: list[str], effect_cis: bool = True) -> pd.DataFrame:
    """Per method pair (a < b by name): comparisons, ties, share_a with its clustered CI, and the
    per-participant test (see the module docstring), Holm-corrected in ``p_holm``."""
    rows = []
    for a, b in combinations(sorted(methods), 2):
        part = comps[(comps["a"] == a) & (comps["b"] == b)]
        if part.empty:
            continue
        per = part.groupby("participant_id")["outcome"].agg(["sum", "count"])
        wins, counts = per["sum"].to_numpy(float), per["count"].to_numpy(float)
        test = paired_test(wins / counts - 0.5, LEVEL, effect_cis=effect_cis)
        lo, hi = clustered_share_ci(wins, counts)
        decisive = part[part["outcome"] != 0.5]
        a_wins = int((decisive["outcome"] == 1).sum())
        rows.append({"a": a, "b": b, "comparisons": len(part), "ties": int((part["outcome"] == 0.5).sum()),
                     "share_a": float(part["outcome"].mean()), "share_ci_low": lo, "share_ci_high": hi,
                     "participants": len(wins), "p": test["p"], "test": test["test"], "p_ttest": test["p_ttest"],
                     "p_wilcoxon": test["p_wilcoxon"], "cohens_dz": test["cohens_dz"],
                     "dz_ci_low": test.get("dz_ci_low", float("nan")), "dz_ci_high": test.get("dz_ci_high", float("nan")),
                     "rank_biserial": test["rank_biserial"], "rb_ci_low": test.get("rb_ci_low", float("nan")),
                     "rb_ci_high": test.get("rb_ci_high", float("nan")),
                     "p_binomial": float(sps.binomtest(a_wins, len(decisive)).pvalue) if len(decisive) else float("nan")})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = holm(frame["p"])
    return frame
