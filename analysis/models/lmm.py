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

Which items the test speaks for (``generalise``): "participants" (the default) tests "equal on
these items": the items and their interaction with method are fixed effects (sum-coded; Clark
1973: items as fixed effects are right for a claim about these items, and only for that), and the
random part is the participants' (in a balanced two-method design this is the paired t-test of
the participants' mean differences).  Before, the default kept the item slopes where a likelihood
ratio supported them, and so spoke for items like these in some studies and these items in
others: against "these items" it rejected 0.2-2.7% of true nulls at 5%.  "items" tests "equal over
items like these": the items random, with their method slopes.

Model choice (Barr et al. 2013, "keep it maximal"): method varies within participant (and, items
random, within item), so the fit starts from ``rating ~ method + (0 + method | participant) [+ (0 +
method | item)]`` (random intercepts and method slopes, unstructured covariances; the same model as
``(1 + method | ...)``).  When it is singular or does not converge, ``(1 | participant) + (1 |
participant:method) [+ (1 | item) + (1 | item:method)]`` (each slope's deviations with one
variance), and the report says which was fitted and why.

Which slopes stay (``selection``):
- "items" (default): the participants' slopes always; with the items random, the items' only where
  a REML likelihood ratio at 0.2 supports them (Matuschek et al. 2017).  A non-singular maximal
  model stays whole.  (``--generalise items`` chooses "maximal" instead: a test over items like
  these must keep the item x method variance.)
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
from dataclasses import asdict, dataclass, field
from enum import Enum
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import linalg
from scipy import stats as sps

from stylestudy.analysis.models.reml import EXACT_FIT, GRADIENT_TOL, MixedFit, REMLModel, Term, UnrestrictedREMLModel
from stylestudy.analysis.ratings.multiple import holm


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    cat = pd.Categorical(values.astype(str))
    return np.asarray(cat.codes, int), [str(c) for c in cat.categories]


class Step(str, Enum):
    """What the fit did beyond fitting the maximal model (each a ``FitNote``; the report words them)."""

    TOO_FEW_LEVELS = "maximal_too_few_levels"  # a k x k covariance from at most k levels: not attempted
    DID_NOT_FIT = "did_not_fit"  # a structure raised (``error``: the library's message)
    SINGULAR = "maximal_singular"  # the maximal model's ``terms`` at the boundary
    NOT_CONVERGED = "maximal_not_converged"
    COVARIANCES_DROPPED = "covariances_not_supported"  # numbers: p
    SLOPE_DROPPED = "slope_not_supported"  # terms: (group,), numbers: p
    FREE_FAILED = "free_fit_failed"  # the unrestricted refit raised: the bounded fit reported
    FREE_AT_EDGE_UNBALANCED = "free_fit_at_edge_unbalanced"  # its bound set by the most-rated cells
    FREE_ON_EDGE = "free_fit_on_edge"  # stopped on the positive-definite edge, not at an optimum
    FREE_DF_FAILED = "free_fit_df_failed"
    UNRESTRICTED = "unrestricted"  # terms: the variances at 0, numbers: the free variance
    POLISHED = "optimiser_polished"  # numbers: gradient_before, gradient_after, tolerance
    FIT_NOT_CONVERGED = "fit_not_converged"  # the reported fit failed the convergence check
    BEYOND_DENSE_SIZE = "beyond_dense_size"  # not attempted; numbers: random_effects, variance_parameters


class Unavailable(str, Enum):
    """Why there is no mixed-model test."""

    TOO_FEW = "too_few_participants_or_methods"
    NO_FIT = "no_structure_fitted"
    EXACT = "fits_every_rating_exactly"
    NO_INTERACTION = "no_rater_method_variation"


@dataclass(frozen=True)
class FitNote:
    """One step of a fit, as numbers and names (``analysis.render.statistics_text`` words it)."""

    step: Step
    terms: tuple[str, ...] = ()  # random-effects terms (or grouping factors) it concerns
    numbers: dict[str, float] = field(default_factory=dict)
    model: str = ""  # the formula it concerns
    error: str = ""  # the numerical library's own message, for DID_NOT_FIT

    def to_json(self) -> dict:
        return {"step": self.step.value, **{k: v for k, v in asdict(self).items() if k != "step" and v}}


@dataclass
class NoMixedModel:
    """No mixed-model test, and why (numbers and codes; the report words them)."""

    reason: Unavailable
    notes: list[FitNote] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"unavailable": self.reason.value, "notes": [n.to_json() for n in self.notes], **self.numbers}


