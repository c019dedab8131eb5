"""A Thurstone Case V posterior over every (item, method) score, from pairwise counts.

Model: within item ``k`` method ``i`` has a score ``s_ki`` in JOD units (just objectionable
differences: a difference of 1 JOD is preferred 75% of the time), and a comparison of ``i`` with
``j`` prefers ``i`` with probability ``Φ((s_ki − s_kj) / σ)``, ``σ = 1 / Φ⁻¹(0.75) ≈ 1.4826``.
A "No preference" counts half a win each way.  Prior: independent ``N(0, PRIOR_SD²)`` scores.

The posterior is approximated by a Laplace approximation: the MAP found by Newton's method
(the log-likelihood is concave, so there is one optimum; every item is solved at once as a batch
of small m×m systems) and the inverse negative Hessian there as covariance.  Items are
independent (comparisons are only ever made within an item).  Starting from zero every time, the
fit is a deterministic function of the counts: whoever derives it from the same database gets
the same posterior.

``expected_gain``: the information a comparison of ``i`` and ``j`` is expected to give about the
scores (the mutual information between its outcome and ``s``, as in BALD / ASAP's expected KL
divergence), from the Gaussian posterior of ``d = s_i − s_j`` by Gauss–Hermite quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr

SIGMA = 1.0 / 0.6744897501960817  # 1 / Φ⁻¹(0.75): 1 JOD = 75% preference
PRIOR_SD = 3.0  # JOD: wide enough for any ranking a study can hold, narrow enough to be proper
LEVEL_Z = 1.959963984540054  # 95% intervals
_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(24)
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass
class Posterior:
    """``mean[k, i]`` and ``cov[k, i, j]`` of item k's method scores (JOD); ``comparisons``: counted."""

    mean: np.ndarray
    cov: np.ndarray
    comparisons: float


def _mills(z: np.ndarray) -> np.ndarray:
    """φ(z) / Φ(z), stable for large negative z."""
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_ndtr(z))


def _precision(wins: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gradient of the log posterior, its negative Hessian) at scores ``s``."""
    m = s.shape[1]
    z = (s[:, :, None] - s[:, None, :]) / SIGMA
    lam = _mills(z)
    g = wins * lam / SIGMA
    grad = g.sum(2) - g.sum(1) - s / PRIOR_SD**2
    h = wins * lam * (z + lam) / SIGMA**2
    h = h + h.transpose(0, 2, 1)
    eye = np.eye(m)
    precision = eye * h.sum(2)[:, :, None] - h + eye / PRIOR_SD**2
    return grad, precision


def fit(wins: np.ndarray, tol: float = 1e-10, max_iter: int = 100) -> Posterior:
    """The Laplace posterior from ``wins[k, i, j]`` = times i was preferred over j in item k
    (ties: 0.5 each way).  Newton steps are capped at 2 JOD, so a one-sided record (all wins)
    converges as surely as a balanced one."""
    wins = np.asarray(wins, dtype=float)
    s = np.zeros(wins.shape[:2])
    for _ in range(max_iter):
        grad, precision = _precision(wins, s)
        step = np.linalg.solve(precision, grad[..., None])[..., 0]
        step = np.clip(step, -2.0, 2.0)
        s = s + step
        if not len(s) or np.abs(step).max() < tol:
            break
    _, precision = _precision(wins, s)
    return Posterior(mean=s, cov=np.linalg.inv(precision), comparisons=float(wins.sum()))


def pair_moments(post: Posterior, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``s_i − s_j`` for every item (rows) and listed pair (columns)."""
    mu = post.mean[:, i] - post.mean[:, j]
    var = post.cov[:, i, i] + post.cov[:, j, j] - 2 * post.cov[:, i, j]
    return mu, np.maximum(var, 1e-12)


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def expected_gain(mu: np.ndarray, var: np.ndarray, pending: np.ndarray | float = 0.0) -> np.ndarray:
    """Expected information (nats) of one more comparison of a pair whose difference has
    posterior ``N(mu, var)``: H(E[p]) − E[H(p)].  ``pending``: comparisons of the pair already
    handed out but not answered; each is taken to shrink ``var`` by its expected Fisher
    information first, so a pair in flight to others is worth less (but not nothing)."""
    z = mu / SIGMA
    fisher = np.exp(-z * z - 2 * _LOG_SQRT_2PI) / np.clip(ndtr(z) * ndtr(-z), 1e-300, None) / SIGMA**2
    var = var / (1.0 + np.asarray(pending) * var * fisher)
    predictive = ndtr(mu / np.sqrt(SIGMA**2 + var))
    d = mu[..., None] + np.sqrt(2 * var)[..., None] * _NODES
    conditional = (_entropy(ndtr(d / SIGMA)) * _WEIGHTS).sum(-1) / np.sqrt(np.pi)
    return np.maximum(_entropy(predictive) - conditional, 0.0)


@dataclass
class Ranking:
    """Method scores over items: each item's scores centred (mean 0), then averaged over items."""

    methods: list[str]
    score: np.ndarray  # JOD, mean 0
    cov: np.ndarray

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def order(self) -> list[int]:
        """Indices of the methods, best first."""
        return [int(i) for i in np.argsort(-self.score, kind="stable")]

    def adjacent(self) -> list[dict]:
        """Each neighbour pair of the ranking: difference and its 95% interval."""
        out = []
        order = self.order()
        for hi, lo in zip(order, order[1:]):
            diff = self.score[hi] - self.score[lo]
            sd = float(np.sqrt(max(self.cov[hi, hi] + self.cov[lo, lo] - 2 * self.cov[hi, lo], 0.0)))
            out.append({"better": self.methods[hi], "worse": self.methods[lo], "difference": float(diff),
                        "ci": [float(diff - LEVEL_Z * sd), float(diff + LEVEL_Z * sd)]})
        return out

    def separated(self) -> bool:
        """Every adjacent pair's 95% interval excludes 0."""
        return all(a["ci"][0] > 0 for a in self.adjacent())

    def rows(self) -> list[dict]:
        sd = self.sd
        return [{"rank": r, "method": self.methods[i], "score": float(self.score[i]),
                 "ci": [float(self.score[i] - LEVEL_Z * sd[i]), float(self.score[i] + LEVEL_Z * sd[i])]}
                for r, i in enumerate(self.order(), start=1)]


def ranking(post: Posterior, methods: list[str]) -> Ranking:
    """The study-level ranking: per item centred scores, averaged over items (independent)."""
    n, m = post.mean.shape
    centre = np.eye(m) - 1.0 / m
    score = (post.mean @ centre).mean(0) if n else np.zeros(m)
    cov = (centre @ post.cov @ centre).sum(0) / n**2 if n else np.zeros((m, m))
    return Ranking(list(methods), score, cov)
