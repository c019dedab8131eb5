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

import math
import warnings
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse
from scipy import stats as sps

from stylestudy.analysis.ratings.multiple import holm

EXACT_FIT = 1e-6  # residual variance, relative to the ratings', below which the fit is exact (degenerate)
SINGULAR_TOL = 1e-4  # lme4's isSingular(): a diagonal element of theta below this is on the boundary
LEVEL = 0.95


@dataclass
class Term:
    """One random-effects term ``(columns | group)``: per level of ``group`` a k-vector with an
    unstructured k x k covariance (k = 1: a random intercept)."""

    name: str
    codes: np.ndarray  # level index per observation
    levels: list[str]
    columns: np.ndarray  # n x k model matrix of the term
    column_names: list[str]

    @property
    def k(self) -> int:
        return self.columns.shape[1]

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2


@dataclass
class MixedFit:
    """What a fit found, in the terms the report prints."""

    formula: str
    fixed_names: list[str]
    beta: np.ndarray
    cov_beta: np.ndarray
    sigma2: float
    covariances: dict[str, pd.DataFrame]  # term -> covariance matrix of its random effects
    theta: np.ndarray
    singular: bool
    converged: bool
    deviance: float
    n_obs: int
    hessian_pd: bool = True
    vcov_varpar: np.ndarray | None = None
    jacobian: list[np.ndarray] = field(default_factory=list)  # d Cov(beta) / d varpar_j
    singular_terms: list[str] = field(default_factory=list)  # terms with a diagonal of theta on the boundary
    df_cap: float = math.inf  # at most these df (the unrestricted refit: the ANOVA's participant x method df)

    def contrast(self, c: np.ndarray) -> dict:
        """Estimate, SE, Satterthwaite df, t, p and CI of c'beta."""
        c = np.asarray(c, float)
        estimate = float(c @ self.beta)
        var = float(c @ self.cov_beta @ c)
        se = math.sqrt(var) if var > 0 else float("nan")
        grad = np.array([c @ j @ c for j in self.jacobian]) if self.jacobian else np.array([])
        denominator = float(grad @ self.vcov_varpar @ grad) if self.vcov_varpar is not None and len(grad) else 0.0
        df = 2 * var**2 / denominator if denominator > 0 else float("nan")
        df = min(df, self.n_obs - len(self.beta), self.df_cap) if math.isfinite(df) else \
            float(min(self.n_obs - len(self.beta), self.df_cap))
        t = estimate / se if se > 0 else float("nan")
        p = float(2 * sps.t.sf(abs(t), df)) if se > 0 else float("nan")
        q = sps.t.ppf(1 - (1 - LEVEL) / 2, df) if se > 0 else float("nan")
        return {"estimate": estimate, "se": se, "df": float(df), "t": t, "p": p,
                "ci_low": estimate - q * se, "ci_high": estimate + q * se}


