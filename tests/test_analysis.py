"""The analysis: numbers against hand computations and direct scipy calls, audits with known
answers, reconstructions that reproduce their targets, and the CLI on synthetic files."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from stylestudy.analysis.models.lmm import Step
from stylestudy.analysis.ratings.raters import agreement, bt500_screening, icc
from stylestudy.analysis.ratings.stats import (
    attainability,
    cell_tests,
    cohens_dz,
    min_attainable_p,
    mixed_model,
    omnibus,
    rank_biserial,
    wilcoxon_exact,
)
from stylestudy.analysis.render import statistics_text
from stylestudy.analysis.sources.ratings import load_ratings
from stylestudy.analysis.table1.audit import audit_cell, audit_table, load_published
from stylestudy.analysis.table1.simulate import from_design, from_published, reconstruct_cells
from stylestudy.analysis.table1.table import caption, table_frame, to_latex, to_markdown
from stylestudy.engine.study.errors import StyleStudyError


def _frame(cells: dict[tuple, tuple[list, list]]) -> pd.DataFrame:
    """{(block,row,column): (baseline ratings, normalized ratings)} -> export-format rows."""
    rows = []
    for (block, row, col), (b, n) in cells.items():
        for method, values in (("baseline", b), ("normalized", n)):
            for p, v in enumerate(values):
                rows.append({"participant_id": f"p{p}", "external_id": "", "trial": col, "pair_id": f"{block}{row}{col}",
                             "block": block, "row": row, "column": col, "column_label": f"c{col}", "method": method,
                             "condition_id": f"{block}-r{row}-c{col}-{method}", "image_id": f"{block}{row}{col}{method}", "position": 1 if method == "baseline" else 2,
                             "rating": v, "response_ms": 1000, "shown_ms": 5000, "flags": "", "rated_at": ""})
    return pd.DataFrame(rows)


B1 = [1, 2, 2, 3, 1]
N1 = [3, 4, 2, 5, 2]


@pytest.fixture()
def small(tmp_path):
    frame = _frame({("a", 1, 1): (B1, N1), ("a", 1, 2): ([4, 4, 5, 3, 4], [4, 5, 5, 4, 4])})
    frame.loc[(frame["participant_id"] == "p4") & (frame["column"] == 2) & (frame["method"] == "normalized"),
              ["rating", "flags"]] = [np.nan, "timeout"]
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    return path


def test_means_stds_and_accounting(small):
    rs = load_ratings(small)
    assert rs.counts["missing"] == 1 and rs.counts["usable"] == 19 and rs.counts["flag_timeout"] == 1
    tf = table_frame(rs, ddof=1)
    b_line = tf[(tf["method"] == "B")].iloc[0]
    assert b_line["c1"] == f"{np.mean(B1):.1f}±{np.std(B1, ddof=1):.2f}" == "1.8±0.84"
    n_line = tf[(tf["method"] == "N")].iloc[0]
    assert n_line["c2"] == "4.5±0.58 (n=4)"  # one timeout: n shown
    assert table_frame(rs, ddof=0)[tf["method"] == "B"].iloc[0]["c1"] == f"1.8±{np.std(B1):.2f}"
    assert n_line["shade_c2"] and not b_line["shade_c1"]  # default threshold a >= 4.0
    md = to_markdown(tf, caption(rs, 1))
    assert "**4.5±0.58 (n=4)**" in md and "ddof=1" in md
    assert "\\cellcolor{gray!25}" in to_latex(tf, "x") and "\\toprule" in to_latex(tf, "x")


def test_cell_tests_match_scipy_and_hand_values(small):
    rs = load_ratings(small)
    tests = cell_tests(rs.usable)
    c1 = tests[tests["column"] == 1].iloc[0]
    b, n = np.array(B1, float), np.array(N1, float)
    d = n - b
    assert c1["p_ttest"] == pytest.approx(sps.ttest_rel(n, b).pvalue)
    nz = d[d != 0]
    assert c1["p_sign"] == pytest.approx(sps.binomtest(int((nz > 0).sum()), len(nz)).pvalue)
    # Exact signed-rank by enumerating all sign flips of the mid-ranks.
    ranks = sps.rankdata(np.abs(nz))
    observed = ranks[nz > 0].sum()
    null = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=len(nz))]
    centre = ranks.sum() / 2
    p_hand = np.mean([abs(t - centre) >= abs(observed - centre) - 1e-12 for t in null])
    assert c1["p_wilcoxon"] == pytest.approx(p_hand)
    assert c1["rank_biserial"] == pytest.approx((ranks[nz > 0].sum() - ranks[nz < 0].sum()) / ranks.sum()) == 1.0
    assert c1["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    lo, hi = c1["ci_diff_t"]
    half = sps.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert (lo, hi) == pytest.approx((d.mean() - half, d.mean() + half))
    assert c1["n_pairs"] == 5 and tests[tests["column"] == 2].iloc[0]["n_pairs"] == 4  # the timeout's pair drops
    # Holm by hand over the two cells.
    ps = sorted(tests["p_wilcoxon"])
    assert sorted(tests["p_holm"]) == pytest.approx([min(1, 2 * ps[0]), min(1, max(2 * ps[0], ps[1]))])


def test_small_pieces():
    assert wilcoxon_exact(np.array([0.0, 0.0])) == (pytest.approx(np.nan, nan_ok=True), 1.0)
    assert wilcoxon_exact(np.array([1.0, 0.0]))[1] == 1.0
    assert rank_biserial(np.array([1.0, -1.0])) == 0.0
    assert cohens_dz(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)
    assert min_attainable_p(10) == pytest.approx(0.001953125)


def test_attainability_with_10_raters_and_26_cells():
    cells = pd.DataFrame({"min_attainable_p": [min_attainable_p(10)] * 26, "n_nonzero": [10] * 26})
    said = attainability(cells)
    assert said == {"cells": 26, "max_nonzero": 10, "min_attainable_p": pytest.approx(2 / 2**10), "alpha": 0.05,
                    "holm_first_threshold": pytest.approx(0.05 / 26), "attainable": False}  # 0.00195 > 0.00192
    note = statistics_text.attainability(said)
    assert "No cell can be significant after Holm correction" in note and "0.05/26" in note
    few = pd.DataFrame({"min_attainable_p": [min_attainable_p(12)] * 3, "n_nonzero": [12] * 3})
    assert attainability(few)["attainable"] and "is possible" in statistics_text.attainability(attainability(few))
    assert statistics_text.attainability(attainability(cells.iloc[:0])) == "No complete pairs: no per-cell tests."


def test_omnibus_and_mixed_model_recover_a_known_effect():
    cells = [{"block": b, "row": 1, "column": c, "method": m} for b in "ab" for c in (1, 2, 3)
             for m in ("baseline", "normalized")]
    frame = from_design(cells, participants=40, effect=1.0, seed=3, noise=0.6)
    frame["flags"] = ""
    omni = omnibus(frame)
    overall = omni[omni["scope"] == "all blocks"].iloc[0]
    assert overall["mean_diff"] == pytest.approx(1.0, abs=0.2) and overall["p_ttest"] < 1e-6
    mm = mixed_model(frame).first_contrast()
    assert mm["estimate"] == pytest.approx(1.0, abs=0.2) and mm["ci"][0] < mm["estimate"] < mm["ci"][1]
    null = from_design(cells, participants=40, effect=0.0, seed=4, noise=0.6)
    assert abs(mixed_model(null).first_contrast()["estimate"]) < 0.2


def test_mixed_model_is_crossed_and_recovers_planted_variances():
    """Participant and cell effects planted independently (crossed); the fit recovers both
    variances (to their sample values) and the method effect, and says what it fitted."""
    rng = np.random.default_rng(1)
    participants, cells = 40, 30
    u, v = rng.normal(0, 0.8, participants), rng.normal(0, 0.6, cells)
    rows = [{"participant_id": f"p{p}", "block": "a", "row": c // 10 + 1, "column": c % 10 + 1, "method": m,
             "rating": 3 + 0.5 * (m == "normalized") + u[p] + v[c] + rng.normal(0, 0.5)}
            for p in range(participants) for c in range(cells) for m in ("baseline", "normalized")]
    fit = mixed_model(pd.DataFrame(rows), generalise="items")
    mm = {**fit.to_json(), **fit.first_contrast()}
    # No participant x method or cell x method variance was planted: the maximal model is
    # singular, the participant slopes stay but their variance (at 0) is left free, the
    # participants' means absorbed; the result says all of it and names the model it fitted.
    # The cell slopes stay here: at lme4's optimum (REML criterion 3838.478, lme4 the same) their
    # variance is 0.0024 and the likelihood ratio 1.72 (p = 0.19 < 0.2); the old optimiser stopped
    # with it at 0 (3840.195), a likelihood ratio of 0, and dropped them.
    assert statistics_text.formula(mm) == ("rating ~ method + participant (fixed) + (1 | participant:method) + "
                                           "(1 | cell) + (1 | cell:method) with the participant:method variance "
                                           "unrestricted")
    assert [n.step for n in fit.notes] == [Step.SINGULAR, Step.UNRESTRICTED]
    assert "(0 + method | participant) + (0 + method | cell) is singular" in statistics_text.fit_steps(mm)
    assert abs(mm["variances"]["participant:method"]["(Intercept)"]) < 0.01
    assert 0 < mm["variances"]["cell:method"]["(Intercept)"] < 0.01
    assert mm["residual_var"] == pytest.approx(0.25, rel=0.1) and mm["estimate"] == pytest.approx(0.5, abs=0.05)
    bounded = mixed_model(pd.DataFrame(rows), variances="bounded", generalise="items")  # lme4's fit: every variance component
    bounded = {**bounded.to_json(), **bounded.first_contrast()}
    assert bounded["variances"]["participant"]["(Intercept)"] == pytest.approx(np.var(u, ddof=1), rel=0.1)
    assert bounded["variances"]["cell"]["(Intercept)"] == pytest.approx(np.var(v, ddof=1), rel=0.1)
    assert bounded["estimate"] == pytest.approx(mm["estimate"], abs=1e-9)


def test_a_second_rating_of_one_condition_is_never_dropped_silently(small, tmp_path, capsys):
    from stylestudy.cli import main

    frame = pd.read_csv(small)
    extra = frame[(frame["participant_id"] == "p1") & (frame["column"] == 1)].copy()
    extra["rating"], extra["trial"] = 5, 99
    doubled = tmp_path / "doubled.csv"
    pd.concat([frame, extra]).to_csv(doubled, index=False)
    with pytest.raises(StyleStudyError, match=r"p1 rated a-r1-c1-baseline more than once"):
        load_ratings(doubled)
    assert main(["analyze", str(doubled), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--duplicates first|mean" in err
    first = load_ratings(doubled, duplicates="first")
    mean = load_ratings(doubled, duplicates="mean")
    pick = lambda rs: rs.usable.set_index(["participant_id", "condition_id"])["rating"]  # noqa: E731
    assert pick(first)[("p1", "a-r1-c1-baseline")] == B1[1]
    assert pick(mean)[("p1", "a-r1-c1-baseline")] == (B1[1] + 5) / 2
    assert first.counts["duplicates_merged"] == mean.counts["duplicates_merged"] == 2
    assert len(first.usable) == len(load_ratings(small).usable)
    assert main(["analyze", str(doubled), "--out", str(tmp_path / "m"), "--duplicates", "mean"]) == 0
    assert "2 repeated ratings of a condition merged (mean)" in (tmp_path / "m" / "report.md").read_text()


def test_an_export_of_version_0_1_is_read_by_condition(small, tmp_path):
    frame = pd.read_csv(small).drop(columns=["condition_id"]).rename(columns={"image_id": "stimulus_id"})
    old = tmp_path / "old.csv"
    frame.to_csv(old, index=False)
    rs = load_ratings(old)
    assert set(rs.usable["condition_id"]) == {f"a-r1-c{c}-{m}" for c in (1, 2) for m in ("baseline", "normalized")}
    assert rs.counts["usable"] == load_ratings(small).counts["usable"]


def test_bt500_rejects_the_obvious_outlier():
    rng = np.random.default_rng(0)
    rows = []
    for s in range(30):
        for p in range(15):
            # 14 raters agree around 3 (2..4); p14 answers at the extremes, both ways.
            value = int(np.clip(np.rint(3 + rng.normal(0, 0.7)), 2, 4)) if p < 14 else (5 if s % 2 else 1)
            rows.append({"participant_id": f"p{p:02d}", "condition_id": f"s{s}", "rating": value})
    result = bt500_screening(pd.DataFrame(rows))
    assert result.loc[result["rejected"], "participant_id"].tolist() == ["p14"]
    assert (result.loc[result["participant_id"] == "p14", "N"] == 30).all()


def test_icc_against_shrout_fleiss_1979():
    data = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
    result = icc(data)
    assert result["icc2_1"] == pytest.approx(0.29, abs=0.005) and result["icc2_k"] == pytest.approx(0.62, abs=0.005)


def test_perfect_agreement():
    rows = [{"participant_id": p, "condition_id": s, "rating": 1 + (s % 5)} for p in range(4) for s in range(10)]
    result = agreement(pd.DataFrame(rows))
    assert result["krippendorff_alpha_ordinal"] == pytest.approx(1.0) and result["icc2_1"] == pytest.approx(1.0)


@pytest.mark.parametrize("mean,std,n,verdict", [
    (2.0, 1.00, 3, "ddof=1"),   # {1,2,3}: sample sd 1.00
    (2.0, 0.82, 3, "ddof=0"),   # population sd 0.816
    (2.0, 0.50, 3, "neither"),
    (1.5, 0.50, 3, "mean impossible (GRIM)"),  # 4.5 / 3 is no integer sum
    (3.0, 0.00, 4, "both"),
])
def test_audit_known_answers(mean, std, n, verdict):
    assert audit_cell(mean, std, n, 5).verdict == verdict


def test_audit_of_the_paper_finds_mixed_formulas():
    audit = audit_table(load_published())
    counts = audit["verdict"].value_counts()
    assert counts["neither"] == 2 and counts["ddof=1"] > 10 and counts["ddof=0"] > 10
    odd = audit[audit["verdict"] == "neither"]
    assert set(zip(odd["mean"], odd["std"])) == {(1.9, 0.36), (2.1, 0.31)}


def test_reconstruction_reproduces_targets():
    table = load_published()
    cells, notes = reconstruct_cells(table, seed=5)
    assert len(notes) == 2
    frame = from_published(table, seed=5, cells=cells)
    assert frame["synthetic"].eq(1).all() and frame["participant_id"].str.startswith("synthetic-").all()
    audit = audit_table(table).set_index(["block", "row", "method", "column"])
    for (block, row, method, col), part in frame.groupby(["block", "row", "method", "column"]):
        target = table[(table.block == block) & (table.row == row) & (table.method == method) & (table.column == col)].iloc[0]
        verdict = audit.loc[(block, row, method, col), "verdict"]
        if verdict in ("neither",):
            continue
        x = part["rating"].to_numpy(float)
        assert abs(x.mean() - target["mean"]) <= 0.05 + 1e-9
        sds = [x.std(ddof=0), x.std(ddof=1)]
        assert min(abs(s - target["std"]) for s in sds) <= 0.005 + 1e-9
    # Different seeds pair participants differently.
    other = from_published(table, seed=6, cells=cells)
    assert not frame.sort_values(["block", "row", "column", "method", "participant_id"])["rating"].reset_index(drop=True).equals(
        other.sort_values(["block", "row", "column", "method", "participant_id"])["rating"].reset_index(drop=True))


def _paper_effect(table: pd.DataFrame) -> float:
    """Mean over the table's cells of normalized - baseline (each participant rates every cell)."""
    wide = table.pivot_table(index=["block", "row", "column"], columns="method", values="mean")
    return float((wide["normalized"] - wide["baseline"]).mean())


