"""Linear mixed models for ratings: crossed random effects with by-participant method slopes,
fitted by REML, with Satterthwaite degrees of freedom for every method contrast.

Why here and not statsmodels: statsmodels' MixedLM cannot cross an item effect with correlated
by-participant slopes, and no Python library gives small-sample degrees of freedom; a z-test on
an intercept-only model is what made the old analysis reject 20% of true nulls.  The fit follows
lme4 (Bates et al. 2015): the REML criterion profiled over the fixed effects and the residual
variance, as a function of the relative covariance factors θ (lower-triangular per term,
non-negative diagonal), minimised with bounds; lme4's rule calls a fit singular when a diagonal
element of θ is below 1e-4.  Satterthwaite's df follow lmerTest (Kuznetsova et al. 2017): the
Hessian of the REML deviance in (θ, σ) gives the covariance of the variance parameters, the
gradient of c'Cov(β)c in the same parameters its delta-method variance; df = 2 (c'Cc)^2 / g'Ag.
The test suite fits the same planted data here and in R (lme4 + lmerTest) and compares them.

Model choice (Barr et al. 2013, "keep it maximal"): method varies within participant and within
item, so the fit starts from ``rating ~ method + (0 + method | participant) + (0 + method | item)``
(random intercepts for participant and item and random method slopes for both, unstructured
covariances; the same model as ``(1 + method | ...)``).  When it is singular or does not converge,
``(1 | participant) + (1 | participant:method) + (1 | item) + (1 | item:method)`` (each slope's
deviations with one variance), and the report says which was fitted and why.

Which slopes stay (``selection``):
- "items" (default): the participants' slopes always; the items' only where a REML likelihood
  ratio at 0.2 supports them (Matuschek et al. 2017).  With few items (4 in the calibration,
  6 cells) an item x method variance estimated above 0 by chance takes the test's df down to a
  handful and the test rejected none of those true nulls (136 of 300 paired tests); selecting the item slopes is
  what brought every calibration row into [3.5%, 6.5%].  A non-singular maximal model stays whole.
  The price (found by review): a moderate item x method variance on 4-8 items is dropped too, and
  the test then speaks about the study's items (7-11% false positives against "equal over a
  population of items"; the headline per-participant test 12-17%; "maximal" 4-6%).
- "maximal": every slope kept (2.0-3.5% false positives without rater x method variance).
- "lrt": participants' slopes selected too; drops a real rater x method variance often enough at
  10 participants to overstate (7.0% for Table 1).

A participant or rater x method variance at its bound 0 (``variances = "unrestricted"``, the
default): the model is refitted with the participants' means as fixed effects and the
``participant:method`` variance free to go below zero (``UnrestrictedREMLModel``; SAS's NOBOUND),
which in a balanced design is the repeated-measures ANOVA's within-participant test; cut at 0 (what
lme4 does, ``variances = "bounded"``) the test is conservative when raters agree, and a participant
variance at 0 (raters with equal means) pools their mean square into the error.
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import linalg
from scipy import stats as sps

from stylestudy.analysis.models.reml import EXACT_FIT, MixedFit, REMLModel, Term, UnrestrictedREMLModel
from stylestudy.analysis.ratings.multiple import holm


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    cat = pd.Categorical(values.astype(str))
    return np.asarray(cat.codes, int), [str(c) for c in cat.categories]


def method_model(data: pd.DataFrame, methods: list[str], structure: str, item: str | None = "item",
                 slopes: tuple[str, ...] | None = None) -> REMLModel:
    """``rating ~ method`` (treatment coding, the first method the reference) with the random
    part ``structure``: "maximal" = (0 + method | participant) + (0 + method | item) (random
    intercepts and method slopes for both, unstructured covariances); "cs" = (1 | participant) +
    (1 | participant:method) + (1 | item) + (1 | item:method) (the slopes' deviations with one
    variance each); "intercepts" = (1 | participant) + (1 | item), the model analysis used before
    (kept for comparison).  ``slopes``: for "cs", the groups that keep their ``group:method`` term
    (default all).  ``data`` has columns rating, method, participant and (optionally) item; a
    single item drops the item terms."""
    y = data["rating"].to_numpy(float)
    method = pd.Categorical(data["method"], categories=methods)
    onehot = np.eye(len(methods))[np.asarray(method.codes)]
    X = np.column_stack([np.ones(len(y)), onehot[:, 1:]])
    fixed = ["(Intercept)"] + [f"method{m}" for m in methods[1:]]
    ones = np.ones((len(y), 1))
    groups = [("participant", data["participant"])]
    if item and item in data and data[item].nunique() > 1:
        groups.append((item, data[item]))
    terms: list[Term] = []
    parts = []
    for name, values in groups:
        codes, levels = _codes(values)
        if structure == "maximal":
            terms.append(Term(name, codes, levels, onehot, list(methods)))
            parts.append(f"(0 + method | {name})")
            continue
        terms.append(Term(name, codes, levels, ones, ["(Intercept)"]))
        parts.append(f"(1 | {name})")
        if structure == "cs" and (slopes is None or name in slopes):
            both, both_levels = _codes(values.astype(str) + ":" + data["method"].astype(str))
            terms.append(Term(f"{name}:method", both, both_levels, ones, ["(Intercept)"]))
            parts.append(f"(1 | {name}:method)")
    return REMLModel(y, X, fixed, terms, "rating ~ method + " + " + ".join(parts))


STRUCTURES = ("maximal", "cs")
SELECTIONS = ("items", "maximal", "lrt")
SLOPE_ALPHA = 0.2  # Matuschek et al. (2017): keep a random slope when a likelihood-ratio test at 0.2 supports it


# The REML here is dense: one criterion costs a Cholesky of the q x q random-effects matrix
# (q^3 / 3) and the optimiser's numerical gradient one per variance parameter.  A 200-participant
# paired study of 10 methods (maximal: q = 2200, 110 parameters) was still in its first fit after 4 minutes, so a
# model whose q^3 x (parameters + 1) is above this is not fitted and the report says so (the
# per-participant tests, the headline, are unaffected).
MAX_DENSE_COST = 1e10


def _dense_size(data: pd.DataFrame, present: list[str], structure: str, item: str | None) -> tuple[int, int]:
    """(q, variance parameters) of ``method_model(data, present, structure, item)``, without building it."""
    groups = ["participant"] + ([item] if item and item in data and data[item].nunique() > 1 else [])
    if structure == "maximal":
        k = len(present)
        return sum(data[g].nunique() * k for g in groups), len(groups) * k * (k + 1) // 2
    return sum(data[g].nunique() + len(data[[g, "method"]].drop_duplicates()) for g in groups), 2 * len(groups)


def _lrt_p(reduced: MixedFit, full: MixedFit) -> float:
    """REML likelihood-ratio p of the extra variance parameters (same fixed effects, so REML
    deviances compare); the plain chi-square reference, which errs towards keeping a term."""
    extra = len(full.theta) - len(reduced.theta)
    return float(sps.chi2.sf(max(reduced.deviance - full.deviance, 0.0), extra))


def _select_slopes(data: pd.DataFrame, present: list[str], item: str | None, fit: MixedFit, model: REMLModel,
                   structure: str, notes: list[str], groups: tuple[str, ...] | None = None) -> tuple[MixedFit, REMLModel]:
    """Backward selection of the random method slopes (Matuschek, Kliegl, Vasishth, Baayen &
    Bates 2017): the maximal model is conservative and loses power when a slope variance is
    small or zero (measured in ``tests/benchmarks/calibration.py``), so each slope term stays only
    if the data support it (REML likelihood ratio, alpha 0.2): first the unstructured covariances
    against one variance per slope, then each ``group:method`` variance, the least supported first."""
    if structure == "maximal" and groups is not None:  # a non-singular maximal model stays whole
        return fit, model
    if structure == "maximal":
        cs_model = method_model(data, present, "cs", item)
        cs = cs_model.fit(satterthwaite=False)
        p = _lrt_p(cs, fit)
        if p <= SLOPE_ALPHA:
            return fit, model
        notes.append(f"the slopes' covariances are not supported (likelihood ratio p = {p:.2f} > {SLOPE_ALPHA})")
        fit, model = cs, cs_model
    kept = [t.name.split(":")[0] for t in model.terms if t.name.endswith(":method")]
    while kept:
        trials = []
        for group in kept if groups is None else [g for g in kept if g in groups]:
            reduced_model = method_model(data, present, "cs", item, tuple(g for g in kept if g != group))
            reduced = reduced_model.fit(satterthwaite=False)
            trials.append((_lrt_p(reduced, fit), group, reduced, reduced_model))
        if not trials:
            break
        p, group, reduced, reduced_model = max(trials, key=lambda t: t[0])
        if p <= SLOPE_ALPHA:
            break
        notes.append(f"the {group}:method variance is not supported (likelihood ratio p = {p:.2f} > {SLOPE_ALPHA})")
        kept.remove(group)
        fit, model = reduced, reduced_model
    return fit, model


RATER_SLOPES = "participant:method"
RATER_TERMS = ("participant", RATER_SLOPES)  # either at 0: refit as the ANOVA's within-participant test
VARIANCES = ("unrestricted", "bounded")
AT_BOUND = 1e-6  # a free ratio this close (relative) to its lower bound: no interaction at all


class DegenerateFit(Exception):
    """The data leave the mixed model nothing to test with (standard errors of 0)."""


def _unrestricted(model: REMLModel, fit: MixedFit, notes: list[str]) -> tuple[MixedFit, REMLModel]:
    """Refit with the participants' own means absorbed as fixed effects and the rater x method
    variance free to go below zero (``UnrestrictedREMLModel``): the repeated-measures ANOVA's
    within-participant test.  Cut at zero, the rater x method variance makes the test
    conservative exactly when raters agree; a participant variance cut at zero pools the
    participants' mean square into the error (anticonservative: 11% at 5% with raters of equal
    means, e.g. z-scored, found by review), which absorbing their means avoids; method contrasts
    are within participants, so in a balanced design nothing else changes."""
    at_zero = [t for t in RATER_TERMS if t in fit.singular_terms]
    participant = next(t for t in model.terms if t.name == "participant")
    dummies = np.eye(len(participant.levels))[participant.codes][:, 1:]
    X = np.column_stack([model.X, dummies])
    terms = [t for t in model.terms if t.name != "participant"]
    formula = model.formula.replace("(1 | participant) + ", "participant (fixed) + ")
    free = UnrestrictedREMLModel(model.y, X, model.fixed_names + [f"participant{v}" for v in participant.levels[1:]],
                                 terms, formula, (RATER_SLOPES,))
    bounded = (f"the bounded fit is reported ({' and '.join(at_zero)} variance at 0: conservative there)")
    try:
        refit = free.fit(satterthwaite=False)
    except (linalg.LinAlgError, ValueError):
        notes.append(f"the free fit did not converge; {bounded}")
        return fit, model
    counts = np.bincount(next(t for t in terms if t.name == RATER_SLOPES).codes)
    if np.any(free.room(refit.theta) < AT_BOUND) and counts.min() < counts.max():
        notes.append(f"left free, the fit ends where the covariance of the ratings stops being positive definite "
                     f"(the most-rated participant x method cells set that bound); {bounded}")
        return fit, model
    if np.any(free.room(refit.theta) < AT_BOUND):  # balanced: only a rater x method interaction of exactly 0 gets here
        raise DegenerateFit("the mixed model cannot test these data: every participant's ratings differ between "
                            "the methods by the same amounts (no rater x method variation at all, the lowest the "
                            "free variance can go), so its standard errors are 0; the per-participant tests say "
                            "what the data show")
    if free.on_edge(refit.theta):
        notes.append(f"left free, the fit ends on the edge where the covariance of the ratings stops being positive "
                     f"definite; {bounded}")
        return fit, model
    try:  # its df, at its own steps
        free.add_satterthwaite(refit)
    except (linalg.LinAlgError, ValueError):
        notes.append(f"the free fit's degrees of freedom could not be computed; {bounded}")
        return fit, model
    # Balanced, this is the ANOVA, whose error for a method contrast has (P-1)(m-1) df; next to an
    # almost singular covariance the Satterthwaite df can overshoot that (13.3 for 1 with 2 raters)
    refit.df_cap = float((len(participant.levels) - 1) * (len(model.fixed_names) - 1))
    variance = float(refit.covariances[RATER_SLOPES].iloc[0, 0])
    notes.append(f"that model's {' and '.join(at_zero)} variance sits at the bound 0, so the participants' means are "
                 f"absorbed as fixed effects and the {RATER_SLOPES} variance left free: {variance:+.3g} (unrestricted, "
                 "as SAS's NOBOUND: the repeated-measures ANOVA's test; cut at 0 the test is conservative, and a "
                 "participant variance at 0 pools their mean square into its error)")
    refit.formula += f" with the {RATER_SLOPES} variance unrestricted"
    return refit, free


def fit_methods(data: pd.DataFrame, methods: list[str], item: str | None = "item",
                selection: str = "items", variances: str = "unrestricted") -> dict:
    """Fit the maximal model, else the simpler one; drop the slope terms the data do not support
    (``selection``: the items' for "items", every one for "lrt", none for "maximal";
    ``_select_slopes``); free the participant variances when one sits at 0 (``variances``,
    ``_unrestricted``); every method pair as a Satterthwaite t contrast (Holm over pairs).
    Returns what the report prints, or {"error": ...}."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if variances not in VARIANCES:
        raise ValueError(f"variances must be one of {', '.join(VARIANCES)}, got {variances!r}")

    data = data[data["method"].isin(methods)]
    present = [m for m in methods if (data["method"] == m).any()]
    if data["participant"].nunique() < 2 or len(present) < 2:
        return {"error": "needs at least two participants and two methods"}
    notes = []
    fit = None
    for structure in STRUCTURES:
        if structure == "maximal":
            few = [f"{data[g].nunique()} {g}s" for g in ("participant", item)
                   if g and g in data and 1 < data[g].nunique() <= len(present)]
            if few:  # a k x k covariance from at most k levels sits on its boundary: don't spend the fit
                notes.append(f"the maximal model's {len(present)} x {len(present)} covariance cannot be estimated "
                             f"from {' and '.join(few)} (it needs more levels than methods)")
                continue
        q, n_theta = _dense_size(data, present, structure, item)
        if q ** 3 * (n_theta + 1) > MAX_DENSE_COST:
            notes.append(f"{structure}: not fitted ({q} random effects and {n_theta} variance parameters are beyond "
                         "this dense REML's size: q^3 x (parameters + 1) > 1e10)")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = method_model(data, present, structure, item)
                candidate = model.fit(satterthwaite=False)
        except (linalg.LinAlgError, ValueError) as exc:
            notes.append(f"{structure}: did not fit ({exc})")
            continue
        fit, chosen = candidate, model
        if structure == "maximal" and (candidate.singular or not candidate.converged):
            problem = (f"is singular (its {', '.join(candidate.singular_terms)} covariance is at the boundary: a "
                       "variance 0 or a correlation +-1)") if candidate.singular else "did not converge"
            notes.append(f"{candidate.formula} {problem}")
            continue
        break
    if fit is None:
        return {"error": "mixed model did not fit: " + "; ".join(notes)}
    if fit.sigma2 <= EXACT_FIT * max(float(np.var(data["rating"])), 1.0):  # SE 0: any difference would get p = 0
        return {"error": "the mixed model cannot test these data: it fits every rating exactly (no residual "
                         "variance, e.g. every participant gave each method the same rating), so its standard "
                         "errors are 0; the per-participant tests say what the data show"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if selection != "maximal":
            fit, chosen = _select_slopes(data, present, item, fit, chosen, structure, notes,
                                         (item,) if selection == "items" else None)
        if (set(RATER_TERMS) & set(fit.singular_terms) and RATER_SLOPES in {t.name for t in chosen.terms}
                and variances == "unrestricted" and all(t.k == 1 for t in chosen.terms)):
            try:
                fit, chosen = _unrestricted(chosen, fit, notes)
            except DegenerateFit as exc:
                return {"error": str(exc)}
        if not fit.jacobian:
            chosen.add_satterthwaite(fit)
    index = {m: i for i, m in enumerate(present)}
    rows = []
    for a, b in combinations(present, 2):
        c = np.zeros(len(fit.beta))
        if index[a]:
            c[index[a]] += 1
        if index[b]:
            c[index[b]] -= 1
        rows.append({"a": a, "b": b, **fit.contrast(c)})
    contrasts = pd.DataFrame(rows)
    contrasts["p_holm"] = holm(contrasts["p"])
    components = {name: {str(k): float(v) for k, v in zip(cov.index, np.diag(cov))} for name, cov in fit.covariances.items()}
    fallback = "; ".join(notes) + f"; fitted {fit.formula} instead." if notes else ""
    optimiser = list(fit.optimiser_notes) + ([] if fit.converged else [
        "the fit did not pass the optimiser's convergence check (its REML criterion may not be at the optimum)"])
    if optimiser:
        said = "; ".join(optimiser)
        fallback = (fallback + " " if fallback else "") + said[0].upper() + said[1:] + "."
    return {"formula": fit.formula, "contrasts": contrasts, "variances": components,
            "covariances": {k: v.to_dict() for k, v in fit.covariances.items()}, "residual_var": fit.sigma2,
            "n_obs": fit.n_obs, "converged": fit.converged, "singular": fit.singular, "df_method": "Satterthwaite",
            "selection": selection, "variance_bounds": variances, "fallback": fallback, "singular_terms": fit.singular_terms, "reml_deviance": fit.deviance,
            "optimiser": optimiser}


GENERALISE = ("participants", "items")  # --generalise: over participants on these items, or over items too
FEW_ITEMS = 6  # below this a test over items like these has little power (a variance from so few items)


def generalise_slopes(generalise: str, selection: str) -> str:
    """The slope selection a ``--generalise`` choice implies: over items, every item slope stays
    (the item x method variance is what a claim about other items must be tested against)."""
    if generalise not in GENERALISE:
        raise ValueError(f"generalise must be one of {', '.join(GENERALISE)}, got {generalise!r}")
    return "maximal" if generalise == "items" else selection


def population(n_items: int, mixed: dict | None, generalise: str, item: str = "item") -> dict:
    """Which items each test speaks for (for the report's first lines and ``summary.json``).
    The per-participant tests average each participant's ratings over the study's items, so their
    null is "equal on these N items"; a mixed model with an item x method variance tests "equal
    over a population of items like these" (Clark 1973; Barr et al. 2013), one without it again
    "these N items"."""
    these = f"these {n_items} {item}s"
    words = {"item": "items", "cell": "cells"}.get(item, f"{item}s")
    out = {"generalise": generalise, "items": n_items, "per_participant_tests": these}
    if mixed is None or "formula" not in mixed:
        out["mixed_model"] = None
        said = "no mixed-model test"
    else:
        formula = mixed["formula"]
        over_items = f"{item}:method" in formula or f"(0 + method | {item})" in formula
        out["mixed_model"] = f"{words} like these" if over_items else these
        said = (f"the mixed model for {words} like these (its {item} x method variance is in the model)" if over_items
                else f"the mixed model for {these} too (no {item} x method variance in the fitted model)")
    choice = ("--generalise items: the mixed model keeps the item x method variance" if generalise == "items" else
              "--generalise participants (default); --generalise items tests over items like these")
    text = (f"Which {words} the tests speak for: the per-participant tests for {these} (the study's own: their null is "
            f"\"equal on these {words}\"); {said}. Chosen: {choice}.")
    if generalise == "items" and n_items < FEW_ITEMS:
        text += (f" With {n_items} {words} a test over {words} like these has little power: its item x method "
                 f"variance rests on {n_items} {words}.")
    out["text"] = text
    return out
