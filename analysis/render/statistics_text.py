"""The report's sentences for the statistics' results, written from their JSON form (numbers and
codes, as ``summary.json`` holds them): the mixed model's fitting steps and why there is none,
which items a test speaks for, whether a per-cell test can reach significance, and why a ranking
cannot be supported yet.

Why from JSON: the analyses return numbers and codes only, so the words can change (or be read
from a summary.json) without touching a statistic; this module imports no analysis, as the rest
of the renderer.  ``tests/test_statistics_text.py`` checks that every code the analyses define has
its words here.
"""

from __future__ import annotations

RATER_SLOPES = "participant:method"  # the one variance the unrestricted refit frees


def _bounded(note: dict) -> str:
    return f"the bounded fit is reported ({' and '.join(note['terms'])} variance at 0: conservative there)"


def _too_few_levels(note: dict) -> str:
    k = int(note["numbers"]["methods"])
    groups = " and ".join(f"{int(note['numbers'][g])} {g}s" for g in note["terms"])
    return f"the maximal model's {k} x {k} covariance cannot be estimated from {groups} (it needs more levels than methods)"


def _polished(note: dict) -> str:
    n = note["numbers"]
    met = "met" if n["gradient_after"] <= n["tolerance"] else "did not meet"
    return (f"the REML optimiser (L-BFGS-B) stopped with a gradient of {n['gradient_before']:.2g}; a Nelder-Mead "
            f"polish {met} the convergence check (gradient {n['gradient_after']:.2g}, tolerance {n['tolerance']:g})")


def _unrestricted(note: dict) -> str:
    return (f"that model's {' and '.join(note['terms'])} variance sits at the bound 0, so the participants' means are "
            f"absorbed as fixed effects and the {RATER_SLOPES} variance left free: {note['numbers']['variance']:+.3g} "
            "(unrestricted, as SAS's NOBOUND: the repeated-measures ANOVA's test; cut at 0 the test is conservative, "
            "and a participant variance at 0 pools their mean square into its error)")


FIT_STEPS = {  # Step code -> its clause
    "maximal_too_few_levels": _too_few_levels,
    "did_not_fit": lambda n: f"{n['model']}: did not fit ({n.get('error', '')})",
    "beyond_dense_size": lambda n: (
        f"{n['model']}: not fitted ({n['numbers']['random_effects']} random effects and "
        f"{n['numbers']['variance_parameters']} variance parameters are beyond this dense REML's size: "
        f"q^3 x (parameters + 1) > {n['numbers']['max_cost']:.0e})"),
    "maximal_singular": lambda n: (f"{n['model']} is singular (its {', '.join(n['terms'])} covariance is at the "
                                   "boundary: a variance 0 or a correlation +-1)"),
    "maximal_not_converged": lambda n: f"{n['model']} did not converge",
    "covariances_not_supported": lambda n: ("the slopes' covariances are not supported (likelihood ratio p = "
                                            f"{n['numbers']['p']:.2f} > {n['numbers']['alpha']:g})"),
    "slope_not_supported": lambda n: (f"the {n['terms'][0]}:method variance is not supported (likelihood ratio p = "
                                      f"{n['numbers']['p']:.2f} > {n['numbers']['alpha']:g})"),
    "free_fit_failed": lambda n: f"the free fit did not converge; {_bounded(n)}",
    "free_fit_at_edge_unbalanced": lambda n: (
        "left free, the fit ends where the covariance of the ratings stops being positive definite (the most-rated "
        f"participant x method cells set that bound); {_bounded(n)}"),
    "free_fit_on_edge": lambda n: ("left free, the fit ends on the edge where the covariance of the ratings stops "
                                   f"being positive definite; {_bounded(n)}"),
    "free_fit_df_failed": lambda n: f"the free fit's degrees of freedom could not be computed; {_bounded(n)}",
    "unrestricted": _unrestricted,
    "optimiser_polished": _polished,
    "fit_not_converged": lambda n: ("the fit did not pass the optimiser's convergence check (its REML criterion may "
                                    "not be at the optimum)"),
}
OPTIMISER_STEPS = ("optimiser_polished", "fit_not_converged")

NO_TEST = "so its standard errors are 0; the per-participant tests say what the data show"
UNAVAILABLE = {  # Unavailable code -> the sentence (notes: the steps that led there)
    "too_few_participants_or_methods": lambda d: "needs at least two participants and two methods",
    "no_structure_fitted": lambda d: "mixed model did not fit: " + "; ".join(FIT_STEPS[n["step"]](n) for n in d["notes"]),
    "fits_every_rating_exactly": lambda d: (
        "the mixed model cannot test these data: it fits every rating exactly (no residual variance, e.g. every "
        f"participant gave each method the same rating), {NO_TEST}"),
    "no_rater_method_variation": lambda d: (
        "the mixed model cannot test these data: every participant's ratings differ between the methods by the same "
        f"amounts (no rater x method variation at all, the lowest the free variance can go), {NO_TEST}"),
}