@dataclass
class MethodsFit:
    """The fitted model and every method pair's Satterthwaite contrast (Holm over pairs)."""

    formula: str
    contrasts: pd.DataFrame  # a, b, estimate, se, df, t, p, ci_low, ci_high, p_holm
    variances: dict[str, dict[str, float]]  # term -> column -> variance
    covariances: dict[str, dict]
    residual_var: float
    n_obs: int
    converged: bool
    singular: bool
    singular_terms: list[str]
    reml_deviance: float
    selection: str
    variance_bounds: str
    notes: list[FitNote] = field(default_factory=list)  # in order; empty: the maximal model, fitted at once
    unrestricted_terms: tuple[str, ...] = ()  # variances left free to go below 0
    items_fixed: bool = False  # the items and their interaction with method fixed effects (--generalise participants)
    df_method: str = "Satterthwaite"

    @property
    def fallback(self) -> bool:
        """Another model than the maximal one was fitted (a note other than the optimiser's)."""
        return any(n.step not in (Step.POLISHED, Step.FIT_NOT_CONVERGED) for n in self.notes)

    def over_items(self, item: str) -> bool:
        """The fitted model has an ``item`` x method variance (a term of its own, or method slopes by
        item): it tests over items like these."""
        return f"{item}:method" in self.variances or len(self.variances.get(item, {})) > 1

    def first_contrast(self) -> dict:
        """The first method pair's numbers (Table 1: normalized - baseline)."""
        c = self.contrasts.iloc[0]
        return {"estimate": float(c["estimate"]), "se": float(c["se"]), "df": float(c["df"]),
                "ci": (float(c["ci_low"]), float(c["ci_high"])), "p": float(c["p"])}

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("contrasts", "notes")}
        out["unrestricted_terms"] = list(self.unrestricted_terms)
        return {**out, "notes": [n.to_json() for n in self.notes], "contrasts": self.contrasts.to_dict(orient="records")}


def _sum_coded(codes: np.ndarray, levels: int) -> np.ndarray:
    """Sum-to-zero columns of a factor (the last level -1 in every column): its effects average 0."""
    columns = np.eye(levels)[codes][:, :-1]
    columns[codes == levels - 1] = -1.0
    return columns


def method_model(data: pd.DataFrame, methods: list[str], structure: str, item: str | None = "item",
                 slopes: tuple[str, ...] | None = None, items_fixed: bool = False) -> REMLModel:
    """``rating ~ method`` (treatment coding, the first method the reference) with the random
    part ``structure``: "maximal" = (0 + method | participant) + (0 + method | item) (random
    intercepts and method slopes for both, unstructured covariances); "cs" = (1 | participant) +
    (1 | participant:method) + (1 | item) + (1 | item:method) (the slopes' deviations with one
    variance each); "intercepts" = (1 | participant) + (1 | item), the model analysis used before
    (kept for comparison).  ``slopes``: for "cs", the groups that keep their ``group:method`` term
    (default all).  ``data`` has columns rating, method, participant and (optionally) item; a
    single item drops the item terms.  ``items_fixed``: the items and their interaction with method
    as fixed effects (sum-coded, so a method coefficient is its difference averaged over the items)
    and no item terms in the random part: the test of "equal on these items" (Clark 1973: items
    fixed are right for a claim about these items, and only for that)."""
    y = data["rating"].to_numpy(float)
    method = pd.Categorical(data["method"], categories=methods)
    onehot = np.eye(len(methods))[np.asarray(method.codes)]
    X = np.column_stack([np.ones(len(y)), onehot[:, 1:]])
    fixed = ["(Intercept)"] + [f"method{m}" for m in methods[1:]]
    ones = np.ones((len(y), 1))
    groups = [("participant", data["participant"])]
    prefix = "rating ~ method + "
    if item and item in data and data[item].nunique() > 1 and items_fixed:
        codes, levels = _codes(data[item])
        effects = _sum_coded(codes, len(levels))
        interactions = (onehot[:, 1:, None] * effects[:, None, :]).reshape(len(y), -1)
        X = np.column_stack([X, effects, interactions])
        fixed += [f"{item}{v}" for v in levels[:-1]] + [f"method{m}:{item}{v}" for m in methods[1:] for v in levels[:-1]]
        # a method never rated on an item leaves an interaction column that the others determine:
        # dropped, as lme4 drops a rank-deficient fixed-effect column (the method columns come first, and stay)
        diagonal = np.abs(np.diag(linalg.qr(X, mode="r")[0]))
        keep = diagonal > 1e-10 * diagonal.max()
        X, fixed = X[:, keep], [name for name, kept in zip(fixed, keep) if kept]
        prefix = f"rating ~ method * {item} ({item}s fixed, sum-coded) + "
    elif item and item in data and data[item].nunique() > 1:
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
    return REMLModel(y, X, fixed, terms, prefix + " + ".join(parts))