def test_ratings_without_any_variation_are_named_not_tested(tmp_path, capsys):
    """Every rating the same: the report says the mixed model cannot test them and agreement is
    undefined, instead of p = 0 from standard errors of 0 (what the mixed model gave before)."""
    from stylestudy.cli import main

    csv = tmp_path / "paper.csv"
    assert main(["simulate", "--from-paper", "--out", str(csv), "--pairings", "1", "--seed", "2"]) == 0
    frame = pd.read_csv(csv)
    frame.assign(rating=3).to_csv(csv, index=False)
    capsys.readouterr()
    assert main(["analyze", str(csv), "--out", str(tmp_path / "rep")]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "Mixed model (second): the mixed model cannot test these data: it fits every rating exactly" in report
    assert "ICC(2,1) = undefined (no variation, or too few stimuli or raters)" in report
    said = json.loads((tmp_path / "rep" / "summary.json").read_text())["mixed_model"]
    assert said == {"unavailable": "fits_every_rating_exactly", "notes": []}


def test_cli_simulate_from_paper_then_analyze(tmp_path, capsys):
    from stylestudy.cli import main

    csv = tmp_path / "paper.csv"
    assert main(["simulate", "--from-paper", "--out", str(csv), "--pairings", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "over 3 random pairings" in out and "all blocks" in out
    report = tmp_path / "rep"
    assert main(["analyze", str(csv), "--out", str(report), "--compare-paper"]) == 0
    summary = json.loads((report / "summary.json").read_text())
    assert summary["synthetic"] and summary["cells"] == 26 and summary["cells_significant_holm"] == 0
    # Means of 10 ratings are tenths: every cell mean is the printed one (the two cells that fit
    # no multiset get the nearest with the same mean), and the all-blocks omnibus difference is
    # the mean over the 26 cells of the table's normalized - baseline means.
    paper = load_published()
    compared = pd.read_csv(report / "compare_paper.csv")
    assert len(compared) == 52 and compared["difference"].abs().max() < 1e-9
    assert summary["compare_paper"]["pearson_r"] == pytest.approx(1.0)
    omnibus = {o["scope"]: o for o in summary["omnibus"]}
    assert omnibus["all blocks"]["mean_diff"] == pytest.approx(_paper_effect(paper), abs=1e-9)
    # --mixed-slopes lrt: the participant slopes (variance 0 in these data) are dropped and the report says so
    assert summary["mixed_model"]["selection"] == "items"
    assert summary["mixed_model"]["variance_bounds"] == "unrestricted"
    assert main(["analyze", str(csv), "--out", str(tmp_path / "lrt"), "--mixed-slopes", "lrt",
                 "--mixed-variances", "bounded"]) == 0
    selected = json.loads((tmp_path / "lrt" / "summary.json").read_text())["mixed_model"]
    assert selected["selection"] == "lrt" and "participant:method" not in selected["formula"]
    assert selected["variance_bounds"] == "bounded"
    dropped = [n for n in selected["notes"] if n["step"] == "slope_not_supported"]
    assert dropped[0]["terms"] == ["participant"] and dropped[0]["numbers"]["p"] > 0.2
    steps = statistics_text.fit_steps(selected)
    assert "the participant:method variance is not supported (likelihood ratio p = " in steps
    assert steps in (tmp_path / "lrt" / "report.md").read_text()

    # Negative control: a perturbed table (block a's methods swapped) simulated the same way and
    # analysed against the paper's table: exactly the swapped cells differ, by the paper's own
    # normalized - baseline gaps, and block a's omnibus difference flips sign.
    perturbed = paper.copy()
    in_a = perturbed["block"] == "a"
    perturbed.loc[in_a, "method"] = perturbed.loc[in_a, "method"].map({"baseline": "normalized", "normalized": "baseline"})
    perturbed_csv = tmp_path / "perturbed_table.csv"
    perturbed.to_csv(perturbed_csv, index=False)
    assert main(["simulate", "--from-paper", "--table", str(perturbed_csv), "--out", str(tmp_path / "perturbed.csv"),
                 "--seed", "1"]) == 0
    control = tmp_path / "control"
    assert main(["analyze", str(tmp_path / "perturbed.csv"), "--out", str(control), "--compare-paper"]) == 0
    control_summary = json.loads((control / "summary.json").read_text())
    got = pd.read_csv(control / "compare_paper.csv").set_index(["block", "row", "method", "column"])["difference"]
    wide = paper.pivot_table(index=["block", "row", "column"], columns="method", values="mean")
    gap = wide["normalized"] - wide["baseline"]  # the paper's N - B per cell
    for (block, row, method, column), difference in got.items():
        want = 0.0 if block != "a" else (-gap[(block, row, column)] if method == "normalized" else gap[(block, row, column)])
        assert difference == pytest.approx(want, abs=1e-9), (block, row, method, column)
    assert (got.abs() > 0.05).sum() == 2 * int((gap.loc["a"].abs() > 0.05).sum()) > 0
    assert control_summary["compare_paper"]["pearson_r"] < 0.99
    control_omnibus = {o["scope"]: o for o in control_summary["omnibus"]}
    assert control_omnibus["block a"]["mean_diff"] == pytest.approx(-omnibus["block a"]["mean_diff"], abs=1e-9)
    assert control_omnibus["block b"]["mean_diff"] == pytest.approx(omnibus["block b"]["mean_diff"], abs=1e-9)
    for name in ("table.md", "table.tex", "table.html", "table.csv", "stats.csv", "report.html", "report.md",
                 "heatmap_means.png", "heatmap_difference.png", "paired_cells.png", "distributions.png", "raters.png"):
        assert (report / name).stat().st_size > 0, name
    html = (report / "report.html").read_text()
    assert "data:image/png;base64," in html and "SYNTHETIC DATA" in html and "<img src=\"/" not in html
    assert main(["audit-table"]) == 0
    assert "2 fit neither" in capsys.readouterr().out


def test_cli_simulate_study_with_power(tmp_path, capsys):
    from stylestudy.cli import main

    out = tmp_path / "sim.csv"
    assert main(["simulate", "--study", "studies/table1", "--participants", "6", "--effect", "0.6", "--out", str(out),
                 "--power", "4,12", "--reps", "30"]) == 0
    text = capsys.readouterr().out
    assert "80% power" in text
    frame = pd.read_csv(out)
    assert len(frame) == 6 * 52 and set(frame["method"]) == {"baseline", "normalized"}


def test_cli_errors(tmp_path, capsys):
    from stylestudy.cli import main

    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert main(["analyze", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "r")]) == 2
    assert "is none of the input layouts" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "missing.csv")]) == 2
    assert main(["analyze", str(tmp_path / "bad.csv"), "--decimals", "x"]) == 2


