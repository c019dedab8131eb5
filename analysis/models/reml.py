"""The REML numerics of the mixed model: relative covariance factors per random-effects term,
the profiled REML criterion and its minimisation (lme4, Bates et al. 2015), Satterthwaite's df
(lmerTest), and the unrestricted fit whose participant x method variance may go below zero.
Which model to fit is ``analysis.models.lmm``'s choice; this module only fits what it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse
from scipy import stats as sps

from stylestudy.analysis.models import numderiv

EXACT_FIT = 1e-6  # residual variance, relative to the ratings', below which the fit is exact (degenerate)
SINGULAR_TOL = 1e-4  # lme4's isSingular(): a diagonal element of theta below this is on the boundary
LEVEL = 0.95
RETRY_THETA = 0.3  # a diagonal of theta at 0 is re-tried from here (a variance 0.09 of the residual's)
HESSIAN_TOL = 1e-8  # lmerTest (as_lmerModLT): Hessian eigenvalues at or below this are not inverted
# one last L-BFGS-B run from the optimum at tolerances (ftol, gtol) near rounding: where the criterion is flat, the
# first stop can lie 1e-5 from the optimum in theta and Satterthwaite's df move 2e-4 with it (against lme4 run to 1e-14)
FINAL_TOLERANCES = (1e-15, 1e-10)
GRADIENT_TOL = 2e-3  # lme4's check.conv.grad tolerance: slope or Newton step of the REML criterion at the optimum


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
    # the optimiser's gradient before and after a Nelder-Mead polish, when its first search did not pass the check
    polish: tuple[float, float] | None = None

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

    every_start = False  # True: every start, even after an interior optimum that passes the check

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
        """lme4's default start (1 on every diagonal of theta, 0 off it) and one near the boundary."""
        return [self.theta_start(), 0.2 * self.theta_start()]

    @property
    def scalar_terms(self) -> bool:
        """Only scalar terms (the four-intercept model): every start and the boundary re-tries.
        With a k x k term (the maximal model) lme4's start only, as lme4 (its diagonals are
        searched as theta, where the bound is no stationary point); with starts and re-tries it
        took 9 times as long (6 ACR calibration studies: 17 of 19 CPU s in the maximal model,
        singular and replaced every time; 2.2 CPU s now, 1.8 before this optimiser)."""
        return all(t.k == 1 for t in self.terms)

    def squared(self) -> np.ndarray:
        """The parameters searched as their squares: the scalar terms' theta (bounded at 0).  A
        k x k term's criterion is not even in its diagonals (the off-diagonals multiply them), so
        there theta itself is searched: its square root would put an infinite slope at 0."""
        scalar = np.concatenate([np.full(t.n_theta, t.k == 1) for t in self.terms])
        return (self.lower_bounds == 0) & scalar

    def to_search(self, params: np.ndarray) -> np.ndarray:
        return np.where(self.squared(), np.asarray(params, float) ** 2, params)

    def from_search(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.squared(), np.sqrt(np.maximum(x, 0.0)), x)

    def _search_deviance(self, x: np.ndarray) -> float:
        return self.profiled_deviance(self.from_search(x))

    def _local(self, start: np.ndarray, tolerances: tuple[float, float] = (1e-12, 1e-7)) -> optimize.OptimizeResult:
        """Bounded L-BFGS-B from ``start`` (in theta), searching the scalar terms' theta as their
        squares (``squared``).  Why the squares: the criterion depends on a scalar term's theta only through
        theta^2, so at theta = 0 its slope is 0 whatever the data say, and a gradient method
        that reaches the bound stays there (what stopped the fits short of lme4's optimum in
        the review: 18 of 40 planted null sets); in theta^2 the slope at 0 is the true one."""
        bounds = [(lb if np.isfinite(lb) else None, None) for lb in self.lower_bounds]
        ftol, gtol = tolerances
        return optimize.minimize(self._search_deviance, self.to_search(start), method="L-BFGS-B", bounds=bounds,
                                 options={"ftol": ftol, "gtol": gtol, "maxiter": 2000})

    def projected_gradient(self, x: np.ndarray) -> float:
        """lme4's convergence check (``check.conv.grad``): per search parameter the smaller of
        the slope and the Newton step (slope / curvature; lme4 solves with the whole Hessian, this
        takes its diagonal), the largest of them; central differences, and at a bound only the
        slope downhill into the region counts."""
        f0 = self._search_deviance(x)
        worst = 0.0
        for i in range(len(x)):
            h = 1e-6 * max(1.0, abs(x[i]))
            e = np.zeros(len(x))
            e[i] = h
            up = self._search_deviance(x + e)
            if x[i] - self.lower_bounds[i] < 1e-4 * max(1.0, abs(x[i])):  # on the bound: only moving up is allowed
                slope = min((up - f0) / h, 0.0)
                if slope == 0.0:
                    continue
                e[i] = 1e-4 * max(1.0, abs(x[i]))
                curvature = 2 * (self._search_deviance(x + e) - f0 - slope * e[i]) / e[i] ** 2
            else:
                slope = (up - self._search_deviance(x - e)) / (2 * h)
                e[i] = min(1e-4 * max(1.0, abs(x[i])), 0.5 * (x[i] - self.lower_bounds[i]))
                curvature = (self._search_deviance(x + e) - 2 * f0 + self._search_deviance(x - e)) / e[i] ** 2
            step = abs(slope / curvature) if curvature > 0 else np.inf
            worst = max(worst, min(abs(slope), step))
        return worst

    def _optimise(self) -> tuple[np.ndarray, float, bool, tuple[float, float] | None]:
        """(theta, criterion, converged, polish).  lme4's start; with scalar terms the others too
        unless it ends at an interior optimum that passes the gradient check, then each diagonal of
        theta at 0 re-tried from RETRY_THETA (the review's stuck fits sat at a boundary lme4 left);
        then the gradient check.  Where the gradient is not ~0 a derivative-free polish
        (Nelder-Mead) follows, and ``polish`` is the gradient before and after it (else None); a
        fit that still fails is reported as not converged, never passed on silently."""
        best = None
        for start in self.starts() if self.scalar_terms else self.starts()[:1]:
            res = self._local(start)
            if best is None or res.fun < best.fun:
                best = res
            interior = not np.any(self.squared() & (self.from_search(best.x) < SINGULAR_TOL))
            if interior and not self.every_start and self.projected_gradient(best.x) <= GRADIENT_TOL:
                break  # an interior optimum that passes the check: the other starts are for boundary fits
        for _ in range(self.n_theta if self.scalar_terms else 0):
            params = self.from_search(best.x)
            improved = False
            for i in np.flatnonzero(self.squared() & (params < SINGULAR_TOL)):
                retry = params.copy()
                retry[i] = RETRY_THETA
                res = self._local(retry)
                if res.fun < best.fun - 1e-8:
                    best, improved = res, True
                    break
            if not improved:
                break
        final = self._local(self.from_search(best.x), FINAL_TOLERANCES)  # the last digits: the df follow theta there
        if final.fun <= best.fun:
            best = final
        polished = None
        gradient = self.projected_gradient(best.x)
        if gradient > GRADIENT_TOL:  # L-BFGS-B again from where it stopped (a fresh curvature estimate)
            again = self._local(self.from_search(best.x))
            if again.fun <= best.fun:
                best, gradient = again, self.projected_gradient(again.x)
        if gradient > GRADIENT_TOL:
            bounds = [(lb if np.isfinite(lb) else None, None) for lb in self.lower_bounds]
            polish = optimize.minimize(self._search_deviance, best.x, method="Nelder-Mead", bounds=bounds,
                                       options={"xatol": 1e-9, "fatol": 1e-12, "maxfev": 200 * len(best.x)})
            if polish.fun < best.fun:
                best = polish
            before, gradient = gradient, self.projected_gradient(best.x)
            polished = (before, gradient)
        return self.from_search(best.x), float(best.fun), gradient <= GRADIENT_TOL, polished

    def _fit(self) -> MixedFit:
        theta, criterion, converged, polish = self._optimise()
        fit = self.fit_at(theta, converged)
        fit.deviance, fit.polish = criterion, polish
        return fit

    def fit_at(self, theta: np.ndarray, converged: bool = True) -> MixedFit:
        """The fit at a given theta (the optimum's, or another program's, to compare with it)."""
        theta = np.asarray(theta, float).copy()
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
                       singular, converged, self.profiled_deviance(theta), self.n)
        fit.singular_terms = [term.name for term, T in zip(self.terms, self.factors(theta))
                              if np.any(np.diag(T) < SINGULAR_TOL)]
        return fit

    def derivatives(self, varpar: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """The Hessian of the REML deviance in (theta, sigma) and the Jacobian of Cov(beta), as
        lmerTest takes them: numDeriv's Richardson extrapolation with numDeriv's steps."""
        return numderiv.hessian(self.deviance, varpar), numderiv.jacobian(self.cov_beta, varpar)

    def _satterthwaite(self, fit: MixedFit, varpar: np.ndarray) -> None:
        """lmerTest's recipe: A = 2 H^-1 (H the Hessian of the REML deviance in (theta, sigma),
        inverted on its eigenvalues above lmerTest's tolerance), and the Jacobian of Cov(beta)."""
        H, fit.jacobian = self.derivatives(varpar)
        values, vectors = np.linalg.eigh(H)
        positive = values > self.eigen_tol(values)
        fit.hessian_pd = bool(positive.all())
        fit.vcov_varpar = 2 * (vectors[:, positive] / values[positive]) @ vectors[:, positive].T

    @staticmethod
    def eigen_tol(values: np.ndarray) -> float:
        """lmerTest's: eigenvalues of the Hessian at or below 1e-8 are left out of its inverse."""
        return HESSIAN_TOL


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
        self.every_start = True  # the minimum may lie on either side of 0 (see ``starts``)
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
        """Central-difference steps that never cross the positive-definite edge: a free ratio near
        its bound gets a tenth of the room left (a fixed 1e-4 there bent the Hessian and the df:
        28.5 for the ANOVA's 18; numDeriv's steps of 10% would cross it)."""
        gap = np.append(np.where(self.free, varpar[:-1] - self.lower_bounds, np.inf), np.inf)
        return np.minimum(1e-4 * np.maximum(np.abs(varpar), 1.0), 0.1 * gap)

    def derivatives(self, varpar: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Central differences at ``steps`` (lmerTest has no unrestricted fit to match)."""
        k = len(varpar)
        h = self.steps(varpar)
        f0 = self.deviance(varpar)
        H = np.zeros((k, k))
        unit = np.eye(k) * h
        for i in range(k):
            H[i, i] = (self.deviance(varpar + unit[i]) - 2 * f0 + self.deviance(varpar - unit[i])) / h[i] ** 2
            for j in range(i):
                H[i, j] = H[j, i] = (self.deviance(varpar + unit[i] + unit[j]) - self.deviance(varpar + unit[i] - unit[j])
                                     - self.deviance(varpar - unit[i] + unit[j])
                                     + self.deviance(varpar - unit[i] - unit[j])) / (4 * h[i] * h[j])
        jacobian = [(self.cov_beta(varpar + unit[i]) - self.cov_beta(varpar - unit[i])) / (2 * h[i]) for i in range(k)]
        return H, jacobian

    @staticmethod
    def eigen_tol(values: np.ndarray) -> float:
        """Relative to the largest eigenvalue (the free ratios' scale differs from theta's)."""
        return 1e-6 * max(1.0, float(np.abs(values).max()))

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