STRUCTURES = ("maximal", "cs")
SELECTIONS = ("items", "maximal", "lrt")
GENERALISE = ("participants", "items")  # --generalise: over participants on these items, or over items too
SLOPE_ALPHA = 0.2  # Matuschek et al. (2017): keep a random slope when a likelihood-ratio test at 0.2 supports it


# The REML here is dense: one criterion costs a Cholesky of the q x q random-effects matrix
# (q^3 / 3) and the optimiser's numerical gradient one per variance parameter.  A 200-participant
# paired study of 10 methods (maximal: q = 2200, 110 parameters) was still in its first fit after 4 minutes, so a
# model whose q^3 x (parameters + 1) is above this is not fitted and the report says so (the
# per-participant tests, the headline, are unaffected).
MAX_DENSE_COST = 1e10


def _dense_size(data: pd.DataFrame, present: list[str], structure: str, item: str | None,
                items_fixed: bool = False) -> tuple[int, int]:
    """(q, variance parameters) of ``method_model(data, present, structure, item, items_fixed=...)``,
    without building it (fixed items add no random effects)."""
    random_item = item and item in data and data[item].nunique() > 1 and not items_fixed
    groups = ["participant"] + ([item] if random_item else [])
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
                   structure: str, notes: list[FitNote], groups: tuple[str, ...] | None = None,
                   items_fixed: bool = False) -> tuple[MixedFit, REMLModel]:
    """Backward selection of the random method slopes (Matuschek, Kliegl, Vasishth, Baayen &
    Bates 2017): the maximal model is conservative and loses power when a slope variance is
    small or zero (measured in ``tests/benchmarks/calibration.py``), so each slope term stays only
    if the data support it (REML likelihood ratio, alpha 0.2): first the unstructured covariances
    against one variance per slope, then each ``group:method`` variance, the least supported first."""
    if structure == "maximal" and groups is not None:  # a non-singular maximal model stays whole
        return fit, model
    if structure == "maximal":
        cs_model = method_model(data, present, "cs", item, items_fixed=items_fixed)
        cs = cs_model.fit(satterthwaite=False)
        p = _lrt_p(cs, fit)
        if p <= SLOPE_ALPHA:
            return fit, model
        notes.append(FitNote(Step.COVARIANCES_DROPPED, numbers={"p": p, "alpha": SLOPE_ALPHA}))
        fit, model = cs, cs_model
    kept = [t.name.split(":")[0] for t in model.terms if t.name.endswith(":method")]
    while kept:
        trials = []
        for group in kept if groups is None else [g for g in kept if g in groups]:
            reduced_model = method_model(data, present, "cs", item, tuple(g for g in kept if g != group), items_fixed)
            reduced = reduced_model.fit(satterthwaite=False)
            trials.append((_lrt_p(reduced, fit), group, reduced, reduced_model))
        if not trials:
            break
        p, group, reduced, reduced_model = max(trials, key=lambda t: t[0])
        if p <= SLOPE_ALPHA:
            break
        notes.append(FitNote(Step.SLOPE_DROPPED, (group,), {"p": p, "alpha": SLOPE_ALPHA}))
        kept.remove(group)
        fit, model = reduced, reduced_model
    return fit, model


RATER_SLOPES = "participant:method"
RATER_TERMS = ("participant", RATER_SLOPES)  # either at 0: refit as the ANOVA's within-participant test
VARIANCES = ("unrestricted", "bounded")
AT_BOUND = 1e-6  # a free ratio this close (relative) to its lower bound: no interaction at all


class DegenerateFit(Exception):
    """The data leave the mixed model nothing to test with (standard errors of 0); args[0]: the
    ``Unavailable`` reason."""


