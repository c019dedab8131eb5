"""The ``pairwise`` protocol's analysis as one typed result: the comparisons, the headline tests,
the ranking with its inference, consistency and position bias; numbers and tables only (the
report's words are ``analysis.protocols``')."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stylestudy.analysis.pairwise import preference, preference_tests
from stylestudy.analysis.pairwise.inference import PairwiseInference, infer


@dataclass
class PairwiseAnalysis:
    methods: list[str]
    comparisons: pd.DataFrame  # one row per answered trial (preference.comparisons)
    tests: pd.DataFrame  # per method pair: share preferred, clustered CI, per-participant test, Holm
    inference: PairwiseInference  # the ranking, its support, ties model, agreement
    triads: pd.DataFrame  # per participant: circular triads and Kendall's zeta
    wins: pd.DataFrame
    counts: pd.DataFrame
    position_bias: dict  # Image 1's share of the decisive trials, with its binomial p
    bootstrap: int  # resamples behind the ranking's intervals

    @property
    def order(self) -> list[str]:
        return self.inference.table["method"].tolist()

    @property
    def cyclic(self) -> int:
        """Participants with at least one circular triad."""
        return int((self.triads["circular_triads"] > 0).sum())

    @property
    def zeta(self) -> float:
        return float(self.triads["zeta"].mean())

    @property
    def ties(self) -> int:
        return int((self.comparisons["outcome"] == 0.5).sum())

    def preference_share(self) -> pd.DataFrame:
        """Row preferred over column (ties half), in ranking order; NaN where never compared."""
        return (self.wins / self.counts.where(self.counts > 0)).loc[self.order, self.order]

    def summary(self) -> dict:
        return {"position_bias": self.position_bias, **self.inference.summary(), "comparisons": len(self.comparisons),
                "ties": self.ties, "pair_tests": self.tests.to_dict(orient="records"),
                "participants_with_circular_triads": self.cyclic, "mean_zeta": self.zeta}


def analyze_pairwise(usable: pd.DataFrame, methods: list[str], bootstrap: int = 1000, seed: int = 0) -> PairwiseAnalysis:
    comps = preference.comparisons(usable)
    tests = preference_tests.share_tests(comps, methods)
    inference = infer(comps, methods, tests, bootstrap, seed)
    wins, counts = preference.preference_matrix(comps, methods)
    return PairwiseAnalysis(methods, comps, tests, inference, preference.circular_triads(comps, methods), wins, counts,
                            preference.position_bias(usable), bootstrap)
