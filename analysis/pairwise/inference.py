"""What a pairwise study lets us conclude, gathered for the report: the BT/JOD ranking with
rank groups, the comparison graph's verdict (separation, connectivity), whether the data
support a ranking at all, the ties model beside "ties count half", and Kendall's u.

The numbers come from their own modules (``preference``, ``pairwise_scale``, ``separation``,
``ties``, ``raters.kendall_u``, ``rank_groups``, ``support``); this one decides what the report
says about them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from stylestudy.analysis.pairwise import preference, preference_tests, support, ties
from stylestudy.analysis.pairwise.scale import CI_METHOD
from stylestudy.analysis.pairwise.separation import GraphCheck
from stylestudy.analysis.ratings import rank_groups
from stylestudy.analysis.ratings.raters import kendall_u, pairwise_agreement
from stylestudy.analysis.render import statistics_text


@dataclass
class PairwiseInference:
    table: pd.DataFrame  # the ranking, best first, with rank_group
    graph: GraphCheck
    reasons: list[dict]  # why the data cannot support a ranking yet (support's codes; empty: they can)
    ties: dict
    agreement: dict
    thurstone_misfit: float
    bt_jod_tau: float
    participants: int
    comparisons: int
    raters: pd.DataFrame  # per participant: agreement with the others (raters.pairwise_agreement)
    without_flagged: pd.DataFrame | None = None  # the ranking without flagged participants

    @property
    def supported(self) -> bool:
        return not self.reasons

    def summary(self) -> dict:
        return {"ranking": self.table.to_dict(orient="records"), "ranking_supported": self.supported,
                "ranking_not_supported_because": self.reasons, "comparison_graph": self.graph.to_json(),
                "separated_methods": {"never_won": self.graph.never_won, "never_lost": self.graph.never_lost},
                "ci_method": CI_METHOD, "ties_model": self.ties, "kendall_u": self.agreement,
                "thurstone_misfit": self.thurstone_misfit, "bt_jod_kendall_tau": self.bt_jod_tau,
                "raters_flagged": self.flagged,
                **({"ranking_without_flagged": self.without_flagged.to_dict(orient="records")}
                   if self.without_flagged is not None else {})}

    @property
    def flagged(self) -> list[str]:
        return self.raters.loc[self.raters["flagged"], "participant_id"].tolist()

    def raters_text(self) -> str:
        flagged = self.flagged
        return ("Agreement with the other participants (their leave-one-out Bradley–Terry order; "
                "raters_agreement.csv): "
                f"median {self.raters['agreement'].median():.0%} of a participant's choices; agreeing less than chance "
                "(one-sided binomial p < 0.05): " + (", ".join(flagged) + " (flagged only; see 'Ranking without the "
                                                     "flagged raters')" if flagged else "nobody") + ".")

    def ranking_text(self, bootstrap: int) -> str:
        parts = []
        if self.reasons:
            parts.append(statistics_text.ranking_not_supported(self.reasons))
        parts.append(f"{self.comparisons} comparisons by {self.participants} participants. bt_score: Bradley–Terry "
                     "log-strength; jod: Thurstone Case V in JOD (1 JOD = 75% preference, as pwcmp); both maximum "
                     "likelihood (ties count half), mean 0 over the identified methods. 95% CIs: "
                     f"{bootstrap} bootstrap resamples of participants, "
                     "estimate ± t(n−1) × bootstrap SE × √(n/(n−1)) "
                     "(the percentile interval under-covers with few participants). rank_group: methods sharing a "
                     "letter were not told apart by the per-participant tests below (Holm, 5%)."
                     + rank_groups.note(self.table))
        for s in self.graph.sentences():
            parts.append(s[0].upper() + s[1:] + ".")
        if not self.graph.strongly_connected:
            parts.append("Rows whose estimate says prior-regularised show a MAP value under a N(0, 2²) distance "
                         "prior (not a maximum-likelihood estimate) and a one-sided 95% bound (±inf on the other "
                         "side).")
        if not np.isnan(self.bt_jod_tau):
            parts.append(f"JOD and BT orders agree with Kendall's tau = {self.bt_jod_tau:.2f}; Thurstone's mean "
                         f"|observed - predicted| preference is {self.thurstone_misfit:.3f}.")
        return " ".join(parts)

    def ties_text(self) -> str:
        t = self.ties
        if not t["ties"]:
            return "No ties (no 'No preference' answers): the Davidson model is Bradley–Terry."
        if "davidson" not in t:
            return f"{t['ties']} ties; {t['note']}."
        return (f"{t['ties']} of {t['comparisons']} comparisons were ties. Davidson's ties model (nu = "
                f"{t['davidson_nu']:.2f}) beside 'ties count half': largest score difference "
                f"{t['max_abs_difference']:.3f} log-strength units, Kendall's tau between the orders = "
                f"{t['kendall_tau']:.2f}.")

    def ties_table(self) -> pd.DataFrame | None:
        t = self.ties
        if "davidson" not in t or not t["ties"]:
            return None
        return pd.DataFrame({"method": list(t["davidson"]), "bt_ties_half": list(t["bt_ties_half"].values()),
                             "davidson": list(t["davidson"].values())})

    def agreement_text(self) -> str:
        u = self.agreement
        if u["u"] != u["u"]:
            return "Kendall's u: not computable (no method pair judged twice)."
        test = (f"chi-square = {u['chi2']:.1f}, df = {u['df']:.1f}, p = {u['p']:.3g} against judgments at random "
                f"({u['pairs_tested']} pairs tested, {u['ties_left_out_of_test']} ties left out)"
                if u["pairs_tested"] else "no pair has 3 decisive judgments, so no test")
        return f"Kendall's coefficient of agreement u = {u['u']:.3f} (1 = every judgment of a pair agrees); {test}."


def infer(comps: pd.DataFrame, methods: list[str], tests: pd.DataFrame, bootstrap: int = 1000,
          seed: int = 0, screen: bool = True) -> PairwiseInference:
    """Everything the report states about the ranking (see the module docstring)."""
    table, graph = preference.ranking(comps, methods, bootstrap, seed)
    reasons = support.pairwise_reasons(comps, methods, graph)
    order = table["method"].tolist()
    if reasons:
        groups = {m: "a" for m in order}
        table[["ci_low", "ci_high", "jod_ci_low", "jod_ci_high", "p_best"]] = np.nan
    else:
        groups = rank_groups.from_pair_tests(order, tests)
    if groups is not None:  # None: too many letters to read (rank_groups.note says so)
        table.insert(0, "rank_group", table["method"].map(groups))
    _, misfit = preference.thurstone_case_v(comps, methods)
    ident = table["estimate"].eq("maximum likelihood")
    tau = (float(sps.kendalltau(table.loc[ident, "bt_score"], table.loc[ident, "jod"]).statistic)
           if ident.sum() > 1 else float("nan"))
    raters = pairwise_agreement(comps, methods)
    flagged = raters.loc[raters["flagged"], "participant_id"].tolist() if screen else []
    without = None
    if flagged:
        kept = comps[~comps["participant_id"].isin(flagged)]
        without = infer(kept, methods, preference_tests.share_tests(kept, methods), bootstrap, seed, screen=False).table
    return PairwiseInference(table=table, graph=graph, reasons=reasons, ties=ties.compare(comps, methods),
                             agreement=kendall_u(comps), thurstone_misfit=misfit, bt_jod_tau=tau,
                             participants=int(comps["participant_id"].nunique()), comparisons=len(comps),
                             raters=raters, without_flagged=without)
