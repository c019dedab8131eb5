"""The headline tests: exact signed-rank without enumeration, one rule for unanimous effects
(never p = 1), effect sizes with CIs, pairwise shares with participant-clustered CIs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from stylestudy.analysis.pairwise import preference_tests
from stylestudy.analysis.ratings import scores
from stylestudy.analysis.ratings.multiple import holm
from stylestudy.analysis.ratings.stats import dz_ci, paired_test, rank_biserial_ci, signed_rank_null, wilcoxon_exact


def _enumerated_p(d: np.ndarray) -> float:
    nz = d[d != 0]
    ranks = sps.rankdata(np.abs(nz))
    observed = ranks[nz > 0].sum()
    null = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=len(nz))])
    return min(1.0, 2 * min(np.mean(null <= observed + 1e-9), np.mean(null >= observed - 1e-9)))


def test_exact_signed_rank_equals_the_enumeration_of_every_sign_flip():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(150):
        d = rng.integers(-3, 4, int(rng.integers(1, 12))).astype(float)  # ties and zeros, as ratings give
        if not d.any():
            continue
        assert wilcoxon_exact(d)[1] == pytest.approx(_enumerated_p(d), abs=1e-12), d
        checked += 1
    assert checked > 100
    # the recursion's null is a distribution over T+ in half units, symmetric about n(n+1)/4
    probs = signed_rank_null(np.array([1.5, 1.5, 3, 4]))
    assert probs.sum() == pytest.approx(1.0) and probs == pytest.approx(probs[::-1])
    # 40 participants: no 2^40 enumeration; all positive gives 2 / 2^40
    assert wilcoxon_exact(np.arange(1, 41, dtype=float))[1] == pytest.approx(2 / 2**40, rel=1e-9)


def test_unanimous_effects_get_the_exact_test_never_p_1():
    same = paired_test(np.full(10, 0.5))
    assert same["test"].startswith("exact signed-rank") and same["p"] == pytest.approx(2 / 2**10)
    assert math.isnan(same["p_ttest"]) and same["cohens_dz"] == math.inf and same["rank_biserial"] == 1.0
    assert same["rb_ci_high"] == 1.0 and same["rb_ci_low"] < 1.0
    nothing = paired_test(np.zeros(8))
    assert nothing["p"] == 1.0 and nothing["test"] == "no differences"
    usual = paired_test(np.array([1.0, 2.0, 0.5, 1.5, -0.5]))
    assert usual["p"] == pytest.approx(sps.ttest_1samp([1.0, 2.0, 0.5, 1.5, -0.5], 0).pvalue)
    assert holm([0.01, np.nan, 0.04]) == pytest.approx([0.02, np.nan, 0.04], nan_ok=True)
    from statsmodels.stats.multitest import multipletests

    ps = np.random.default_rng(1).uniform(0, 0.2, 9)
    ps[3] = ps[5]  # a tie
    assert holm(ps) == pytest.approx(multipletests(ps, method="holm")[1])


def test_effect_size_cis_by_their_definitions():
    d = np.array([0.2, 1.1, 0.4, 0.9, -0.3, 0.8, 0.5])
    lo, hi = dz_ci(d)
    t, n = d.mean() / d.std(ddof=1) * math.sqrt(len(d)), len(d)
    # the noncentral t with ncp = bound * sqrt(n) puts the observed t at the 97.5% / 2.5% point
    assert sps.nct.cdf(t, n - 1, lo * math.sqrt(n)) == pytest.approx(0.975, abs=1e-6)
    assert sps.nct.cdf(t, n - 1, hi * math.sqrt(n)) == pytest.approx(0.025, abs=1e-6)
    r_lo, r_hi = rank_biserial_ci(d)
    m = 7
    se = 2 * math.sqrt(m * (m + 1) * (2 * m + 1) / 24) / (m * (m + 1) / 2)
    r = (sps.rankdata(np.abs(d))[d > 0].sum() - sps.rankdata(np.abs(d))[d < 0].sum()) / 28
    assert (r_lo, r_hi) == pytest.approx((math.tanh(math.atanh(r) - 1.959964 * se),
                                          math.tanh(math.atanh(r) + 1.959964 * se)), abs=1e-6)


def test_unanimous_pairwise_preference_is_significant_after_holm():
    """Every one of 10 participants prefers ours, 4 times each, against both others; the other
    pair is a coin flip.  Before: t undefined -> p = 1, Holm 1."""
    rng = np.random.default_rng(2)
    rows = []
    for p in range(10):
        for t in range(4):
            rows.append({"participant_id": f"p{p}", "a": "adain", "b": "ours", "outcome": 0.0})
            rows.append({"participant_id": f"p{p}", "a": "ours", "b": "photo", "outcome": 1.0})
            rows.append({"participant_id": f"p{p}", "a": "adain", "b": "photo", "outcome": float(rng.integers(0, 2))})
    tests = preference_tests.share_tests(pd.DataFrame(rows), ["adain", "ours", "photo"]).set_index(["a", "b"])
    unanimous = tests.loc[("adain", "ours")]
    assert unanimous["participant_share_a"] == 0.0 and unanimous["test"].startswith("exact signed-rank")
    assert unanimous["p"] == pytest.approx(2 / 2**10) and unanimous["p_holm"] == pytest.approx(3 * 2 / 2**10)
    assert tests.loc[("ours", "photo"), "p_holm"] < 0.01
    assert (unanimous["ci_low"], unanimous["ci_high"]) == (0.0, 0.0)
    assert (unanimous["pooled_ci_low"], unanimous["pooled_ci_high"]) == (0.0, 0.0)
    assert unanimous["p_pooled"] == unanimous["p"]  # every share is the pooled one: the exact test answers both



def _bell_mccaffrey_df(counts: list[int]) -> float:
    """Satterthwaite's df of the CR2 variance, built at the comparison level (N x N): participant
    g's score is a_g' e with a_g = 1_g - (n_g / N) 1, weighted by 1 / (1 - n_g / N)."""
    total = sum(counts)
    starts = np.cumsum([0, *counts])
    quad = np.zeros((total, total))
    for g, n in enumerate(counts):
        a = -np.full(total, n / total)
        a[starts[g]:starts[g + 1]] += 1
        quad += np.outer(a, a) / (1 - n / total)
    return np.trace(quad) ** 2 / np.trace(quad @ quad)


def test_pairwise_share_ci_is_clustered_by_participant_by_hand():
    # p1: 3 of 4 for a; p2: 1 of 2; p3: 2 of 2 -> share 6/8
    rows = [("p1", 1), ("p1", 1), ("p1", 1), ("p1", 0), ("p2", 1), ("p2", 0), ("p3", 1), ("p3", 1)]
    comps = pd.DataFrame([{"participant_id": p, "a": "a", "b": "b", "outcome": float(o)} for p, o in rows])
    row = preference_tests.share_tests(comps, ["a", "b"]).iloc[0]
    share = 6 / 8
    # CR2: each participant's residual over sqrt(1 - n/N), N = 8 comparisons
    se = math.sqrt((3 - 4 * share) ** 2 / (1 - 4 / 8) + (1 - 2 * share) ** 2 / (1 - 2 / 8)
                   + (2 - 2 * share) ** 2 / (1 - 2 / 8)) / 8
    df = _bell_mccaffrey_df([4, 2, 2])
    assert df == pytest.approx(1.8) and _bell_mccaffrey_df([3, 3, 3]) == pytest.approx(2)  # P - 1 when equal
    half = sps.t.ppf(0.975, df) * se
    assert row["pooled_share_a"] == share
    assert (row["pooled_ci_low"], row["pooled_ci_high"]) == pytest.approx((share - half, min(1.0, share + half)))
    assert row["p_pooled"] == pytest.approx(2 * sps.t.sf((share - 0.5) / se, df))
    assert row["p"] == pytest.approx(sps.ttest_1samp([0.25, 0.0, 0.5], 0).pvalue)


def test_unequal_participation_gives_two_named_quantities_each_with_its_own_ci_and_test():
    # light p1: 1 of 2, p2: 0 of 2; heavy p3: 7 of 8, p4: 8 of 8
    rows = [("p1", 1), ("p1", 0), ("p2", 0), ("p2", 0)] + [("p3", int(k < 7)) for k in range(8)] + [("p4", 1)] * 8
    comps = pd.DataFrame([{"participant_id": p, "a": "a", "b": "b", "outcome": float(o)} for p, o in rows])
    row = preference_tests.share_tests(comps, ["a", "b"]).iloc[0]
    # the headline: the average participant's share (0.5 + 0 + 0.875 + 1) / 4, its t CI and its test
    d = np.array([0.5, 0.0, 0.875, 1.0]) - 0.5
    half = sps.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert row["participant_share_a"] == pytest.approx(0.59375)
    assert 0.59375 - half < 0 and (row["ci_low"], row["ci_high"]) == pytest.approx((0.0, 1.0))  # clipped to [0, 1]
    assert row["p"] == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
    wide = preference_tests.share_tests(pd.concat([comps.assign(participant_id=comps["participant_id"] + c)
                                                   for c in "xyz"]), ["a", "b"]).iloc[0]  # 12 participants
    half = sps.t.ppf(0.975, 11) * np.tile(d, 3).std(ddof=1) / math.sqrt(12)
    assert (wide["ci_low"], wide["ci_high"]) == pytest.approx((0.59375 - half, 0.59375 + half))
    assert row["p"] == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
    # beside it: the share of all comparisons 16 / 20, cluster-robust (CR2: leverage 2/20 light, 8/20 heavy)
    # SE, Wald t on Bell-McCaffrey's df (below the 3 of equal participation: two participants hold 80%)
    se = math.sqrt(((1 - 1.6) ** 2 + (0 - 1.6) ** 2) / (1 - 2 / 20) + ((7 - 6.4) ** 2 + (8 - 6.4) ** 2) / (1 - 8 / 20)) / 20
    df = _bell_mccaffrey_df([2, 2, 8, 8])
    assert 1.9 < df < 2.0
    assert row["pooled_share_a"] == pytest.approx(0.8)
    assert (row["pooled_ci_low"], row["pooled_ci_high"]) == pytest.approx((0.8 - sps.t.ppf(0.975, df) * se, 1.0))
    assert row["p_pooled"] == pytest.approx(2 * sps.t.sf(0.3 / se, df))
    # each row's CI and p are about one quantity: the headline CI holds 1/2 exactly when its p >= 0.05
    assert (row["ci_low"] <= 0.5 <= row["ci_high"]) == (row["p"] >= 0.05)
    assert (row["pooled_ci_low"] <= 0.5 <= row["pooled_ci_high"]) == (row["p_pooled"] >= 0.05)


def test_acr_pair_tests_carry_effect_sizes_and_the_unanimous_rule():
    usable = pd.DataFrame({"participant_id": [f"p{i}" for i in range(6)] * 2,
                           "method": ["a"] * 6 + ["b"] * 6, "rating": [4.0] * 6 + [2.0] * 6})
    pair = scores.participant_pair_tests(usable, ["a", "b"]).iloc[0]
    assert pair["p"] == pytest.approx(2 / 2**6) and pair["p_holm"] == pair["p"] and pair["rank_biserial"] == 1.0
    for column in ("cohens_dz", "dz_ci_low", "rb_ci_low", "rb_ci_high", "p_wilcoxon", "test"):
        assert column in pair.index


def test_reference_differences_by_hand():
    # p1: ours - ref = +1 and +2 (mean 1.5), adain - ref = 0; p2: ours +1, adain -1; p3: ours +2, adain -1.
    # A trial without the reference, and one with a lone row, are left out.
    trials = [("p1", 1, "ours", 4, 3), ("p1", 2, "ours", 5, 3), ("p1", 3, "adain", 3, 3), ("p2", 1, "ours", 3, 2),
              ("p2", 2, "adain", 1, 2), ("p3", 1, "ours", 4, 2), ("p3", 2, "adain", 2, 3)]
    rows = []
    for pid, trial, method, rating, ref in trials:
        rows += [{"participant_id": pid, "trial": trial, "method": method, "rating": float(rating)},
                 {"participant_id": pid, "trial": trial, "method": "ref", "rating": float(ref)}]
    rows += [{"participant_id": "p1", "trial": 9, "method": "ours", "rating": 5.0},
             {"participant_id": "p1", "trial": 9, "method": "adain", "rating": 1.0},
             {"participant_id": "p2", "trial": 8, "method": "ours", "rating": 5.0}]
    table = scores.reference_differences(pd.DataFrame(rows), "ref").set_index("method")
    assert table.loc["ours", "mean_diff"] == pytest.approx((1.5 + 1 + 2) / 3)
    assert table.loc["ours", "p"] == pytest.approx(sps.ttest_1samp([1.5, 1, 2], 0).pvalue)
    assert table.loc["adain", "mean_diff"] == pytest.approx(-2 / 3) and table.loc["adain", "participants"] == 3