def test_table1_analysis_is_a_typed_result_and_records_its_exclusions(tmp_path):
    """The Table 1 analysis returns numbers and tables; an inverted rater excluded by --screen loo is
    named with its rule, the omnibus before the exclusion is kept, and the cell counts match the tests."""
    from stylestudy.analysis.table1.analysis import Table1Analysis, analyze_table1

    frame = from_published(load_published(), 10, 5, seed=0)
    inverted = frame["participant_id"].eq("synthetic-04") & frame["block"].ne("attention")
    frame.loc[inverted, "rating"] = 6 - frame.loc[inverted, "rating"]
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    ratings = load_ratings(tmp_path / "ratings.csv")
    result = analyze_table1(ratings, "loo", 0.3, 0, "items", "unrestricted", compare_paper_ddof=1)
    assert isinstance(result, Table1Analysis)
    assert result.excluded == {"synthetic-04": "loo_r<0.3"} and result.by_rule() == {"loo_r<0.3": ["synthetic-04"]}
    assert ratings.usable["participant_id"].nunique() == 9 and ratings.counts["excluded_loo"] > 0
    every = result.omnibus_every_rater.set_index("scope")
    assert every.loc["all blocks", "participants"] == 10
    assert result.omnibus.set_index("scope").loc["all blocks", "participants"] == 9
    assert result.cell_counts()["cells_significant_holm"] == int((result.tests["p_holm"] < 0.05).sum())
    assert result.compared is not None and -1 <= result.pearson_r <= 1
