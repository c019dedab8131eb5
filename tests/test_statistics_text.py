"""Numbers and codes in the results, words in the renderer: every code an analysis can return has
its words in ``analysis.render.statistics_text``, and summary.json's statistics hold no sentence."""

from __future__ import annotations

import json

import pandas as pd

from stylestudy.analysis.models.lmm import FitNote, MethodsFit, NoMixedModel, Step, Unavailable, fit_methods
from stylestudy.analysis.pairwise import support
from stylestudy.analysis.render import statistics_text
from tests.test_lmm import planted


def test_every_code_has_its_words():
    assert {s.value for s in Step} == set(statistics_text.FIT_STEPS)
    assert {u.value for u in Unavailable} == set(statistics_text.UNAVAILABLE)
    reasons = support.rating_reasons(pd.DataFrame({"participant_id": ["p1", "p2"], "method": ["a", "b"]}),
                                     ["a", "b", "c"])
    assert reasons == [{"reason": "too_few_participants", "participants": 2, "minimum": 3},
                       {"reason": "never_rated", "methods": ["c"]}]
    assert statistics_text.ranking_not_supported(reasons + [{"reason": "not_connected"}]) == (
        "The data cannot support a ranking yet: only 2 participant(s): intervals and tests across participants need at "
        "least 3; never rated: c; some methods were never compared with the others (the comparison graph is not "
        "connected). The scores below are provisional, without intervals, and all methods share one rank group.")


def test_the_optimiser_steps_are_worded_from_their_numbers():
    fit = fit_methods(planted(10, ("a", "b", "c"), 6, 0.5, 500), ["a", "b", "c"])
    assert isinstance(fit, MethodsFit)
    said = fit.to_json()
    said["notes"] = [FitNote(Step.POLISHED, numbers={"gradient_before": 0.031, "gradient_after": 0.0004,
                                                     "tolerance": 2e-3}).to_json(),
                     FitNote(Step.FIT_NOT_CONVERGED).to_json()]
    assert statistics_text.fit_steps(said) == (
        "The REML optimiser (L-BFGS-B) stopped with a gradient of 0.031; a Nelder-Mead polish met the convergence "
        "check (gradient 0.0004, tolerance 0.002); the fit did not pass the optimiser's convergence check (its REML "
        "criterion may not be at the optimum).")
    said["notes"] = [FitNote(Step.SLOPE_DROPPED, ("item",), {"p": 0.613, "alpha": 0.2}).to_json()]
    assert statistics_text.fit_steps(said) == ("the item:method variance is not supported (likelihood ratio p = 0.61 > "
                                               f"0.2); fitted {fit.formula} instead.")
    none = NoMixedModel(Unavailable.NO_FIT, [FitNote(Step.DID_NOT_FIT, model="cs", error="singular matrix")])
    assert statistics_text.unavailable(none.to_json()) == "mixed model did not fit: cs: did not fit (singular matrix)"


def _strings(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, path)
    elif isinstance(value, str):
        yield path, value


def test_summary_json_holds_codes_and_numbers_not_sentences(tmp_path, capsys):
    """The statistics parts of a real Table 1 analysis: every string is a code, a term or a model
    formula, never a sentence; the report still says them in words."""
    from stylestudy.cli import main

    csv = tmp_path / "paper.csv"
    assert main(["simulate", "--from-paper", "-o", str(csv), "--pairings", "1", "--seed", "2"]) == 0
    assert main(["analyze", str(csv), "--out", str(tmp_path / "rep")]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    checked = 0
    for key in ("mixed_model", "population", "attainability"):
        for path, text in _strings(summary[key], key):
            formula = text.startswith("rating ~ ") and path.endswith((".formula", ".model"))
            assert formula or " " not in text, (path, text)
            checked += 1
    assert checked >= 8
    assert summary["attainability"]["attainable"] is False and summary["attainability"]["cells"] == 26
    report = (tmp_path / "rep" / "report.md").read_text()
    assert statistics_text.attainability(summary["attainability"]) in report
    assert statistics_text.population(summary["population"]) in report
    assert statistics_text.fit_steps(summary["mixed_model"]) in report