def maximal(mixed: dict, item: str) -> str:
    """The maximal model's words, for a fit that needed no other."""
    slopes = "by-participant method slopes" if mixed.get("items_fixed") else f"by-participant and by-{item} method slopes"
    return f"the maximal model: {slopes}, Barr et al. 2013"


def variances(mixed: dict) -> str:
    """The fitted variances, per term and column."""
    return "; ".join(f"{term} " + ", ".join(f"{v:.3f}" for v in var.values()) for term, var in mixed["variances"].items())


def formula(mixed: dict) -> str:
    """The fitted model as the report names it (a variance left free said after the formula)."""
    return mixed["formula"] + "".join(f" with the {t} variance unrestricted" for t in mixed.get("unrestricted_terms", ()))


def fit_steps(mixed: dict) -> str:
    """What the fit did beyond the maximal model, in one paragraph ("" when nothing): the model
    steps, then "fitted ... instead.", then the optimiser's."""
    model = [FIT_STEPS[n["step"]](n) for n in mixed["notes"] if n["step"] not in OPTIMISER_STEPS]
    optimiser = [FIT_STEPS[n["step"]](n) for n in mixed["notes"] if n["step"] in OPTIMISER_STEPS]
    text = "; ".join(model) + f"; fitted {formula(mixed)} instead." if model else ""
    if optimiser:
        said = "; ".join(optimiser)
        text = (text + " " if text else "") + said[0].upper() + said[1:] + "."
    return text


def unavailable(mixed: dict) -> str:
    """Why there is no mixed-model test."""
    return UNAVAILABLE[mixed["unavailable"]](mixed)


def population(said: dict) -> str:
    """Which items the tests speak for (the report's first lines)."""
    n, item = said["items"], said["unit"]
    words = {"item": "items", "cell": "cells"}.get(item, f"{item}s")
    these = f"these {n} {item}s"
    if said["mixed_model"] is None:
        mixed = "no mixed-model test"
    elif said["mixed_model"] == "items_like_these":
        mixed = f"the mixed model for {words} like these (its {item} x method variance is in the model)"
    elif said["generalise"] == "participants":
        mixed = (f"the mixed model for {these} too (the {words} fixed: their effects and their interaction with method "
                 "are fixed effects)")
    else:
        mixed = f"the mixed model for {these} too (no {item} x method variance in the fitted model)"
    choice = ("--generalise items: the mixed model keeps the item x method variance" if said["generalise"] == "items"
              else "--generalise participants (default); --generalise items tests over items like these")
    text = (f"Which {words} the tests speak for: the per-participant tests for {these} (the study's own: their null is "
            f"\"equal on these {words}\"); {mixed}. Chosen: {choice}.")
    if said["few_items"]:
        text += (f" With {n} {words} a test over {words} like these has little power: its item x method variance rests "
                 f"on {n} {words}.")
    return text


def attainability(said: dict) -> str:
    """Whether any cell's test can pass Holm's first threshold at all."""
    if not said["cells"]:
        return "No complete pairs: no per-cell tests."
    m, best, first = said["cells"], said["min_attainable_p"], said["holm_first_threshold"]
    if not said["attainable"]:
        return (f"With at most {said['max_nonzero']} non-zero paired differences per cell, the smallest p-value an exact "
                f"signed-rank or sign test can give is {best:.4g}; Holm's first threshold over {m} cells is "
                f"{said['alpha']:g}/{m} = {first:.4g}. No cell can be significant after Holm correction, whatever the "
                "ratings: per-cell tests are descriptive here; the omnibus tests are the ones that can answer.")
    return (f"The smallest attainable p-value ({best:.4g}) is below Holm's first threshold ({first:.4g}) over {m} cells, "
            "so corrected per-cell significance is possible.")


RANKING_REASONS = {  # support's reason code -> its clause
    "too_few_participants": lambda r: (f"only {r['participants']} participant(s): intervals and tests across "
                                       f"participants need at least {r['minimum']}"),
    "thin_pairs": lambda r: f"{r['thin']} of {r['pairs']} method pairs have fewer than {r['minimum']} comparisons",
    "not_connected": lambda r: "some methods were never compared with the others (the comparison graph is not connected)",
    "never_rated": lambda r: f"never rated: {', '.join(r['methods'])}",
}


def ranking_not_supported(reasons: list[dict]) -> str:
    return ("The data cannot support a ranking yet: " + "; ".join(RANKING_REASONS[r["reason"]](r) for r in reasons)
            + ". The scores below are provisional, without intervals, and all methods share one rank group.")
