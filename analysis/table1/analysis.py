"""The paper's Table 1 design analysed as one typed result: rater screening and the exclusions it
led to, the per-cell tests, the headline per-participant tests (omnibus), the mixed model, rater
agreement and, on request, the comparison with the published table; numbers and tables only (the
report's words and files are ``analysis.analyze``')."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stylestudy.analysis.models.lmm import MethodsFit, NoMixedModel
from stylestudy.analysis.ratings.raters import agreement, bt500_screening, loo_correlation
from stylestudy.analysis.ratings.stats import attainability, cell_tests, mixed_model, omnibus
from stylestudy.analysis.sources.ratings import RatingSet
from stylestudy.analysis.table1 import table
from stylestudy.analysis.table1.audit import load_published

SCREENS = {"bt500": ["bt500"], "loo": ["loo"], "both": ["bt500", "loo"]}  # --screen: the rules that exclude


@dataclass
class Table1Analysis:
    screening: pd.DataFrame  # BT.500 per rater
    bt500_rejected: list[str]
    loo_flagged: list[str]  # correlation with the others' MOS below rater_min_r
    loo_rule: str  # "loo_r<0.3": the rule's name where it excludes
    excluded: dict[str, str]  # participant -> the rule that excluded them
    tests: pd.DataFrame  # per cell, paired by participant
    omnibus: pd.DataFrame  # the headline: per-participant mean differences, per block and overall
    omnibus_every_rater: pd.DataFrame | None  # the same before the exclusions (None: nobody excluded)
    mixed: MethodsFit | NoMixedModel  # the mixed model's fit (its first contrast normalized - baseline), or why none
    agreement: dict  # Krippendorff's alpha, ICC(2,1), ICC(2,k)
    attainability: dict  # whether a cell's test can reach Holm's first threshold at its n (stats.attainability)
    compared: pd.DataFrame | None = None  # our cell means beside the published ones (--compare-paper)
    pearson_r: float = float("nan")

    def cell_counts(self) -> dict:
        tests = self.tests
        return {"cells_p_lt_05_uncorrected": int((tests["p_wilcoxon"] < 0.05).sum()) if len(tests) else 0,
                "cells_significant_holm": int((tests["p_holm"] < 0.05).sum()) if len(tests) else 0,
                "cells_significant_bh": int((tests["p_bh"] < 0.05).sum()) if len(tests) else 0}

    def by_rule(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for pid, rule in self.excluded.items():
            out.setdefault(rule, []).append(pid)
        return out


def compare_with_paper(usable: pd.DataFrame, ddof: int) -> tuple[pd.DataFrame, float]:
    ours = table.cell_stats(usable, ddof).rename(columns={"mean": "our_mean", "std": "our_std", "n": "our_n"})
    paper = load_published().rename(columns={"mean": "paper_mean", "std": "paper_std"})
    paper["block"] = paper["block"].astype(str)
    merged = paper.merge(ours, on=["block", "row", "method", "column"], how="left")
    merged["difference"] = merged["our_mean"] - merged["paper_mean"]
    both = merged.dropna(subset=["our_mean"])
    r = float(both["our_mean"].corr(both["paper_mean"])) if len(both) > 2 else float("nan")
    return merged, r


def analyze_table1(ratings: RatingSet, screen: str, rater_min_r: float, seed: int, mixed_slopes: str,
                   mixed_variances: str, compare_paper_ddof: int | None = None,
                   generalise: str = "participants") -> Table1Analysis:
    """Screens the raters and excludes those ``screen`` names from ``ratings`` (recorded in its
    counts), then tests; ``compare_paper_ddof``: compare with the published table at this ddof."""
    screening = bt500_screening(ratings.usable)
    rejected = screening.loc[screening["rejected"], "participant_id"].tolist()
    loo = loo_correlation(ratings.usable, rater_min_r)
    low_r = loo.loc[loo["loo_rejected"], "participant_id"].tolist()
    loo_rule = f"loo_r<{rater_min_r:g}"
    flagged = {"bt500": rejected, "loo": low_r}
    names = {"bt500": "bt500", "loo": loo_rule}
    excluded = {pid: names[rule] for rule in SCREENS.get(screen, []) for pid in flagged[rule]}
    every_rater = ratings.usable
    if excluded:
        ratings.exclude_participants(sorted(excluded), screen)
    usable = ratings.usable
    tests = cell_tests(usable, seed)
    result = Table1Analysis(screening, rejected, low_r, loo_rule, excluded, tests, omnibus(usable),
                            omnibus(every_rater) if excluded else None,
                            mixed_model(usable, mixed_slopes, mixed_variances, generalise), agreement(usable),
                            attainability(tests))
    if compare_paper_ddof is not None:
        result.compared, result.pearson_r = compare_with_paper(usable, compare_paper_ddof)
    return result
