"""A report of many methods stays readable: long tables show their first rows and name the CSV that
has them all; the letters come back at once; figures do not grow with the method count."""

from __future__ import annotations

import pandas as pd
from PIL import Image

from stylestudy.analysis.analyze import AnalyzeOptions, analyze
from stylestudy.analysis.render.document import REPORT_ROWS, top_rows
from stylestudy.analysis.table1.simulate import from_protocol
from stylestudy.engine.study.manifest import StudyManifest
from tests.benchmarks.analysis_scale import make_run


def test_top_rows_keeps_the_smallest_p_and_says_where_the_rest_are():
    frame = pd.DataFrame({"a": [f"m{i}" for i in range(50)], "p_holm": [(37 * i % 50) / 50 for i in range(50)]})
    table, sentence = top_rows(frame, "pair_tests.csv", "p_holm")
    assert len(table.rows) == REPORT_ROWS and sentence == (
        f" Shown: the {REPORT_ROWS} of 50 rows with the smallest p_holm; pair_tests.csv has them all.")
    assert [float(r[1]) for r in table.rows] == sorted(frame["p_holm"])[:REPORT_ROWS]
    whole, nothing = top_rows(frame.head(REPORT_ROWS), "x.csv", "p_holm")
    assert len(whole.rows) == REPORT_ROWS and nothing == ""


def test_an_acr_report_of_12_methods(tmp_path):
    run = make_run(tmp_path, "acr", 12, 4, 0)
    manifest = StudyManifest.load(run)
    frame = from_protocol(manifest, {m: 0.15 * i for i, m in enumerate(manifest.methods)}, 6, seed=4)
    frame.to_csv(tmp_path / "r.csv", index=False)
    out = tmp_path / "report"
    analyze(tmp_path / "r.csv", AnalyzeOptions(out=out, bootstrap=50), run)
    text = (out / "report.md").read_text(encoding="utf-8")
    pairs = pd.read_csv(out / "pair_tests.csv")
    assert len(pairs) == 12 * 11 // 2
    assert f"Shown: the {REPORT_ROWS} of 66 rows with the smallest p_holm; pair_tests.csv has them all." in text
    assert "Shown: the 40 of 48 rows first; condition_mos.csv has them all." in text
    ranking = pd.read_csv(out / "ranking.csv", keep_default_na=False)
    assert len(ranking) == 12 and ranking["rank_group"].str.len().gt(0).all()  # letters for every method
    for name in ("ranking.png", "item_mos.png"):
        width, height = Image.open(out / name).size
        assert width <= 30 * 130 and height <= 30 * 130  # at most 30 inches at 130 dpi


def test_the_mixed_model_says_it_is_beyond_the_dense_reml_instead_of_running_for_minutes():
    import numpy as np

    from stylestudy.analysis.models.lmm import NoMixedModel, Step, Unavailable, fit_methods
    from stylestudy.analysis.render import statistics_text

    # 200 participants x 10 methods x 20 items, the items fixed (the default): maximal q = 200 x 10 = 2000 with
    # 55 variance parameters; the compound-symmetry model q = 200 + 2000 = 2200 with 2; both cost > 1e10
    rng = np.random.default_rng(0)
    p, m, i = np.meshgrid(np.arange(200), np.arange(10), np.arange(20), indexing="ij")
    data = pd.DataFrame({"participant": p.ravel().astype(str), "method": np.char.add("m", m.ravel().astype(str)),
                         "item": i.ravel().astype(str), "rating": rng.normal(3, 1, p.size)})
    fit = fit_methods(data, [f"m{k}" for k in range(10)])  # not attempted: the maximal fit alone ran for minutes
    assert isinstance(fit, NoMixedModel) and fit.reason == Unavailable.NO_FIT
    assert [(n.step, n.model, n.numbers["random_effects"], n.numbers["variance_parameters"]) for n in fit.notes] == [
        (Step.BEYOND_DENSE_SIZE, "maximal", 2000, 55), (Step.BEYOND_DENSE_SIZE, "cs", 2200, 2)]
    assert statistics_text.unavailable(fit.to_json()) == (
        "mixed model did not fit: maximal: not fitted (2000 random effects and 55 variance parameters are beyond "
        "this dense REML's size: q^3 x (parameters + 1) > 1e+10); cs: not fitted (2200 random effects and 2 variance "
        "parameters are beyond this dense REML's size: q^3 x (parameters + 1) > 1e+10)")
