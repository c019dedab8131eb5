"""A Thurstone Case V posterior over every (item, method) score, from pairwise counts.

Model: within item ``k`` method ``i`` has a score ``s_ki`` in JOD units (just objectionable
differences: a difference of 1 JOD is preferred 75% of the time), and a comparison of ``i`` with
``j`` prefers ``i`` with probability ``Φ((s_ki − s_kj) / σ)``, ``σ = 1 / Φ⁻¹(0.75) ≈ 1.4826``.
A "No preference" counts half a win each way.  Prior (hierarchical): a method's item scores
scatter around its study-level score, ``s_ki ~ N(q_i, ITEM_SD²)``, ``q_i ~ N(0, METHOD_SD²)``,
so what one item teaches about a method also moves the others, while comparisons stay within
items.

The joint posterior of (s, q) is approximated by a Laplace approximation: the MAP found by
Newton's method (the log-likelihood is concave, so there is one optimum) and the inverse negative
Hessian there as covariance.  The Hessian is block-structured (one m×m block per item, all
coupled only through q), so each Newton step and the covariance blocks need only m×m solves (a
Schur complement over q), batched over items: a study of 50 items × 10 methods fits in a few
milliseconds.  Starting from zero every time, the fit is a deterministic function of the counts:
whoever derives it from the same database gets the same posterior.

``expected_gain``: the information a comparison of ``i`` and ``j`` in an item is expected to give
(the mutual information between its outcome and the target, as in BALD / ASAP's expected KL
divergence), from the Gaussian posterior of ``d = s_ki − s_kj`` by Gauss–Hermite quadrature.  The
target is either every score ``s`` (``"items"``) or the methods' mean scores over the study's items,
``s̄_i = mean_k s_ki`` (``"methods"``: what the ranking reports); for the latter only the part of
``d`` that ``s̄`` determines counts, the rest (that item's own deviations) is noise to it.
``ranking_gain``: not information but the expected number of method pairs a comparison puts
in the right order (for ``"ranking"``, the order the study reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.special import entr, log_ndtr, ndtr, owens_t

from stylestudy.engine.study.units import JOD_SIGMA

SIGMA = JOD_SIGMA  # 1 / Φ⁻¹(0.75): 1 JOD = 75% preference (engine.study.units)
# JOD: prior spread of the study-level method scores.  1 JOD puts 95% of method differences within
# ±2.8 JOD (preferred up to 97.5% of the time); a wider prior (it was 2) lets one early answer move a
# difference by ~2 JOD, and adaptive sampling then avoids those pairs while the scale is inflated.
METHOD_SD = 1.0
ITEM_SD = 0.5  # JOD: prior spread of a method's item scores around its study-level score
LEVEL_Z = 1.959963984540054  # 95% intervals
_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(12)  # ~1e-6 nats up to the prior's Var d = 2.5 JOD²
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass
class Posterior:
    """``mean[k, i]``, ``cov[k, i, j]`` of item k's method scores; ``method_mean[i]``,
    ``method_cov`` of the study-level scores q (JOD); ``comparisons``: how many were counted;
    ``item_mean_cov`` = Var(s̄) and ``item_mean_cross[k, i, l]`` = Cov(s_ki, s̄_l), s̄ = the mean
    over items of s (the gain's ``"methods"`` target)."""

    mean: np.ndarray
    cov: np.ndarray
    method_mean: np.ndarray
    method_cov: np.ndarray
    comparisons: float
    cross_cov: np.ndarray | None = None  # cross_cov[k, i, l] = Cov(s_ki, q_l)
    item_mean_cov: np.ndarray | None = None
    item_mean_cross: np.ndarray | None = None


def _mills(z: np.ndarray) -> np.ndarray:
    """φ(z) / Φ(z), stable for large negative z."""
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_ndtr(z))


def _likelihood(wins: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gradient, negative Hessian) of the log-likelihood in each item's scores."""
    m = s.shape[1]
    z = (s[:, :, None] - s[:, None, :]) / SIGMA
    lam = _mills(z)
    g = wins * lam / SIGMA
    grad = g.sum(2) - g.sum(1)
    h = wins * lam * (z + lam) / SIGMA**2
    h = h + h.transpose(0, 2, 1)
    return grad, np.eye(m) * h.sum(2)[:, :, None] - h


