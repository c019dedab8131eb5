"""Analysis of the acr / pairwise / reference-paired protocols against hand values and planted truths."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from stylestudy.analysis.pairwise import preference, preference_tests
from stylestudy.analysis.ratings import scores
from stylestudy.analysis.table1 import simulate
from stylestudy.engine.study.manifest import StudyManifest
from tests.conftest import import_run


def _comps(rows):
    return pd.DataFrame([{"participant_id": p, "trial": t, "item": "i", "a": a, "b": b, "outcome": o}
                         for t, (p, a, b, o) in enumerate(rows)])


def test_bradley_terry_matches_the_closed_form_for_two_methods():
    # a beats b 3 times, b beats a once: the BT MLE has P(a > b) = 3/4, so s_a - s_b = log 3.
    comps = _comps([("p1", "a", "b", 1), ("p1", "a", "b", 1), ("p2", "a", "b", 1), ("p2", "a", "b", 0)])
    s = preference.bradley_terry(comps, ["a", "b"], alpha=1e-9)
    assert s[0] - s[1] == pytest.approx(math.log(3), abs=1e-4) and s.sum() == pytest.approx(0, abs=1e-9)
    # a tie counts half a win each way: 2 wins + 1 tie of 3 -> P = 2.5/3, s_a - s_b = log 5
    tied = _comps([("p1", "a", "b", 1), ("p1", "a", "b", 1), ("p2", "a", "b", 0.5)])
    s = preference.bradley_terry(tied, ["a", "b"], alpha=1e-9)
    assert s[0] - s[1] == pytest.approx(math.log(5), abs=1e-4)
    wins, counts = preference.preference_matrix(tied, ["a", "b"])
    assert wins.loc["a", "b"] == 2.5 and wins.loc["b", "a"] == 0.5 and counts.loc["a", "b"] == 3
    assert preference.win_rates(tied, ["a", "b"]).tolist() == pytest.approx([2.5 / 3, 0.5 / 3])


def test_circular_triads_and_zeta_by_hand():
    # p1: a>b, b>c, c>a (a cycle); p2: a>b, b>c, a>c (transitive)
    comps = _comps([("p1", "a", "b", 1), ("p1", "b", "c", 1), ("p1", "a", "c", 0),
                    ("p2", "a", "b", 1), ("p2", "b", "c", 1), ("p2", "a", "c", 1)])
    t = preference.circular_triads(comps, ["a", "b", "c"]).set_index("participant_id")
    assert t.loc["p1", "circular_triads"] == 1 and t.loc["p1", "zeta"] == 0.0  # d_max = (27 - 3) / 24 = 1
    assert t.loc["p2", "circular_triads"] == 0 and t.loc["p2", "zeta"] == 1.0


def test_thurstone_case_v_by_hand():
    # P(a > b) = 0.8 over 10 comparisons: z = Phi^-1(0.8); scale = +-z/2
    comps = _comps([("p", "a", "b", 1)] * 8 + [("p", "a", "b", 0)] * 2)
    scale, misfit = preference.thurstone_case_v(comps, ["a", "b"])
    z = sps.norm.ppf(0.8)
    assert scale["a"] == pytest.approx(z / 2) and scale["b"] == pytest.approx(-z / 2) and misfit < 1e-9


@pytest.fixture(scope="module")
def pairwise_run(import_source, tmp_path_factory):
    return StudyManifest.load(import_run(import_source, tmp_path_factory.mktemp("pw") / "run", "pairwise"))


def test_bradley_terry_recovers_a_planted_ranking_with_cis(pairwise_run):
    planted = {"photo": -1.0, "adain": 0.0, "ours": 0.6}
    frame = simulate.from_protocol(pairwise_run, planted, 30, seed=3)
    usable = frame[frame["role"].eq("rated")]
    comps = preference.comparisons(usable)
    assert len(comps) == 30 * 12
    table = preference.bt_table(comps, pairwise_run.methods, reps=300, seed=0)
    assert table["method"].tolist() == ["ours", "adain", "photo"]
    assert (table["ci_low"] <= table["bt_score"]).all() and (table["bt_score"] <= table["ci_high"]).all()
    assert table.loc[0, "ci_low"] > table.loc[2, "ci_high"]  # best and worst are told apart
    # On the Thurstone model the simulation uses, BT and Case V order the methods alike.
    scale, misfit = preference.thurstone_case_v(comps, pairwise_run.methods)
    assert scale.sort_values(ascending=False).index.tolist() == ["ours", "adain", "photo"] and misfit < 0.1
    # planted differences (noise 0.8 per judgment): P(ours > photo) = Phi(1.6 / (0.8 * sqrt 2)) = 0.92
    tests = preference_tests.share_tests(comps, pairwise_run.methods).set_index(["a", "b"])
    assert tests.loc[("ours", "photo"), "participant_share_a"] == pytest.approx(sps.norm.cdf(1.6 / (0.8 * math.sqrt(2))), abs=0.08)


def test_mos_and_cis_against_hand_values():
    usable = pd.DataFrame({
        "participant_id": ["p1", "p2", "p3", "p1", "p2", "p3"], "condition_id": ["x:a"] * 3 + ["x:b"] * 3,
        "method": ["a"] * 3 + ["b"] * 3, "row_label": ["x"] * 6, "rating": [3.0, 4.0, 5.0, 2.0, 2.0, 2.0]})
    per = scores.condition_mos(usable).set_index("condition_id")
    half = sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # s = 1 for 3, 4, 5
    assert per.loc["x:a", "mos"] == 4.0 and per.loc["x:a", "std"] == 1.0
    assert (per.loc["x:a", "ci_low"], per.loc["x:a", "ci_high"]) == pytest.approx((4 - half, 4 + half))
    assert (per.loc["x:b", "ci_low"], per.loc["x:b", "ci_high"]) == (2.0, 2.0)
    mos = scores.method_mos(usable, ["a", "b"]).set_index("method")
    # clustered by participant: one rating each here, so the t interval of 3, 4, 5
    assert mos.loc["a", "mos"] == 4.0 and (mos.loc["a", "ci_low"], mos.loc["a", "ci_high"]) == pytest.approx(
        (4 - half, 4 + half))
    assert (mos.loc["b", "ci_low"], mos.loc["b", "ci_high"]) == (2.0, 2.0)
    # unbalanced: p1 rates a twice (3 and 5), p2 once (4), p3 once (2): ratio 14/4, cluster-robust SE by hand
    more = pd.DataFrame({"participant_id": ["p1", "p1", "p2", "p3"], "method": "a", "rating": [3.0, 5.0, 4.0, 2.0]})
    row = scores.method_mos(more, ["a"]).iloc[0]
    mos_a = 14 / 4
    se = math.sqrt(3 / 2 * ((8 - 2 * mos_a) ** 2 + (4 - mos_a) ** 2 + (2 - mos_a) ** 2)) / 4
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((mos_a - sps.t.ppf(0.975, 2) * se,
                                                             mos_a + sps.t.ppf(0.975, 2) * se))
    pair = scores.participant_pair_tests(usable, ["a", "b"]).iloc[0]
    assert pair["mean_diff"] == 2.0 and pair["p_ttest"] == pytest.approx(sps.ttest_1samp([1, 2, 3], 0).pvalue)


def test_repeat_consistency_and_gold_by_hand():
    rows = pd.DataFrame({
        "participant_id": ["p1"] * 4 + ["p2"] * 3, "condition_id": ["x:a", "y:a", "x:a", "y:a", "x:a", "x:a", "y:photo"],
        "role": ["rated", "rated", "repeat", "repeat", "rated", "repeat", "rated"],
        "rating": [4, 2, 4, 5, 3, 1, 4], "method": ["a"] * 6 + ["photo"], "flags": [""] * 6 + ["gold_failed"]})
    c = scores.repeat_consistency(rows).set_index("participant_id")
    assert c.loc["p1", "repeats"] == 2 and c.loc["p1", "mean_abs_diff"] == 1.5 and c.loc["p1", "exact_agreement"] == 0.5
    assert c.loc["p2", "mean_abs_diff"] == 2.0
    gold = scores.gold_failures(rows, "photo").set_index("participant_id")
    assert gold.loc["p2", "gold_answered"] == 1 and gold.loc["p2", "gold_failed"] == 1 and "p1" not in gold.index


def test_acr_analysis_ranks_planted_methods_and_writes_the_report(import_source, tmp_path):
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze

    run = import_run(import_source, tmp_path / "run", "acr", repeats=2)
    manifest = StudyManifest.load(run)
    frame = simulate.from_protocol(manifest, {"photo": -1.5, "adain": 0.0, "ours": 0.8}, 16, seed=5)
    frame.to_csv(tmp_path / "sim.csv", index=False)
    summary = analyze(tmp_path / "sim.csv", AnalyzeOptions(out=tmp_path / "report"), run)
    assert summary["protocol"] == "acr" and summary["synthetic"]
    assert [r["method"] for r in summary["ranking"]] == ["ours", "adain", "photo"]
    contrasts = {(c["a"], c["b"]): c for c in summary["mixed_model"]["contrasts"]}
    assert contrasts[("ours", "photo")]["estimate"] > 1.5 and contrasts[("ours", "photo")]["p_holm"] < 0.001
    assert summary["repeat_consistency"]["mean_abs_diff"] < 1.5
    for name in ("ranking.png", "item_mos.png", "ranking.csv", "condition_mos.csv", "sureal_dataset.json"):
        assert (tmp_path / "report" / name).is_file(), name
    import json

    sureal = json.loads((tmp_path / "report" / "sureal_dataset.json").read_text())
    assert len(sureal["ref_videos"]) == 4 and len(sureal["dis_videos"]) == 12
    assert all(len(d["os"]) == 16 for d in sureal["dis_videos"])


def test_paired_mixed_model_fits_every_rating_of_the_reference(import_source, tmp_path):
    """A paired study rates its reference once per trial (twice per item with three methods): the
    mixed model takes each of those ratings, not their per-participant mean (averaged, the
    reference's rows are less noisy than the model's one residual variance assumes, and the test
    was conservative), and says how it treated a rater x method variance at 0."""
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze

    run = import_run(import_source, tmp_path / "run", "paired", reference_method="photo")
    frame = simulate.from_protocol(StudyManifest.load(run), {"photo": 0.0, "adain": 0.0, "ours": 1.0}, 12, seed=8)
    frame.to_csv(tmp_path / "sim.csv", index=False)
    summary = analyze(tmp_path / "sim.csv", AnalyzeOptions(out=tmp_path / "report"), run)
    rated = frame[frame["role"].eq("rated")]
    twice = rated.groupby(["participant_id", "condition_id", "method"]).size()
    assert set(twice[twice == 2].index.get_level_values("method")) == {"photo"} and (twice == 2).sum() == 12 * 4
    mixed = summary["mixed_model"]
    assert mixed["n_obs"] == len(rated) == 12 * 16
    assert mixed["selection"] == "items" and mixed["variance_bounds"] == "unrestricted"
    ours = next(c for c in mixed["contrasts"] if {c["a"], c["b"]} == {"photo", "ours"})
    assert ours["estimate"] * (1 if ours["a"] == "ours" else -1) > 0.5 and ours["p_holm"] < 0.01


def test_acr_inverted_rater_is_flagged_and_the_ranking_shown_without_them(import_source, tmp_path):
    """One participant rates on a reversed scale: the leave-one-out correlation names them, and the
    report gives the MOS again without them (the path that reads the flagged raters' ratings out)."""
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze

    run = import_run(import_source, tmp_path / "run", "acr")
    frame = simulate.from_protocol(StudyManifest.load(run), {"photo": -1.5, "adain": 0.0, "ours": 0.8}, 10, seed=3)
    inverted = frame["participant_id"].unique()[0]
    rated = frame["participant_id"].eq(inverted) & frame["rating"].notna()
    frame.loc[rated, "rating"] = 6 - frame.loc[rated, "rating"].astype(float)
    frame.to_csv(tmp_path / "sim.csv", index=False)
    summary = analyze(tmp_path / "sim.csv", AnalyzeOptions(out=tmp_path / "report"), run)
    without = {r["method"]: r for r in summary["ranking_without_flagged"]}
    assert set(without) == {"photo", "adain", "ours"} and without["ours"]["mos"] > without["photo"]["mos"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Ranking without the flagged raters" in report and inverted in report.split("without the flagged")[1]


def test_power_grows_with_participants_and_a_null_difference_is_not_counted(pairwise_run):
    table = simulate.protocol_power(pairwise_run, {"photo": -1.0, "adain": 0.0, "ours": 0.0}, [4, 24], reps=20)
    assert table["power ours-photo"].iloc[1] >= table["power ours-photo"].iloc[0]
    assert table["power ours-photo"].iloc[1] >= 0.9
    assert "power adain-ours" not in table  # equal planted qualities: nothing to separate
    flat = simulate.protocol_power(pairwise_run, {"photo": 0.0, "adain": 0.0, "ours": 0.0}, [4], reps=3)
    assert np.isnan(flat["power all"].iloc[0])


def test_the_power_test_rejects_a_null_difference_at_about_alpha(pairwise_run):
    """The pairwise test that power counts, on studies with no planted difference (40 simulated
    studies of 8 participants, 3 method pairs each, fixed seeds): it rejects at p < 0.05 about 5%
    of the time, i.e. the count is consistent with alpha (two-sided binomial test, p > 0.01; the
    seeds are fixed, so this is deterministic).  Observed: 6 of 120 (5.0%)."""
    from scipy import stats as sps

    p_values = []
    for r in range(40):
        frame = simulate.from_protocol(pairwise_run, {"photo": 0.0, "adain": 0.0, "ours": 0.0}, 8, seed=7919 * r + 8)
        usable = frame[frame["role"].eq("rated") & frame["rating"].notna()]
        p_values += preference_tests.share_tests(preference.comparisons(usable), pairwise_run.methods)["p"].fillna(1.0).tolist()
    rejected = sum(p < 0.05 for p in p_values)
    print(f"null rejections: {rejected} of {len(p_values)}")
    assert len(p_values) == 120 and sps.binomtest(rejected, len(p_values), 0.05).pvalue > 0.01


def test_position_bias_by_hand():
    usable = pd.DataFrame({"position": [1, 2, 1, 2, 1, 2, 1, 2], "rating": [1, 0, 1, 0, 1, 0, 0, 0],
                           "flags": ["", "", "", "", "", "", "no_preference", "no_preference"]})
    bias = preference.position_bias(usable)
    assert bias["decisive"] == 3 and bias["image1_share"] == 1.0 and bias["p"] == pytest.approx(0.25)


def test_each_protocol_analysis_is_a_typed_result_of_numbers(pairwise_run, import_source, tmp_path):
    """The analyses return dataclasses of numbers and tables (the words are the report's): the
    pairwise result's counts agree with its own comparisons, the acr result's MOS with a hand mean,
    and both summaries survive a JSON round trip unchanged."""
    import dataclasses
    import json

    from stylestudy.analysis.pairwise.analysis import PairwiseAnalysis, analyze_pairwise
    from stylestudy.analysis.ratings.analysis import RatingsAnalysis, analyze_ratings

    frame = simulate.from_protocol(pairwise_run, {"photo": -1.0, "adain": 0.0, "ours": 0.6}, 8, seed=4)
    usable = frame[frame["role"].eq("rated")].copy()
    usable["rating"] = usable["rating"].astype(float)
    pw = analyze_pairwise(usable, pairwise_run.methods, bootstrap=100, seed=0)
    assert isinstance(pw, PairwiseAnalysis) and len(pw.comparisons) == 8 * 12
    assert pw.ties == int((pw.comparisons["outcome"] == 0.5).sum())
    share = pw.preference_share()
    assert share.loc["ours", "photo"] + share.loc["photo", "ours"] == pytest.approx(1.0)
    assert json.loads(json.dumps(pw.summary(), default=str))["comparisons"] == 96

    acr = StudyManifest.load(import_run(import_source, tmp_path / "acr", "acr"))
    frame = simulate.from_protocol(acr, {"photo": -1.0, "adain": 0.0, "ours": 0.8}, 6, seed=2)
    usable = frame[frame["role"].eq("rated") & frame["rating"].notna()].copy()
    usable["rating"] = usable["rating"].astype(float)
    result = analyze_ratings(usable, frame, acr.methods, "acr", None, "", 5, 0.3)
    assert isinstance(result, RatingsAnalysis)
    words = [f.name for f in dataclasses.fields(result) if isinstance(getattr(result, f.name), str)]
    assert sorted(words) == ["gold_method", "kind"]  # names, not sentences
    mos = result.table.set_index("method")["mos"]
    by_hand = usable.groupby(["participant_id", "method"])["rating"].mean().groupby("method").mean()
    assert mos["ours"] == pytest.approx(by_hand["ours"]) and result.participants == 6
    assert json.loads(json.dumps(result.summary(), default=str))["ranking"][0]["method"] == mos.index[0]
