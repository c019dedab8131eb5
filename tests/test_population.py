"""Which items each test speaks for: "these N items" (the per-participant tests, and a mixed
model without item x method variance) or "items like these" (a mixed model with it,
``--generalise items``), in the report's first lines and in summary.json."""

from __future__ import annotations

import json

import pytest

from stylestudy.analysis.models.lmm import (
    Claim,
    NoMixedModel,
    Population,
    Unavailable,
    fit_methods,
    generalise_slopes,
    population,
)
from stylestudy.analysis.render import statistics_text
from stylestudy.analysis.table1 import simulate
from stylestudy.engine.study.manifest import StudyManifest
from tests.conftest import import_run
from tests.test_lmm import planted


def test_the_population_follows_the_fitted_model():
    methods = ["a", "b", "c"]
    flat = planted(10, tuple(methods), 6, 0.5, 500)
    default = fit_methods(flat, methods)  # the items fixed
    assert default.items_fixed and "item (items fixed, sum-coded)" in default.formula and "(1 | item" not in default.formula
    said = population(6, default, "participants")
    assert said == Population("participants", 6, "item", Claim.THESE_ITEMS, Claim.THESE_ITEMS, few_items=False)
    text = statistics_text.population(said.to_json())
    assert "the per-participant tests for these 6 items (the study's own" in text
    assert "the mixed model for these 6 items too (the items fixed: their effects and their interaction" in text
    assert "Chosen: --generalise participants (default)" in text and "little power" not in text

    kept = fit_methods(flat, methods, selection=generalise_slopes("items", "items"), generalise="items")
    assert "(1 | item:method)" in kept.formula or "(0 + method | item)" in kept.formula
    said = population(6, kept, "items")
    assert said.per_participant_tests == Claim.THESE_ITEMS and said.mixed_model == Claim.ITEMS_LIKE_THESE
    assert said.to_json() == {"generalise": "items", "items": 6, "unit": "item", "per_participant_tests": "these_items",
                              "mixed_model": "items_like_these", "few_items": False}
    text = statistics_text.population(said.to_json())
    assert "the mixed model for items like these (its item x method variance is in the model)" in text
    assert "Chosen: --generalise items" in text and "little power" not in text

    few = population(4, kept, "items")
    assert few.few_items
    assert "With 4 items a test over items like these has little power" in statistics_text.population(few.to_json())
    none = population(5, NoMixedModel(Unavailable.TOO_FEW), "participants")
    assert none.mixed_model is None and "; no mixed-model test." in statistics_text.population(none.to_json())
    assert generalise_slopes("participants", "lrt") == "lrt" and generalise_slopes("items", "lrt") == "maximal"
    with pytest.raises(ValueError, match="generalise must be one of participants, items"):
        generalise_slopes("images", "items")


def test_the_report_and_summary_name_the_population_acr(import_source, tmp_path, capsys):
    """The real CLI on an ACR run (3 methods x 4 items): the report's lines under the title and
    summary.json say which items each test speaks for and which --generalise was chosen."""
    from stylestudy.cli import main

    run = import_run(import_source, tmp_path / "run", "acr")
    frame = simulate.from_protocol(StudyManifest.load(run), {"photo": -0.5, "adain": 0.0, "ours": 0.5}, 12, seed=3)
    frame.to_csv(tmp_path / "sim.csv", index=False)
    for choice in ("participants", "items"):
        out = tmp_path / choice
        args = ["analyze", str(tmp_path / "sim.csv"), "--manifest", str(run), "--out", str(out)]
        assert main(args + ([] if choice == "participants" else ["--generalise", "items"])) == 0
        summary = json.loads((out / "summary.json").read_text())
        said = summary["population"]
        assert said["generalise"] == choice and said["items"] == 4
        assert said["per_participant_tests"] == "these_items" and said["unit"] == "item"
        formula = summary["mixed_model"]["formula"]
        over_items = "item:method" in formula or "(0 + method | item)" in formula
        assert said["mixed_model"] == ("items_like_these" if over_items else "these_items")
        lead = (out / "report.md").read_text().split("\n## ")[0]  # the lines under the title
        assert statistics_text.population(said) in lead and "per-participant tests for these 4 items" in lead
        if choice == "items":
            assert said["mixed_model"] == "items_like_these" and summary["mixed_model"]["selection"] == "maximal"
            assert "With 4 items a test over items like these has little power" in lead
        else:
            assert "little power" not in lead
    capsys.readouterr()
    code = main(["analyze", str(tmp_path / "sim.csv"), "--out", str(tmp_path / "x"), "--generalise", "images"])
    err = capsys.readouterr().err  # one line naming the choices, a non-zero exit, nothing written
    assert code != 0 and "--generalise: invalid choice: 'images' (choose from 'participants', 'items')" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_the_table1_report_names_the_population(tmp_path, capsys):
    from stylestudy.cli import main

    csv = tmp_path / "sim.csv"
    assert main(["simulate", "--study", "studies/table1", "--participants", "6", "--effect", "0.4", "--out", str(csv)]) == 0
    assert main(["analyze", str(csv), "--out", str(tmp_path / "rep"), "--generalise", "items"]) == 0
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    said = summary["population"]
    cells = summary["cells"]
    assert said["per_participant_tests"] == "these_items" and said["generalise"] == "items"
    assert said["unit"] == "cell" and said["items"] == cells
    assert said["mixed_model"] == ("items_like_these" if "cell:method" in summary["mixed_model"]["formula"]
                                   or "(0 + method | cell)" in summary["mixed_model"]["formula"] else "these_items")
    lead = (tmp_path / "rep" / "report.md").read_text().split("\n## ")[0]
    assert statistics_text.population(said) in lead and f"per-participant tests for these {cells} cells" in lead