def _blocks(wins: np.ndarray, s: np.ndarray, q: np.ndarray):
    """Gradient of the log posterior in (s, q), the per-item precision blocks A_k, their inverses,
    and the Schur complement S of the q block (all m×m)."""
    n, m = s.shape
    eye = np.eye(m)
    grad_s, h = _likelihood(wins, s)
    grad_s = grad_s - (s - q) / ITEM_SD**2
    grad_q = (s - q).sum(0) / ITEM_SD**2 - q / METHOD_SD**2
    a = h + eye / ITEM_SD**2
    a_inv = np.linalg.inv(a)
    schur = eye * (1 / METHOD_SD**2 + n / ITEM_SD**2) - a_inv.sum(0) / ITEM_SD**4
    return grad_s, grad_q, a_inv, schur


def fit(wins: np.ndarray, tol: float = 1e-10, max_iter: int = 100) -> Posterior:
    """The Laplace posterior from ``wins[k, i, j]`` = times i was preferred over j in item k
    (ties: 0.5 each way).  Newton steps are capped at 2 JOD, so a one-sided record (all wins)
    converges as surely as a balanced one."""
    wins = np.asarray(wins, dtype=float)
    n, m = wins.shape[:2]
    s, q = np.zeros((n, m)), np.zeros(m)
    for _ in range(max_iter):
        grad_s, grad_q, a_inv, schur = _blocks(wins, s, q)
        step_q = np.linalg.solve(schur, grad_q + np.einsum("kij,kj->i", a_inv, grad_s) / ITEM_SD**2)
        step_s = np.einsum("kij,kj->ki", a_inv, grad_s + step_q / ITEM_SD**2)
        step_s, step_q = np.clip(step_s, -2.0, 2.0), np.clip(step_q, -2.0, 2.0)
        s, q = s + step_s, q + step_q
        if max(np.abs(step_s).max(initial=0.0), np.abs(step_q).max(initial=0.0)) < tol:
            break
    _, _, a_inv, schur = _blocks(wins, s, q)
    method_cov = np.linalg.inv(schur)
    # Cov(s_k) = A_k⁻¹ + A_k⁻¹ S⁻¹ A_k⁻¹ / ITEM_SD⁴ (the block inverse over q)
    cross_cov = a_inv @ method_cov / ITEM_SD**2  # Cov(s_k, q) = A_k⁻¹ S⁻¹ / ITEM_SD²
    cov = a_inv + cross_cov @ a_inv / ITEM_SD**2
    # Cov(s_k, s_l) = δ_kl A_k⁻¹ + A_k⁻¹ S⁻¹ A_l⁻¹ / ITEM_SD⁴: summed over l, with B = Σ_l A_l⁻¹
    b = a_inv.sum(0)
    mean_cross = (a_inv + cross_cov @ b / ITEM_SD**2) / n
    mean_cov = (b + b @ method_cov @ b / ITEM_SD**4) / n**2
    return Posterior(mean=s, cov=cov, method_mean=q, method_cov=method_cov, comparisons=float(wins.sum()),
                     cross_cov=cross_cov, item_mean_cov=mean_cov, item_mean_cross=mean_cross)


def pair_moments(post: Posterior, i: np.ndarray, j: np.ndarray,
                 target: str = "items") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """For every item (rows) and listed pair (columns) the mean and variance of ``d = s_i − s_j``
    and, for ``target = "methods"``, the part of that variance the methods' mean scores s̄
    determine (Var E[d | s̄]); None for ``"items"`` (all of it)."""
    mu = post.mean[:, i] - post.mean[:, j]
    var = np.maximum(post.cov[:, i, i] + post.cov[:, j, j] - 2 * post.cov[:, i, j], 1e-12)
    if target == "items":
        return mu, var, None
    c = post.item_mean_cross[:, i, :] - post.item_mean_cross[:, j, :]  # Cov(d, s̄): items x pairs x m
    explained = np.einsum("kpl,lm,kpm->kp", c, np.linalg.inv(post.item_mean_cov), c)
    return mu, var, np.clip(explained, 1e-12, var)


def _entropy(p: np.ndarray) -> np.ndarray:
    return entr(p) + entr(1.0 - p)