class REMLModel:
    """y = X beta + Z b + e, b ~ N(0, sigma^2 Lambda Lambda'), e ~ N(0, sigma^2 I), by REML."""

    every_start = False  # stop at the first start that converges

    def __init__(self, y: np.ndarray, X: np.ndarray, fixed_names: list[str], terms: list[Term], formula: str):
        self.y, self.X, self.terms, self.fixed_names, self.formula = y, X, terms, fixed_names, formula
        self.n, self.p = X.shape
        rows, cols, vals, self.offsets = [], [], [], []
        offset = 0
        for term in terms:
            rows.append(np.repeat(np.arange(self.n), term.k))
            cols.append((term.codes[:, None] * term.k + np.arange(term.k)[None, :]).ravel() + offset)
            vals.append(term.columns.ravel())
            self.offsets.append(offset)
            offset += len(term.levels) * term.k
        self.q = offset
        Z = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(self.n, self.q))
        self.ZtZ = (Z.T @ Z).toarray()
        self.ZtX = Z.T @ X
        self.Zty = Z.T @ y
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ y, float(y @ y)
        self.lower_bounds = np.concatenate([self._diag_mask(t) for t in terms]).astype(float)
        self.lower_bounds = np.where(self.lower_bounds == 1, 0.0, -np.inf)

    @staticmethod
    def _diag_mask(term: Term) -> np.ndarray:
        rows, cols = np.tril_indices(term.k)
        return (rows == cols).astype(int)

    @property
    def n_theta(self) -> int:
        return sum(t.n_theta for t in self.terms)

    def theta_start(self) -> np.ndarray:
        return np.concatenate([self._diag_mask(t).astype(float) for t in self.terms])

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """theta -> each term's lower-triangular k x k factor T (covariance = sigma^2 T T')."""
        out, i = [], 0
        for term in self.terms:
            T = np.zeros((term.k, term.k))
            T[np.tril_indices(term.k)] = theta[i:i + term.n_theta]
            out.append(T)
            i += term.n_theta
        return out

    def _lambda_t_times(self, M: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
        """Lambda' M without forming Lambda: each term's rows are (level, column) blocks, and
        Lambda' applies T' to every level's block (O(q k c), not O(q^2 c))."""
        out = np.empty_like(M)
        two_d = M.ndim == 2
        cols = M.shape[1] if two_d else 1
        for term, T, offset in zip(self.terms, factors, self.offsets):
            size = len(term.levels) * term.k
            seg = M[offset:offset + size].reshape(len(term.levels), term.k, cols)
            res = np.matmul(T.T, seg) if term.k > 1 else T[0, 0] * seg
            out[offset:offset + size] = res.reshape(size, cols) if two_d else res.reshape(size)
        return out

    def _decompose(self, theta: np.ndarray):
        """(log|L|^2, log|RX|^2, r^2, beta, RX) for this theta (lme4's penalised least squares)."""
        factors = self.factors(theta)
        A = self._lambda_t_times(self._lambda_t_times(self.ZtZ, factors).T.copy(), factors)  # Lambda' ZtZ Lambda
        A[np.diag_indices_from(A)] += 1.0
        L = linalg.cholesky(A, lower=True, check_finite=False)
        cu = linalg.solve_triangular(L, self._lambda_t_times(self.Zty, factors), lower=True, check_finite=False)
        RZX = linalg.solve_triangular(L, self._lambda_t_times(self.ZtX, factors), lower=True, check_finite=False)
        RX = linalg.cholesky(self.XtX - RZX.T @ RZX, lower=False, check_finite=False)  # upper: RX'RX
        cb = linalg.solve_triangular(RX, self.Xty - RZX.T @ cu, trans="T", lower=False)
        beta = linalg.solve_triangular(RX, cb, lower=False)
        r2 = self.yty - float(cu @ cu) - float(cb @ cb)
        logdet_l = 2 * float(np.log(np.diag(L)).sum())
        logdet_rx = 2 * float(np.log(np.abs(np.diag(RX))).sum())
        return logdet_l, logdet_rx, max(r2, 1e-300), beta, RX

    def profiled_deviance(self, theta: np.ndarray) -> float:
        try:
            ld, lx, r2, _, _ = self._decompose(theta)
        except (linalg.LinAlgError, ValueError):
            return float("inf")
        m = self.n - self.p
        return ld + lx + m * (1 + math.log(2 * math.pi * r2 / m))

    def deviance(self, varpar: np.ndarray) -> float:
        """REML deviance in (theta, sigma), the parameters lmerTest differentiates in."""
        theta, sigma = varpar[:-1], varpar[-1]
        ld, lx, r2, _, _ = self._decompose(theta)
        m = self.n - self.p
        return ld + lx + m * math.log(2 * math.pi * sigma**2) + r2 / sigma**2

    def cov_beta(self, varpar: np.ndarray) -> np.ndarray:
        _, _, _, _, RX = self._decompose(varpar[:-1])
        inv = linalg.solve_triangular(RX, np.eye(self.p), lower=False)
        return varpar[-1] ** 2 * inv @ inv.T

    def fit(self, satterthwaite: bool = True) -> MixedFit:
        """REML fit (and, unless told not to, the Satterthwaite ingredients).  One BLAS thread:
        the matrices are small, and threads only contend (measured 18 s -> 0.4 s on 2 busy cores)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            fit = self._fit()
            if satterthwaite:
                self._satterthwaite(fit, np.append(fit.theta, math.sqrt(fit.sigma2)))
        return fit

    def add_satterthwaite(self, fit: MixedFit) -> MixedFit:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            self._satterthwaite(fit, np.append(fit.theta, math.sqrt(fit.sigma2)))
        return fit

    def starts(self) -> list[np.ndarray]:
        return [self.theta_start(), 0.5 * self.theta_start()]

    def _fit(self) -> MixedFit:
        bounds = [(lb if np.isfinite(lb) else None, None) for lb in self.lower_bounds]
        best = None
        for start in self.starts():
            res = optimize.minimize(self.profiled_deviance, start, method="L-BFGS-B", bounds=bounds,
                                    options={"ftol": 1e-12, "gtol": 1e-7, "maxiter": 2000})
            if best is None or res.fun < best.fun - 1e-9:
                best = res
            if res.success and not self.every_start:
                break
        theta = np.asarray(best.x, float)
        theta[(self.lower_bounds == 0) & (theta < 0)] = 0.0
        _, _, r2, beta, _ = self._decompose(theta)
        m = self.n - self.p
        sigma2 = r2 / m
        sigma = math.sqrt(sigma2)
        varpar = np.append(theta, sigma)
        singular = bool(np.any(theta[self.lower_bounds == 0] < SINGULAR_TOL))
        covariances = {}
        for term, T in zip(self.terms, self.factors(theta)):
            covariances[term.name] = pd.DataFrame(sigma2 * T @ T.T, index=term.column_names, columns=term.column_names)
        fit = MixedFit(self.formula, self.fixed_names, beta, self.cov_beta(varpar), sigma2, covariances, theta,
                       singular, bool(best.success), float(best.fun), self.n)
        fit.singular_terms = [term.name for term, T in zip(self.terms, self.factors(theta))
                              if np.any(np.diag(T) < SINGULAR_TOL)]
        return fit

    def steps(self, varpar: np.ndarray) -> np.ndarray:
        """Central-difference steps in (theta, sigma)."""
        return 1e-4 * np.maximum(np.abs(varpar), 1.0)

    def _satterthwaite(self, fit: MixedFit, varpar: np.ndarray) -> None:
        """lmerTest's recipe: A = 2 H^-1 (H the Hessian of the REML deviance in (theta, sigma),
        inverted on its positive eigenvalues), and the Jacobian of Cov(beta), both by central
        differences."""
        k = len(varpar)
        h = self.steps(varpar)
        f0 = self.deviance(varpar)
        H = np.zeros((k, k))
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (self.deviance(varpar + ei) - 2 * f0 + self.deviance(varpar - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (self.deviance(varpar + ei + ej) - self.deviance(varpar + ei - ej)
                                     - self.deviance(varpar - ei + ej) + self.deviance(varpar - ei - ej)) / (4 * h[i] * h[j])
        values, vectors = np.linalg.eigh(H)
        positive = values > 1e-6 * max(1.0, float(np.abs(values).max()))
        fit.hessian_pd = bool(positive.all())
        fit.vcov_varpar = 2 * (vectors[:, positive] / values[positive]) @ vectors[:, positive].T
        fit.jacobian = []
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            fit.jacobian.append((self.cov_beta(varpar + ei) - self.cov_beta(varpar - ei)) / (2 * h[i]))


class UnrestrictedREMLModel(REMLModel):
    """The same model with the variances of the named scalar terms free to go below zero (SAS
    PROC MIXED's NOBOUND; in a balanced design the classical ANOVA estimates), so long as the
    covariance of y stays positive definite.

    Why: when a rater x method variance is truly zero, its REML estimate is cut at zero about
    half the time, and exactly then (the participants agree more than the noise predicts) the
    test uses a wider error than the data show (freeing it moved the calibration's ACR row at 10
    raters from 3.1% to 4.7% false positives at nominal 5%).  Left free, the estimate may be negative, and
    the method contrast is tested against the interaction the data show, as the repeated-measures
    ANOVA does.  Where the free estimate is positive the fit is the bounded fit.

    Parameters: theta (as lme4) for the bounded terms, the variance ratio d = variance / sigma^2
    itself for the free ones (theta would be degenerate at 0, and Satterthwaite differentiates in
    these).  V / sigma^2 = H = I + Z D Z'; with Z'Z = R R' (R from its eigendecomposition),
    |H| = |M| for M = I + R'DR (Sylvester), and Z'H^-1 products use D(I + Z'Z D)^-1 = D - DR M^-1 R'D
    (Woodbury), so nothing n x n is formed."""

    def __init__(self, y: np.ndarray, X: np.ndarray, fixed_names: list[str], terms: list[Term], formula: str,
                 free: tuple[str, ...], bounded_theta: np.ndarray | None = None):
        super().__init__(y, X, fixed_names, terms, formula)
        self.bounded_theta = bounded_theta  # the bounded fit's theta, the first start
        if any(t.k != 1 for t in terms):
            raise ValueError("unrestricted variances need scalar terms (the 'cs' structure)")
        self.free = np.array([t.name in free for t in terms])
        self.every_start = True
        values, vectors = np.linalg.eigh(self.ZtZ)
        self.R = vectors * np.sqrt(np.clip(values, 0.0, None))
        self.columns_of = np.concatenate([np.full(len(t.levels), i) for i, t in enumerate(terms)])
        self.lower_bounds = np.zeros(len(terms))
        for i, (term, offset) in enumerate(zip(terms, self.offsets)):
            if self.free[i]:  # below this the term alone makes H indefinite; combinations fail in _decompose
                block = np.diag(self.ZtZ)[offset:offset + len(term.levels)]
                self.lower_bounds[i] = -(1 - 1e-6) / float(block.max())

    def ratios(self, params: np.ndarray) -> np.ndarray:
        return np.where(self.free, params, params**2)

    def room(self, params: np.ndarray) -> np.ndarray:
        """How far each free ratio is above its lower bound, relative to the bound (inf for the others)."""
        return np.where(self.free, (params - self.lower_bounds) / np.abs(np.where(self.free, self.lower_bounds, 1.0)),
                        np.inf)

    def on_edge(self, params: np.ndarray, tol: float = 1e-4) -> bool:
        """True when the optimiser stopped on the edge where H stops being positive definite
        rather than at a minimum: there the REML deviance still falls towards the edge (log|H| ->
        -inf: no optimum; seen with 2 participants), so along a free ratio it is not convex, or a
        Newton step would still lower it by more than ``tol``.  Near its own bound an interior
        optimum is steep but convex with a gradient ~0, and passes."""
        gap = np.where(self.free, params - self.lower_bounds, np.inf)
        f0 = self.profiled_deviance(params)
        for i in np.flatnonzero(self.free):
            h = min(1e-6 * max(1.0, abs(params[i])), 0.1 * gap[i])
            e = np.zeros(len(params))
            e[i] = h
            up, down = self.profiled_deviance(params + e), self.profiled_deviance(params - e)
            curvature = (up - 2 * f0 + down) / h**2
            slope = (up - down) / (2 * h)
            if max(up, down) >= 1e12 or curvature <= 0 or slope**2 / curvature > tol:
                return True
        return False

    def steps(self, varpar: np.ndarray) -> np.ndarray:
        """Never step across the positive-definite edge: a free ratio near its bound gets a tenth of
        the room left (a fixed 1e-4 there bent the Hessian and the df: 28.5 for the ANOVA's 18)."""
        h = super().steps(varpar)
        gap = np.append(np.where(self.free, varpar[:-1] - self.lower_bounds, np.inf), np.inf)
        return np.minimum(h, 0.1 * gap)

    def theta_start(self) -> np.ndarray:
        return np.ones(len(self.terms))

    def starts(self) -> list[np.ndarray]:
        """From the bounded fit (its theta, squared for the free terms), then from a free variance
        halfway to its lower bound: the REML surface may have its minimum on either side of 0."""
        bounded = self.bounded_theta
        if bounded is None:
            bounded = REMLModel(self.y, self.X, self.fixed_names, self.terms, self.formula)._fit().theta
        start = np.where(self.free, bounded**2, bounded)
        below = np.where(self.free, 0.5 * self.lower_bounds, np.maximum(bounded, 0.1))
        return [start, below, self.theta_start()]

    def _decompose(self, params: np.ndarray):
        d = self.ratios(np.asarray(params, float))[self.columns_of]
        M = np.eye(self.q) + (self.R.T * d) @ self.R
        L = linalg.cholesky(M, lower=True, check_finite=False)  # fails when H is not positive definite
        DR = self.R * d[:, None]
        G = linalg.solve_triangular(L, DR.T, lower=True, check_finite=False)
        W = np.diag(d) - G.T @ G  # D (I + Z'Z D)^-1
        XtHX = self.XtX - self.ZtX.T @ W @ self.ZtX
        XtHy = self.Xty - self.ZtX.T @ W @ self.Zty
        ytHy = self.yty - float(self.Zty @ W @ self.Zty)
        RX = linalg.cholesky(XtHX, lower=False, check_finite=False)
        beta = linalg.cho_solve((RX, False), XtHy)
        r2 = ytHy - float(beta @ XtHy)
        logdet_l = 2 * float(np.log(np.diag(L)).sum())
        logdet_rx = 2 * float(np.log(np.abs(np.diag(RX))).sum())
        return logdet_l, logdet_rx, max(r2, 1e-300), beta, RX

    def profiled_deviance(self, theta: np.ndarray) -> float:
        value = super().profiled_deviance(theta)
        return value if math.isfinite(value) else 1e12

    def _fit(self) -> MixedFit:
        fit = super()._fit()
        d = self.ratios(fit.theta)
        fit.covariances = {t.name: pd.DataFrame([[fit.sigma2 * v]], index=t.column_names, columns=t.column_names)
                           for t, v in zip(self.terms, d)}
        fit.singular_terms = [t.name for t, v, free in zip(self.terms, d, self.free) if not free and v < SINGULAR_TOL**2]
        fit.singular = bool(fit.singular_terms)
        return fit


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
    return {"formula": fit.formula, "contrasts": contrasts, "variances": components,
            "covariances": {k: v.to_dict() for k, v in fit.covariances.items()}, "residual_var": fit.sigma2,
            "n_obs": fit.n_obs, "converged": fit.converged, "singular": fit.singular, "df_method": "Satterthwaite",
            "selection": selection, "variance_bounds": variances, "fallback": fallback, "singular_terms": fit.singular_terms, "reml_deviance": fit.deviance}