def _unrestricted(model: REMLModel, fit: MixedFit, notes: list[FitNote]) -> tuple[MixedFit, REMLModel]:
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
    at_zero = tuple(at_zero)
    try:
        refit = free.fit(satterthwaite=False)
    except (linalg.LinAlgError, ValueError):
        notes.append(FitNote(Step.FREE_FAILED, at_zero))
        return fit, model
    counts = np.bincount(next(t for t in terms if t.name == RATER_SLOPES).codes)
    if np.any(free.room(refit.theta) < AT_BOUND) and counts.min() < counts.max():
        notes.append(FitNote(Step.FREE_AT_EDGE_UNBALANCED, at_zero))
        return fit, model
    if np.any(free.room(refit.theta) < AT_BOUND):  # balanced: only a rater x method interaction of exactly 0 gets here
        raise DegenerateFit(Unavailable.NO_INTERACTION)
    if free.on_edge(refit.theta):
        notes.append(FitNote(Step.FREE_ON_EDGE, at_zero))
        return fit, model
    try:  # its df, at its own steps
        free.add_satterthwaite(refit)
    except (linalg.LinAlgError, ValueError):
        notes.append(FitNote(Step.FREE_DF_FAILED, at_zero))
        return fit, model
    # Balanced, this is the ANOVA, whose error for a method contrast has (P-1)(m-1) df; next to an
    # almost singular covariance the Satterthwaite df can overshoot that (13.3 for 1 with 2 raters).
    # With an item x method variance too the error combines two strata, and Satterthwaite's df of a
    # combination of mean squares is at most the sum of theirs: (P-1)(m-1) + (I-1)(m-1).  (Capped at
    # (P-1)(m-1) alone, the synthetic paper data got 9 df where lmerTest gives 25.1 on the same model.)
    levels = {t.name: len(t.levels) for t in terms}
    item_strata = sum(levels[t.name.removesuffix(":method")] - 1 for t in terms
                      if t.name.endswith(":method") and t.name != RATER_SLOPES)
    refit.df_cap = float((len(participant.levels) - 1 + item_strata) * (len(model.fixed_names) - 1))
    variance = float(refit.covariances[RATER_SLOPES].iloc[0, 0])
    notes.append(FitNote(Step.UNRESTRICTED, at_zero, {"variance": variance}))
    return refit, free


