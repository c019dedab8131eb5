"""Whether the data can support a ranking at all, and if not, why (in words for the report).

A pilot with two participants and six comparisons gave Bradley–Terry scores from -9.6 to +8.7
with "CIs" whose ends sat on the estimates: numbers the data cannot carry.  These rules are
deliberately plain; each failing one is a sentence the report prints first, and the ranking is
then shown as provisional (no intervals, one rank group).
"""

from __future__ import annotations

import pandas as pd

from stylestudy.analysis.pairwise.separation import GraphCheck

MIN_PARTICIPANTS = 3  # an interval or test across participants needs at least three
MIN_PER_PAIR = 5  # comparisons (pairwise) of each method pair, or participants who rated both (ratings)


def pairwise_reasons(comps: pd.DataFrame, methods: list[str], graph: GraphCheck) -> list[str]:
    """Reasons a pairwise ranking cannot be supported yet (empty: it can)."""
    reasons = []
    n = comps["participant_id"].nunique()
    if n < MIN_PARTICIPANTS:
        reasons.append(f"only {n} participant(s): intervals and tests across participants need at least "
                       f"{MIN_PARTICIPANTS}")
    per_pair = comps.groupby(["a", "b"]).size()
    pairs = len(methods) * (len(methods) - 1) // 2
    thin = pairs - int((per_pair >= MIN_PER_PAIR).sum())
    if thin:
        reasons.append(f"{thin} of {pairs} method pairs have fewer than {MIN_PER_PAIR} comparisons")
    if graph.uncompared or not graph.connected:
        reasons.append("some methods were never compared with the others (the comparison graph is not connected)")
    return reasons


def rating_reasons(usable: pd.DataFrame, methods: list[str]) -> list[str]:
    """Reasons a rating (MOS) ranking cannot be supported yet (empty: it can)."""
    reasons = []
    n = usable["participant_id"].nunique()
    if n < MIN_PARTICIPANTS:
        reasons.append(f"only {n} participant(s): intervals and tests across participants need at least "
                       f"{MIN_PARTICIPANTS}")
    rated = usable.groupby("method")["participant_id"].nunique().reindex(methods).fillna(0)
    unrated = rated.index[rated == 0].tolist()
    if unrated:
        reasons.append(f"never rated: {', '.join(unrated)}")
    return reasons


def sentence(reasons: list[str]) -> str:
    return ("The data cannot support a ranking yet: " + "; ".join(reasons)
            + ". The scores below are provisional, without intervals, and all methods share one rank group.")
