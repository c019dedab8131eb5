"""Tiny data read truthfully: the "cannot support a ranking yet" sentence before anything else, no
figure promising intervals it lacks, no "-0.00" or "-1.13e-18", and CIs inside a bounded scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from stylestudy.analysis.analyze import AnalyzeOptions, analyze
from stylestudy.analysis.ratings import scores
from stylestudy.analysis.render.document import cell_text
from stylestudy.analysis.render.ranking_plot import ranking_title
from stylestudy.analysis.table1.simulate import from_protocol
from stylestudy.engine.study.manifest import StudyManifest
from tests.conftest import import_run


@pytest.mark.parametrize(("value", "digits", "text"), [
    (-1.13e-18, ".3g", "0"), (-0.0, ".3g", "0"), (-0.001, ".2f", "0.00"), (-0.004, ".1%", "-0.4%"),
    (-0.00004, ".1%", "0.0%"), (-0.006, ".2f", "-0.01"), (0.5, ".3g", "0.5"), (-2.0, ".3g", "-2"),
    (float("nan"), ".3g", "nan"), (float("-inf"), ".3g", "-inf")])
def test_cells_print_no_signed_zero_and_no_rounding_noise(value, digits, text):
    assert cell_text(value, digits) == text


def test_item_and_method_cis_stay_inside_the_scale():
    # three raters give item x of method m 5, 5, 4: mean 4.67, t half-width 4.30 * 0.577 / sqrt(3) = 1.43
    usable = pd.DataFrame({"participant_id": ["p1", "p2", "p3"], "condition_id": "x:m", "method": "m",
                           "row_label": "x", "rating": [5.0, 5.0, 4.0]})
    raw_high = 14 / 3 + sps.t.ppf(0.975, 2) * np.std([5, 5, 4], ddof=1) / np.sqrt(3)
    assert raw_high > 5.9
    row = scores.condition_mos(usable, (1, 5)).iloc[0]
    assert row["ci_high"] == 5.0 and row["ci_low"] == pytest.approx(14 / 3 - (raw_high - 14 / 3))
    assert scores.condition_mos(usable).iloc[0]["ci_high"] == pytest.approx(raw_high)  # unclipped without a scale
    assert scores.method_mos(usable, ["m"], scale=(1, 5)).iloc[0]["ci_high"] == 5.0


def test_a_figure_without_intervals_does_not_say_it_has_them():
    none = pd.DataFrame({"method": ["a", "b"], "ci_low": [np.nan, np.nan], "ci_high": [np.nan, np.nan]})
    assert ranking_title(none, "acr") == "acr: ranking (provisional: no intervals)"
    bound = none.assign(ci_low=[np.nan, 0.2], ci_high=[np.nan, np.inf])
    assert ranking_title(bound, "pairwise", True) == "pairwise: ranking with 95% intervals  (SYNTHETIC DATA)"


@pytest.mark.parametrize("protocol", ["acr", "pairwise"])
def test_one_participant_report_says_it_cannot_rank_before_any_table(import_source, tmp_path, protocol):
    run = import_run(import_source, tmp_path / "run", protocol)
    manifest = StudyManifest.load(run)
    frame = from_protocol(manifest, {m: 0.4 * i for i, m in enumerate(manifest.methods)}, 1, seed=3)
    frame.to_csv(tmp_path / "one.csv", index=False)
    analyze(tmp_path / "one.csv", AnalyzeOptions(out=tmp_path / "report", bootstrap=50), run)
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    lead = [p for p in text.split("\n\n")[1:] if not p.startswith("Simulated ratings")]
    assert lead[0].startswith("The data cannot support a ranking yet: only 1 participant(s)")
    assert text.index("cannot support a ranking yet") < text.index("|") and text.index("cannot") < text.index("![")
    assert "-0.00" not in text and "e-1" not in text