def fit_methods(data: pd.DataFrame, methods: list[str], item: str | None = "item", selection: str = "items",
                variances: str = "unrestricted", generalise: str = "participants") -> MethodsFit | NoMixedModel:
    """``generalise`` "participants": the items fixed (``method_model``'s ``items_fixed``), a test of
    "equal on these items"; "items": the items random, with their method slopes where
    ``selection`` keeps them, a test of "equal over items like these".
    Fit the maximal model, else the simpler one; drop the slope terms the data do not support
    (``selection``: the items' for "items", every one for "lrt", none for "maximal";
    ``_select_slopes``); free the participant variances when one sits at 0 (``variances``,
    ``_unrestricted``); every method pair as a Satterthwaite t contrast (Holm over pairs).
    Returns numbers and codes (the report words them), or why there is no test."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if variances not in VARIANCES:
        raise ValueError(f"variances must be one of {', '.join(VARIANCES)}, got {variances!r}")
    if generalise not in GENERALISE:
        raise ValueError(f"generalise must be one of {', '.join(GENERALISE)}, got {generalise!r}")
    items_fixed = generalise == "participants"

    data = data[data["method"].isin(methods)]
    present = [m for m in methods if (data["method"] == m).any()]
    if data["participant"].nunique() < 2 or len(present) < 2:
        return NoMixedModel(Unavailable.TOO_FEW, numbers={"participants": data["participant"].nunique(),
                                                          "methods": len(present)})
    notes: list[FitNote] = []
    fit = None
    for structure in STRUCTURES:
        if structure == "maximal":
            few = {g: data[g].nunique() for g in ("participant", None if items_fixed else item)
                   if g and g in data and 1 < data[g].nunique() <= len(present)}
            if few:  # a k x k covariance from at most k levels sits on its boundary: don't spend the fit
                notes.append(FitNote(Step.TOO_FEW_LEVELS, tuple(few), {"methods": len(present), **few}))
                continue
        q, n_theta = _dense_size(data, present, structure, item, items_fixed)
        if q ** 3 * (n_theta + 1) > MAX_DENSE_COST:
            notes.append(FitNote(Step.BEYOND_DENSE_SIZE, numbers={"random_effects": q, "variance_parameters": n_theta,
                                                                  "max_cost": MAX_DENSE_COST}, model=structure))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = method_model(data, present, structure, item, items_fixed=items_fixed)
                candidate = model.fit(satterthwaite=False)
        except (linalg.LinAlgError, ValueError) as exc:
            notes.append(FitNote(Step.DID_NOT_FIT, model=structure, error=str(exc)))
            continue
        fit, chosen = candidate, model
        if structure == "maximal" and (candidate.singular or not candidate.converged):
            notes.append(FitNote(Step.SINGULAR, tuple(candidate.singular_terms), model=candidate.formula)
                         if candidate.singular else FitNote(Step.NOT_CONVERGED, model=candidate.formula))
            continue
        break
    if fit is None:
        return NoMixedModel(Unavailable.NO_FIT, notes)
    if fit.sigma2 <= EXACT_FIT * max(float(np.var(data["rating"])), 1.0):  # SE 0: any difference would get p = 0
        return NoMixedModel(Unavailable.EXACT)
    unrestricted: tuple[str, ...] = ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if selection != "maximal":
            fit, chosen = _select_slopes(data, present, item, fit, chosen, structure, notes,
                                         (item,) if selection == "items" else None, items_fixed)
        if (set(RATER_TERMS) & set(fit.singular_terms) and RATER_SLOPES in {t.name for t in chosen.terms}
                and variances == "unrestricted" and all(t.k == 1 for t in chosen.terms)):
            try:
                fit, chosen = _unrestricted(chosen, fit, notes)
            except DegenerateFit as exc:
                return NoMixedModel(exc.args[0])
            if isinstance(chosen, UnrestrictedREMLModel):
                unrestricted = (RATER_SLOPES,)
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
    if fit.polish is not None:
        notes.append(FitNote(Step.POLISHED, numbers={"gradient_before": fit.polish[0], "gradient_after": fit.polish[1],
                                                     "tolerance": GRADIENT_TOL}))
    if not fit.converged:
        notes.append(FitNote(Step.FIT_NOT_CONVERGED))
    return MethodsFit(fit.formula, contrasts, components, {k: v.to_dict() for k, v in fit.covariances.items()},
                      fit.sigma2, fit.n_obs, fit.converged, fit.singular, list(fit.singular_terms), fit.deviance,
                      selection, variances, notes, unrestricted, items_fixed)


FEW_ITEMS = 6  # below this a test over items like these has little power (a variance from so few items)


def generalise_slopes(generalise: str, selection: str) -> str:
    """The slope selection a ``--generalise`` choice implies: over items, every item slope stays
    (the item x method variance is what a claim about other items must be tested against)."""
    if generalise not in GENERALISE:
        raise ValueError(f"generalise must be one of {', '.join(GENERALISE)}, got {generalise!r}")
    return "maximal" if generalise == "items" else selection


class Claim(str, Enum):
    """The null a test speaks for."""

    THESE_ITEMS = "these_items"  # "equal on these N items" (the study's own)
    ITEMS_LIKE_THESE = "items_like_these"  # "equal over a population of items like these"


@dataclass
class Population:
    """Which items each test speaks for (the report's first lines word it; ``summary.json`` has it)."""

    generalise: str  # the --generalise choice
    items: int  # the study's items (or cells)
    unit: str  # what an item is called: "item" or "cell"
    per_participant_tests: Claim = Claim.THESE_ITEMS
    mixed_model: Claim | None = None  # None: no mixed-model test
    few_items: bool = False  # --generalise items with fewer than FEW_ITEMS items: little power

    def to_json(self) -> dict:
        return {**asdict(self), "per_participant_tests": self.per_participant_tests.value,
                "mixed_model": self.mixed_model.value if self.mixed_model else None}


def population(n_items: int, mixed: MethodsFit | NoMixedModel | None, generalise: str, item: str = "item") -> Population:
    """Which items each test speaks for.  The per-participant tests average each participant's
    ratings over the study's items, so their null is "equal on these N items"; a mixed model with
    an item x method variance tests "equal over a population of items like these" (Clark 1973;
    Barr et al. 2013), one without it again "these N items"."""
    claim = None
    if isinstance(mixed, MethodsFit):
        claim = Claim.ITEMS_LIKE_THESE if mixed.over_items(item) else Claim.THESE_ITEMS
    return Population(generalise, n_items, item, mixed_model=claim,
                      few_items=generalise == "items" and n_items < FEW_ITEMS)
