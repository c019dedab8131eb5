"""``analyze --metrics``: P.1401 agreement measures against hand values, planted studies, and the
command end to end on a generated run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import ImageFilter

from stylestudy.analysis.agreement.analysis import analyze_agreement
from stylestudy.analysis.agreement.mapping import fit_mapping
from stylestudy.analysis.agreement.measures import point_agreement
from stylestudy.cli import main
from stylestudy.engine.neural.tensors import to_tensor
from tests.conftest import IMPORT_ITEMS, _pattern, import_or_missing, import_run

BLURS = (0.0, 0.7, 1.5, 3.0, 5.0)


@pytest.fixture(autouse=True)
def needs_piq():
    """SSIM and MS-SSIM come from piq, a dependency (pip install -e . installs it)."""
    import_or_missing("piq", "pip install piq")



def blur_study(participants: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four items, each blurred at five strengths: real SSIM to the sharp image, a pure-noise metric,
    and ACR ratings whose planted quality falls with blur strength."""
    from stylestudy.engine.metrics import structural

    rng = np.random.default_rng(seed)
    metrics, ratings = [], []
    for i in range(4):
        sharp = _pattern(48, 48, 40 + i)
        for k, radius in enumerate(BLURS):
            cid, method = f"item{i}:blur{k}", f"blur{k}"
            blurred = sharp.filter(ImageFilter.GaussianBlur(radius)) if radius else sharp
            metrics.append({"condition_id": cid, "image_id": cid, "method": method, "item": f"item{i}",
                            "ssim": structural.ssim(to_tensor(blurred), to_tensor(sharp)).item(),
                            "noise": rng.normal()})
            for p in range(participants):
                rating = np.clip(np.round(4.6 - 0.7 * radius + rng.normal(0, 0.8)), 1, 5)
                ratings.append({"participant_id": f"p{p}", "condition_id": cid, "method": method,
                                "row_label": f"item{i}", "pair_id": f"item{i}", "rating": rating})
    return pd.DataFrame(ratings), pd.DataFrame(metrics).set_index("condition_id")


def test_mapping_is_the_cubic_fit_when_monotonic_and_stays_monotonic_otherwise():
    x = np.linspace(0, 4, 12)
    y = 1 + 0.5 * x + 0.1 * x**3
    assert fit_mapping(x, y)(x) == pytest.approx(y, abs=1e-8)
    u = np.linspace(-1, 1, 21)
    bent = u**2 + 0.3 * u  # not monotonic on [-1, 1]
    curve = fit_mapping(u, bent)(np.linspace(-1, 1, 200))
    assert (np.diff(curve) >= -1e-6).all() or (np.diff(curve) <= 1e-6).all()


def test_rmse_and_rmse_star_against_a_hand_cubic_fit():
    x = np.array([0.0, 1, 2, 3, 4, 5, 6, 7])
    y = np.array([1.0, 1.4, 2.3, 2.6, 3.5, 3.7, 4.6, 4.8])
    ci = np.full(8, 0.1)
    residual = y - np.polyval(np.polyfit(x, y, 3), x)
    assert (np.diff(np.polyval(np.polyfit(x, y, 3), np.linspace(0, 7, 50))) > 0).all()  # the fit is monotonic
    got = point_agreement(x, y, ci)
    assert got.rmse == pytest.approx(np.sqrt((residual**2).sum() / 4))
    assert got.rmse_star == pytest.approx(np.sqrt((np.maximum(0, np.abs(residual) - 0.1) ** 2).sum() / 4))
    assert got.outlier_ratio == pytest.approx((np.abs(residual) > 0.1).mean())
    assert got.spearman == pytest.approx(1.0) and got.kendall == pytest.approx(1.0)


def test_planted_blur_study_ssim_agrees_and_noise_does_not():
    usable, metrics = blur_study(participants=12, seed=3)
    result = analyze_agreement(usable, "acr", metrics, ["ssim", "noise"], reps=400, seed=0)
    rows = {r.metric: r for r in result.rows}
    assert abs(rows["ssim"].spearman) > 0.9 and rows["ssim"].spearman_ci_low > 0  # sharper = rated higher
    assert rows["ssim"].pearson > 0.9 and rows["ssim"].n == 20
    assert rows["noise"].spearman_ci_low < 0 < rows["noise"].spearman_ci_high
    assert rows["ssim"].spearman_ci_low <= rows["ssim"].spearman <= rows["ssim"].spearman_ci_high
    (comparison,) = result.comparisons
    assert comparison.difference > 0 and comparison.p_holm < 0.05  # ssim agrees better than noise
    mos = usable.groupby("condition_id")["rating"].mean()
    assert result.values.set_index("condition_id")["score"].to_dict() == pytest.approx(mos.to_dict())