def _fisher(mu: np.ndarray, noise2: np.ndarray) -> np.ndarray:
    """Expected Fisher information about d of one comparison, Φ(d / √noise2), at d = mu:
    φ(z)² / (Φ(z) Φ(−z) noise2), z = mu / √noise2."""
    z = mu / np.sqrt(noise2)
    return np.exp(-z * z - 2 * _LOG_SQRT_2PI) / np.clip(ndtr(z) * ndtr(-z), 1e-300, None) / noise2


def expected_gain(mu: np.ndarray, var: np.ndarray, explained: np.ndarray | None = None,
                  pending: np.ndarray | float = 0.0) -> np.ndarray:
    """Expected information (nats) of one more comparison of a pair whose difference d has
    posterior ``N(mu, var)``: I(y; θ) = H(E[p]) − E_θ[H(p(y | θ))].  θ = d itself (the item's
    scores) by default; with ``explained`` = Var E[d | θ] for another target θ (the methods' mean
    scores), the rest of ``var`` is noise to θ, added to the comparison's own.  ``pending``: comparisons of the pair
    already handed out but not answered; each is taken to shrink the explained variance by its
    expected Fisher information first, so a pair in flight to others is worth less (not nothing)."""
    explained = var if explained is None else explained
    residual = var - explained
    fisher = _fisher(mu, SIGMA**2 + residual)
    explained = explained / (1.0 + np.asarray(pending) * explained * fisher)
    noise = np.sqrt(SIGMA**2 + residual)
    predictive = ndtr(mu / np.sqrt(noise**2 + explained))
    d = mu[..., None] + np.sqrt(2 * explained)[..., None] * _NODES
    conditional = (_entropy(ndtr(d / noise[..., None])) * _WEIGHTS).sum(-1) / np.sqrt(np.pi)
    return np.maximum(_entropy(predictive) - conditional, 0.0)


def _misordered(mean: np.ndarray, sd2: np.ndarray, shift2: np.ndarray) -> np.ndarray:
    """P(the sign of a difference Δ ~ N(mean, sd2) differs from that of its posterior mean once
    data have moved that mean by N(0, shift2)): an orthant probability of the pair (new mean, Δ),
    correlation ρ = √(shift2 / sd2), in closed form by Owen's T: 2 T(mean / √sd2, √(1 − ρ²) / ρ)."""
    shift2 = np.clip(shift2, 1e-300, sd2)
    return 2 * owens_t(mean / np.sqrt(sd2), np.sqrt((sd2 - shift2) / shift2))


def ranking_gain(post: Posterior, i: np.ndarray, j: np.ndarray, pending: np.ndarray | float = 0.0) -> np.ndarray:
    """The expected number of method pairs (of all i < j) that one more comparison of each listed
    pair in each item puts in the right order: the drop in the Bayes risk of the Kendall
    distance between the ranking of the methods' mean scores s̄ and the truth.  A comparison with
    expected Fisher information F about d moves E[s̄] by N(0, c cᵀ F / (1 + F Var d)), c =
    Cov(s̄, d).  This risk is not concave in the data (the marginal value of a comparison can
    grow), so a pair in flight to n others gets a plain 1 / (1 + n) share: it spreads them out."""
    mu, var, _ = pair_moments(post, i, j)
    fisher = _fisher(mu, SIGMA**2 + var)
    c = post.item_mean_cross[:, i, :] - post.item_mean_cross[:, j, :]
    c2 = (c[:, :, i] - c[:, :, j]) ** 2  # items x listed pairs x method pairs: Cov(s̄_a − s̄_b, d)²
    centre = post.mean.mean(0)
    diff = centre[i] - centre[j]
    m = post.item_mean_cov
    sd2 = m[i, i] + m[j, j] - 2 * m[i, j]
    now = ndtr(-np.abs(diff) / np.sqrt(sd2))
    after = _misordered(diff, sd2, c2 * (fisher / (1 + fisher * var))[..., None])
    return (now - after).sum(-1) / (1.0 + np.asarray(pending))


@dataclass
class Ranking:
    """Study-level method scores (JOD, mean 0) with their covariance."""

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
        for hi, lo in pairwise(order):
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
    """The study-level ranking: the methods' scores q, centred (mean 0)."""
    m = len(methods)
    centre = np.eye(m) - 1.0 / m
    return Ranking(list(methods), centre @ post.method_mean, centre @ post.method_cov @ centre)
