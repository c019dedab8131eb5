"""Honest pairwise inference and rater screening (issue 19, second half): maximum-likelihood BT
and JOD against libraries and hand values, separation named and bounded, interval coverage on a
small fixed-seed simulation, the ties model, Kendall's u, rank groups, planted bad raters, and
'the data cannot support a ranking yet'."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import special
from scipy import stats as sps

from stylestudy.analysis.pairwise import inference as pairwise_inference
from stylestudy.analysis.pairwise import preference, preference_tests, scaling, separation, ties
from stylestudy.analysis.pairwise import scale as pairwise_scale
from stylestudy.analysis.ratings import rank_groups
from stylestudy.analysis.ratings.raters import bt500_screening, kendall_u, screening
from stylestudy.analysis.table1 import simulate
from stylestudy.engine.study.manifest import StudyManifest
from tests.benchmarks.pairwise_coverage import coverage
from tests.conftest import import_run


def _comps(rows):
    return pd.DataFrame([{"participant_id": p, "trial": t, "item": "i", "a": a, "b": b, "outcome": o}
                         for t, (p, a, b, o) in enumerate(rows)])


def _bt_study(true: dict[str, float], participants: int, per_pair: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = sorted(true)
    rows = []
    for p in range(participants):
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                for _ in range(per_pair):
                    rows.append((f"p{p:02d}", a, b, float(rng.random() < special.expit(true[a] - true[b]))))
    return _comps(rows)


def test_maximum_likelihood_matches_choix_on_an_incomplete_design():
    import choix

    rng = np.random.default_rng(4)
    theta = np.array([-1.0, -0.3, 0.2, 0.4, 1.1])
    W = np.zeros((5, 5))
    data = []
    for _ in range(400):
        i, j = rng.choice(5, 2, replace=False)
        if {i, j} == {0, 4}:
            continue  # this pair is never compared
        winner, loser = (i, j) if rng.random() < special.expit(theta[i] - theta[j]) else (j, i)
        W[winner, loser] += 1
        data.append((winner, loser))
    ours = scaling.fit(W, "bt")
    theirs = np.asarray(choix.opt_pairwise(5, data, alpha=0.0))
    assert ours == pytest.approx(theirs - theirs.mean(), abs=1e-6) and ours.sum() == pytest.approx(0, abs=1e-9)


def test_jod_unit_and_thurstone_on_an_incomplete_design():
    # 75% preference is 1 JOD by definition
    assert np.diff(scaling.fit(np.array([[0, 75.0], [25.0, 0]]), "jod"))[0] == pytest.approx(-1.0, abs=1e-8)
    # a > b and b > c each at Phi(0.5), a and c never compared: the MLE puts a - c = 1.0 (z units);
    # the old row average gave 0.5 (the missing pair counted as z = 0)
    p = sps.norm.cdf(0.5)
    rows = [("p", "a", "b", 1)] * round(1000 * p) + [("p", "a", "b", 0)] * round(1000 * (1 - p))
    rows += [("p", "b", "c", 1)] * round(1000 * p) + [("p", "b", "c", 0)] * round(1000 * (1 - p))
    scale, misfit = preference.thurstone_case_v(_comps(rows), ["a", "b", "c"])
    assert scale["a"] - scale["c"] == pytest.approx(1.0, abs=0.01) and misfit < 0.001


def test_a_method_that_never_wins_is_named_and_bounded_not_scored_by_a_ridge():
    comps = _bt_study({"a": 0.0, "b": 0.4, "c": 0.9, "d": 1.3}, 10, 4, seed=1)
    comps.loc[comps["a"].eq("a"), "outcome"] = 0.0  # 'a' loses all its 120 comparisons
    methods = ["a", "b", "c", "d"]
    table, graph = preference.ranking(comps, methods, reps=200)
    assert graph.never_won == ["a"] and not graph.strongly_connected and graph.identified == ["b", "c", "d"]
    row = table.set_index("method").loc["a"]
    assert row["estimate"] == "prior-regularised; never won: upper bound" and row["ci_low"] == -np.inf
    # the bound: the score at which losing all 40 comparisons with each of b, c, d has probability 2.5%
    others = table.set_index("method").loc[["b", "c", "d"], "bt_score"].to_numpy()
    upper = row["ci_high"]
    assert sum(40 * np.log(special.expit(o - upper)) for o in others) == pytest.approx(math.log(0.025), abs=1e-6)
    # the identified methods' scores are the maximum likelihood of their own comparisons: no ridge in them
    rest = comps[~comps["a"].eq("a")]
    alone, _ = preference.ranking(rest, ["b", "c", "d"], reps=50)
    assert table.set_index("method").loc[["b", "c", "d"], "bt_score"].to_numpy() == pytest.approx(
        alone.set_index("method").loc[["b", "c", "d"], "bt_score"].to_numpy(), abs=1e-9)
    text = pairwise_inference.infer(comps, methods, preference_tests.share_tests(comps, methods), 100).ranking_text(100)
    assert "never preferred in any comparison: a" in text.lower() and "prior-regularised" in text


def test_graph_check_disconnected_and_chains():
    W = np.array([[0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 3], [0, 0, 1, 0]], float)  # {a, b} and {c, d} apart
    g = separation.check(W, ["a", "b", "c", "d"])
    assert not g.connected and not g.strongly_connected and "not connected" in " ".join(g.sentences())
    chain = _comps([("p1", "x", "y", 1), ("p2", "x", "y", 1), ("p1", "y", "z", 1), ("p2", "x", "z", 1)])
    g = separation.check(preference.preference_matrix(chain, ["x", "y", "z"])[0].to_numpy(), ["x", "y", "z"])
    assert g.components == [["x"], ["y"], ["z"]] and g.never_lost == ["x"] and g.never_won == ["z"]


def test_intervals_reach_nominal_coverage_where_the_percentile_interval_did_not():
    # 5 participants, BT model: the report's old percentile interval covers ~83% (benchmark: 500+ studies)
    bt = coverage("bt", 5, sims=80, reps=400, seed=11)
    assert bt["coverage"] >= 0.92 and bt["percentile_coverage"] <= 0.88
    jod = coverage("jod", 10, sims=60, reps=400, seed=12)
    assert jod["coverage"] >= 0.92


def test_davidson_ties_model_by_hand_and_beside_ties_half():
    # two methods: a 6 wins, b 3 wins, 2 ties -> pi_a / pi_b = 2, nu = 2 / sqrt(18)
    w = np.array([[0, 6.0], [3.0, 0]])
    t = np.array([[0, 2.0], [2.0, 0]])
    theta, nu, _ = ties.davidson(w, t)
    assert theta[0] - theta[1] == pytest.approx(math.log(2), abs=1e-5)
    assert nu == pytest.approx(2 / math.sqrt(18), abs=1e-5)
    comps = _comps([("p", "a", "b", 1)] * 6 + [("p", "a", "b", 0)] * 3 + [("p", "a", "b", 0.5)] * 2)
    result = ties.compare(comps, ["a", "b"])
    half = math.log(7 / 4)  # ties half: 7 of 11 -> log(7/4)
    assert result["max_abs_difference"] == pytest.approx(abs(math.log(2) - half) / 2, abs=1e-5)
    assert ties.compare(comps[comps["outcome"] != 0.5], ["a", "b"])["max_abs_difference"] < 1e-4


def test_kendall_u_and_its_chi_square_by_hand():
    # 4 judges, 3 objects; pair xy 3:1, xz 4:0, yz 2:2 -> sum C(a,2) = 3 + 6 + 2 = 11
    rows = [(f"j{k}", "x", "y", int(k < 3)) for k in range(4)] + [(f"j{k}", "x", "z", 1) for k in range(4)]
    rows += [(f"j{k}", "y", "z", int(k < 2)) for k in range(4)]
    u = kendall_u(_comps(rows))
    assert u["u"] == pytest.approx(2 * 11 / (6 * 3) - 1)
    # Kendall: chi2 = 4/(n-2) (11 - C(3,2) C(4,2) (n-3) / (2 (n-2))) = 2 (11 - 4.5), df = 3 * 4 * 3 / 4
    assert u["chi2"] == pytest.approx(13.0) and u["df"] == pytest.approx(9.0)
    assert u["p"] == pytest.approx(sps.chi2.sf(13.0, 9.0))


def test_rank_groups_compact_letters():
    order = ["A", "B", "C", "D"]
    assert rank_groups.letters(order, set()) == dict.fromkeys(order, "a")
    got = rank_groups.letters(order, {frozenset("AD"), frozenset("AC"), frozenset("BD")})
    assert got == {"A": "a", "B": "ab", "C": "bc", "D": "c"}
    for x, y in [("A", "C"), ("A", "D"), ("B", "D")]:
        assert not set(got[x]) & set(got[y])
    for x, y in [("A", "B"), ("B", "C"), ("C", "D")]:
        assert set(got[x]) & set(got[y])


def _acr_ratings(seed: int) -> pd.DataFrame:
    """10 raters, 4 methods x 10 items on 1..5: r8 answers at random, r9 reverses the scale."""
    rng = np.random.default_rng(seed)
    quality = [0.0, 0.3, 0.8, 1.5]
    level = rng.uniform(2, 4, 10) - np.mean(quality)
    rows = []
    for r in range(10):
        leniency = rng.normal(0, 0.4)
        for item in range(10):
            for m, q in enumerate(quality):
                v = int(np.clip(np.rint(level[item] + q + leniency + rng.normal(0, 0.8)), 1, 5))
                v = int(rng.integers(1, 6)) if r == 8 else (6 - v if r == 9 else v)
                rows.append({"participant_id": f"r{r}", "condition_id": f"{item}:{m}", "rating": float(v)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(5))
def test_planted_random_and_inverted_raters_are_flagged_and_no_honest_one(seed):
    result = screening(_acr_ratings(seed)).set_index("participant_id")
    assert result.loc[["r8", "r9"], "loo_rejected"].all()
    assert not result.drop(["r8", "r9"])["loo_rejected"].any()
    assert result.loc["r9", "r_loo"] < 0 and "loo_r<0.3" in result.loc["r8", "flagged_by"]
    assert list(bt500_screening(_acr_ratings(seed))["participant_id"]) == list(result.index)


def test_two_participants_six_comparisons_cannot_support_a_ranking():
    comps = _comps([("p1", "a", "b", 1), ("p1", "c", "d", 0), ("p1", "a", "c", 1),
                    ("p2", "b", "d", 1), ("p2", "a", "d", 1), ("p2", "b", "c", 0)])
    methods = ["a", "b", "c", "d"]
    result = pairwise_inference.infer(comps, methods, preference_tests.share_tests(comps, methods), 100)
    assert not result.supported
    assert result.reasons == [{"reason": "too_few_participants", "participants": 2, "minimum": 3},
                              {"reason": "thin_pairs", "thin": 6, "pairs": 6, "minimum": 5}]
    assert result.table[["ci_low", "ci_high", "jod_ci_low", "jod_ci_high"]].isna().all().all()
    assert set(result.table["rank_group"]) == {"a"}
    assert result.ranking_text(100).startswith(
        "The data cannot support a ranking yet: only 2 participant(s): intervals and tests across participants need "
        "at least 3; 6 of 6 method pairs have fewer than 5 comparisons. The scores below are provisional")


@pytest.fixture(scope="module")
def pairwise_run(import_source, tmp_path_factory):
    return StudyManifest.load(import_run(import_source, tmp_path_factory.mktemp("pw19") / "run", "pairwise"))


def test_analyze_names_the_never_winning_method_in_report_and_json(pairwise_run, tmp_path):
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze

    frame = simulate.from_protocol(pairwise_run, {"photo": -0.3, "adain": 0.0, "ours": 0.6}, 12, seed=2)
    # 'photo' never preferred: its row gets rating 0, the other image 1
    trials = frame[frame["role"].eq("rated")].groupby(["participant_id", "trial"])
    has_photo = trials["method"].transform(lambda s: s.eq("photo").any())
    rated = frame["role"].eq("rated") & has_photo
    frame.loc[rated, "rating"] = np.where(frame.loc[rated, "method"].eq("photo"), 0, 1)
    frame.to_csv(tmp_path / "sim.csv", index=False)
    summary = analyze(tmp_path / "sim.csv", AnalyzeOptions(out=tmp_path / "report", bootstrap=200), pairwise_run.run_dir)
    assert summary["separated_methods"]["never_won"] == ["photo"] and summary["ranking_supported"]
    saved = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert saved["comparison_graph"]["identified"] == ["adain", "ours"]
    photo = next(r for r in saved["ranking"] if r["method"] == "photo")
    assert photo["estimate"].startswith("prior-regularised") and photo["ci_low"] == -math.inf
    report = (tmp_path / "report" / "report.md").read_text()
    assert "never preferred in any comparison: photo" in report.lower() and "rank_group" in report
    assert "SYNTHETIC" in report and "Kendall's coefficient of agreement u" in report


def test_scale_table_intervals_use_the_t_quantile():
    comps = _bt_study({"a": 0.0, "b": 0.5, "c": 1.0}, 6, 5, seed=3)
    table, graph, boot = pairwise_scale.scale_table(comps, ["a", "b", "c"], "bt", reps=300, seed=0)
    se = boot.std(axis=0, ddof=1) * math.sqrt(6 / 5)
    half = (table["ci_high"] - table["score"]).to_numpy()
    assert graph.strongly_connected and half == pytest.approx(sps.t.ppf(0.975, 5) * se)


def test_table1_screen_loo_excludes_an_inverted_rater_and_names_the_rule(tmp_path):
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze
    from stylestudy.analysis.table1.audit import load_published

    frame = simulate.from_published(load_published(), 10, 5, seed=0)
    inverted = frame["participant_id"].eq("synthetic-04") & frame["block"].ne("attention")
    frame.loc[inverted, "rating"] = 6 - frame.loc[inverted, "rating"]
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    flag = analyze(tmp_path / "ratings.csv", AnalyzeOptions(out=tmp_path / "flag"))
    assert flag["loo_flagged"] == ["synthetic-04"] and flag["raters_excluded"] == {}
    assert flag["counts"]["participants"] == 10
    summary = analyze(tmp_path / "ratings.csv", AnalyzeOptions(out=tmp_path / "loo", screen="loo"))
    assert summary["raters_excluded"] == {"synthetic-04": "loo_r<0.3"}
    report = (tmp_path / "loo" / "report.md").read_text()
    assert "excluded: synthetic-04 (loo_r<0.3)" in report and "With every rater (before the exclusions" in report
    overall = {o["scope"]: o for o in summary["omnibus"]}["all blocks"]
    every = {o["scope"]: o for o in summary["omnibus_every_rater"]}["all blocks"]
    assert overall["participants"] == 9 and every["participants"] == 10
    assert every["mean_diff"] == pytest.approx({o["scope"]: o for o in flag["omnibus"]}["all blocks"]["mean_diff"])


def test_pairwise_rater_answering_reversed_is_flagged_and_the_ranking_shown_without_them():
    comps = _bt_study({"a": 0.0, "b": 0.5, "c": 1.0, "d": 1.5}, 10, 3, seed=0)
    reversed_ = comps["participant_id"].eq("p09")
    comps.loc[reversed_, "outcome"] = 1 - comps.loc[reversed_, "outcome"]
    methods = ["a", "b", "c", "d"]
    result = pairwise_inference.infer(comps, methods, preference_tests.share_tests(comps, methods), 200)
    assert result.flagged == ["p09"]
    assert result.raters.set_index("participant_id").loc["p09", "agreement"] < 0.3
    kept = comps[~reversed_]
    alone, _ = preference.ranking(kept, methods, reps=200)
    assert result.without_flagged["bt_score"].to_numpy() == pytest.approx(alone["bt_score"].to_numpy())
    assert result.summary()["raters_flagged"] == ["p09"] and "ranking_without_flagged" in result.summary()


def test_a_unanimous_pair_is_tested_exactly_and_the_never_winning_method_gets_its_own_rank_group():
    comps = _bt_study({"a": 0.0, "b": 0.4, "c": 0.9, "d": 1.3}, 10, 4, seed=1)
    comps.loc[comps["a"].eq("a"), "outcome"] = 0.0
    methods = ["a", "b", "c", "d"]
    tests = preference_tests.share_tests(comps, methods).set_index(["a", "b"])
    # t is undefined (every share is 0): the exact test over participants, 2 * 1/2^10, never p = 1
    assert math.isnan(tests.loc[("a", "b"), "p_ttest"]) and tests.loc[("a", "b"), "p"] == pytest.approx(2 * 0.5**10)
    assert tests.loc[("a", "b"), "p_holm"] < 0.05
    result = pairwise_inference.infer(comps, methods, tests.reset_index(), 200)
    groups = result.table.set_index("method")["rank_group"]
    assert not set(groups["a"]) & (set(groups["b"]) | set(groups["c"]) | set(groups["d"]))


def test_never_lost_is_said_only_of_a_method_that_never_lost():
    # a, b, c beat each other in a cycle (identified); d beats each of them 10 times but loses all 20 to e
    rows = [(f"p{k % 5}", x, y, float(k % 3 != 0)) for k in range(12) for x, y in [("a", "b"), ("b", "c"), ("a", "c")]]
    rows += [(f"p{k % 5}", x, "d", 0.0) for k in range(10) for x in "abc"]
    rows += [(f"p{k % 5}", "d", "e", 0.0) for k in range(20)]
    comps = _comps(rows)
    table, graph = preference.ranking(comps, list("abcde"), reps=50)
    kinds = table.set_index("method")["estimate"]
    assert graph.identified == ["a", "b", "c"] and graph.never_lost == ["e"]
    assert kinds["d"] == "prior-regularised; won every comparison with the methods placed below it: lower bound"
    assert kinds["e"] == "prior-regularised; never lost: lower bound"
