"""Whether the data can support a ranking at all, and if not, why (codes with their numbers;
``analysis.render.statistics_text`` words them).

A pilot with two participants and six comparisons gave Bradley–Terry scores from -9.6 to +8.7
with "CIs" whose ends sat on the estimates: numbers the data cannot carry.  These rules are
deliberately plain; each failing one is a reason the report prints first, and the ranking is
then shown as provisional (no intervals, one rank group).
"""

from __future__ import annotations

import pandas as pd

from stylestudy.analysis.pairwise.separation import GraphCheck

MIN_PARTICIPANTS = 3  # an interval or test across participants needs at least three
MIN_PER_PAIR = 5  # comparisons (pairwise) of each method pair, or participants who rated both (ratings)


def _participants(n: int) -> list[dict]:
    return [{"reason": "too_few_participants", "participants": n, "minimum": MIN_PARTICIPANTS}] \
        if n < MIN_PARTICIPANTS else []


def pairwise_reasons(comps: pd.DataFrame, methods: list[str], graph: GraphCheck) -> list[dict]:
    """Reasons a pairwise ranking cannot be supported yet (empty: it can)."""
    reasons = _participants(comps["participant_id"].nunique())
    per_pair = comps.groupby(["a", "b"]).size()
    pairs = len(methods) * (len(methods) - 1) // 2
    thin = pairs - int((per_pair >= MIN_PER_PAIR).sum())
    if thin:
        reasons.append({"reason": "thin_pairs", "thin": thin, "pairs": pairs, "minimum": MIN_PER_PAIR})
    if graph.uncompared or not graph.connected:
        reasons.append({"reason": "not_connected"})
    return reasons


def rating_reasons(usable: pd.DataFrame, methods: list[str]) -> list[dict]:
    """Reasons a rating (MOS) ranking cannot be supported yet (empty: it can)."""
    reasons = _participants(usable["participant_id"].nunique())
    rated = usable.groupby("method")["participant_id"].nunique().reindex(methods).fillna(0)
    unrated = rated.index[rated == 0].tolist()
    if unrated:
        reasons.append({"reason": "never_rated", "methods": unrated})
    return reasons