def test_pairwise_choice_share_of_a_metric_that_tracks_the_planted_quality():
    rng = np.random.default_rng(5)
    rows, metrics, trial = [], [], 0
    qualities = {"a": 0.0, "b": 1.0, "c": 2.0}
    for item in ("i1", "i2", "i3", "i4"):
        for m, q in qualities.items():
            metrics.append({"condition_id": f"{item}:{m}", "image_id": f"{item}{m}", "method": m, "item": item,
                            "good": q + rng.normal(0, 0.1), "noise": rng.normal()})
        for p in range(10):
            for x, y in (("a", "b"), ("a", "c"), ("b", "c")):
                trial += 1
                x_wins = rng.random() < 1 / (1 + np.exp(qualities[y] - qualities[x]))
                for m, won in ((x, x_wins), (y, not x_wins)):
                    rows.append({"participant_id": f"p{p}", "trial": trial, "method": m, "rating": float(won),
                                 "flags": "", "row_label": item, "pair_id": item, "condition_id": f"{item}:{m}"})
    result = analyze_agreement(pd.DataFrame(rows), "pairwise", pd.DataFrame(metrics).set_index("condition_id"),
                               ["good", "noise"], reps=300, seed=0)
    good, noise = result.rows
    assert good.direction == "higher" and good.choice_ci_low > 0.5 and good.spearman_ci_low > 0
    assert 0.6 < good.choice_share < 0.9  # logistic choices: P(better wins) is 0.73 or 0.88
    assert noise.choice_ci_low < 0.5 < noise.choice_ci_high or noise.spearman_ci_low < 0 < noise.spearman_ci_high
    assert result.subjective.kind == "jod" and np.isfinite(good.rmse_star)


def test_analyze_with_metrics_end_to_end(run_copy, tmp_path, capsys):
    study_run = run_copy  # metrics writes its cache into the run: never into the shared fixture
    metrics = tmp_path / "metrics.csv"
    assert main(["metrics", str(study_run), "--out", str(metrics), "--device", "cpu", "--quiet"]) == 0
    ratings = tmp_path / "ratings.csv"
    assert main(["simulate", "--study", str(study_run), "--participants", "6", "--out", str(ratings)]) == 0
    out = tmp_path / "report"
    assert main(["analyze", str(ratings), "--manifest", str(study_run / "manifest.json"), "--metrics", str(metrics),
                 "--out", str(out), "--bootstrap", "100"]) == 0
    capsys.readouterr()
    table = pd.read_csv(out / "metric_agreement.csv")
    assert list(table.columns[:9]) == ["metric", "n", "pearson", "spearman", "spearman_ci_low", "spearman_ci_high",
                                       "kendall", "rmse", "rmse_star"]
    assert "ssim" in set(table["metric"]) and "ms_ssim" not in set(table["metric"])  # 19 px: not computable
    assert (table["n"] == 8).all()
    summary = json.loads((out / "summary.json").read_text())["metric_agreement"]
    assert summary["score"] == "mos" and summary["not_judged"] == ["ms_ssim"]
    assert [m["metric"] for m in summary["metrics"]] == table["metric"].tolist()
    report = (out / "report.md").read_text()
    assert "## Do objective metrics agree with the participants?" in report and "does not transfer" in report
    assert (out / "metric_agreement.png").stat().st_size > 0 and (out / "metric_comparisons.csv").is_file()


def test_a_bad_metrics_file_is_a_one_line_error(tmp_path, capsys):
    ratings = tmp_path / "ratings.csv"
    assert main(["simulate", "--from-paper", "-o", str(ratings)]) == 0
    bad = tmp_path / "m.csv"
    bad.write_text("condition_id,ssim\nx,0.5\n")
    for path, words in ((bad, "lacks the column(s) image_id, method, item"), (tmp_path / "none.csv", "not found")):
        capsys.readouterr()
        assert main(["analyze", str(ratings), "--metrics", str(path), "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1


def test_pairwise_import_end_to_end_reports_jod_and_choice_shares(import_source, tmp_path, capsys):
    source = tmp_path / "src"
    shutil.copytree(import_source, source)
    (source / "_content").mkdir()
    for item in IMPORT_ITEMS:
        shutil.copy(source / "photo" / f"{item}.png", source / "_content" / f"{item}.png")
    run = import_run(source, tmp_path / "run", "pairwise")
    assert main(["metrics", str(run), "--device", "cpu", "--quiet"]) == 0
    ratings = tmp_path / "ratings.csv"
    assert main(["simulate", "--study", str(run), "--qualities", "adain=0,ours=0.5,photo=2", "--participants", "8",
                 "-o", str(ratings)]) == 0
    out = tmp_path / "report"
    assert main(["analyze", str(ratings), "--manifest", str(run / "manifest.json"), "--metrics",
                 str(run / "metrics.csv"), "--out", str(out), "--bootstrap", "200"]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())["metric_agreement"]
    assert summary["score"] == "jod" and summary["conditions"] == 12
    rows = {m["metric"]: m for m in summary["metrics"]}
    assert set(rows) == {"ssim", "ms_ssim", "content_vgg"} or set(rows) == {"ssim", "content_vgg"}
    ssim = rows["ssim"]  # the planted best method is the photo itself: SSIM 1
    assert ssim["direction"] == "higher" and 0 <= ssim["choice_ci_low"] <= ssim["choice_share"] <= 1
    assert ssim["spearman"] > 0
    report = (out / "report.md").read_text()
    assert "choice_share" in report and "JOD of each condition within its cell" in report
