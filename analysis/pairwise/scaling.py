"""Maximum-likelihood scaling of pairwise comparisons, batched over bootstrap resamples.

Two links on one Newton solver: Bradley–Terry (logistic, log-strengths) and Thurstone Case V
in JOD units as in pwcmp (probit with sigma = 1/Phi^-1(0.75) = 1.4826, so a difference of 1 JOD means 75% of
answers prefer the better method).  Both are proper maximum likelihood for any design, complete
or not (the old Thurstone "least squares" row average is least squares only when every pair
was compared).

Why our own solver rather than choix: a participant bootstrap needs thousands of fits of the
same small problem; one Newton iteration over a (resamples, m, m) stack fits them all at once
(choix fits one at a time; its point estimates agree with ours, see the tests).

``W[..., i, j]`` is the number of times i was preferred over j (a tie adds 1/2 to each side).
Scores are returned with mean 0.  ``prior_sd`` adds a Gaussian distance prior, each compared
pair's difference ~ N(0, prior_sd^2) in the model's units: a weak prior keeps scores finite when
a method never won or never lost, and such a value is labelled prior-regularised wherever it is
shown (``analysis.pairwise.separation``).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from stylestudy.engine.study.units import JOD_SIGMA

MODELS = ("bt", "jod")
_MEAN_PENALTY = 1.0  # pins the mean at 0 without changing any difference
_RIDGE = 1e-9  # keeps a disconnected design's Hessian invertible (the scores are then unidentified)


def _link(d: np.ndarray, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log F(d), d/dd log F, d²/dd² log F for the model's preference curve F."""
    if model == "bt":
        logf = -np.logaddexp(0.0, -d)
        p = special.expit(d)
        return logf, 1.0 - p, -p * (1.0 - p)
    z = d / JOD_SIGMA
    logf = special.log_ndtr(z)
    r = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - logf)  # phi(z) / Phi(z), stable for z << 0
    return logf, r / JOD_SIGMA, -r * (z + r) / JOD_SIGMA**2


def _objective(theta, W, compared, model, prior_sd):
    d = theta[..., :, None] - theta[..., None, :]
    logf, _, _ = _link(d, model)
    value = (W * logf).sum(axis=(-1, -2))
    if prior_sd:
        value -= (compared * d * d).sum(axis=(-1, -2)) / (4 * prior_sd**2)  # each pair counted twice
    return value - 0.5 * _MEAN_PENALTY * theta.sum(-1) ** 2


def fit(W: np.ndarray, model: str = "bt", prior_sd: float | None = None, iterations: int = 100,
        tol: float = 1e-10) -> np.ndarray:
    """Scores (mean 0) maximising the likelihood (times the prior) of win matrices ``W``
    (shape (m, m) or (B, m, m)); see the module docstring."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    W = np.asarray(W, float)
    single = W.ndim == 2
    W = W[None] if single else W
    B, m, _ = W.shape
    W = W * (1 - np.eye(m))
    compared = ((W + np.swapaxes(W, -1, -2)) > 0).astype(float)
    theta = np.zeros((B, m))
    value = _objective(theta, W, compared, model, prior_sd)
    ones = np.ones((m, m))
    for _ in range(iterations):
        d = theta[:, :, None] - theta[:, None, :]
        _, g1, g2 = _link(d, model)
        G = W * g1
        grad = G.sum(-1) - G.sum(-2)
        h = W * g2
        h = h + np.swapaxes(h, -1, -2)  # <= 0, symmetric
        if prior_sd:
            grad -= (compared * d).sum(-1) / prior_sd**2
            h = h - compared / prior_sd**2
        grad -= _MEAN_PENALTY * theta.sum(-1, keepdims=True)
        hess = np.eye(m) * h.sum(-1)[:, :, None] - h - _MEAN_PENALTY * ones - _RIDGE * np.eye(m)
        step = -np.linalg.solve(hess, grad[..., None])[..., 0]
        scale = np.ones(B)
        for _ in range(30):  # step halving where the full Newton step does not improve
            trial = theta + scale[:, None] * step
            new = _objective(trial, W, compared, model, prior_sd)
            worse = ~(new >= value - 1e-12)
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        theta, value = trial, new
        if np.abs(scale[:, None] * step).max() < tol:
            break
    theta = theta - theta.mean(-1, keepdims=True)
    return theta[0] if single else theta


def probability(diff: np.ndarray | float, model: str = "bt") -> np.ndarray:
    """P(preferred) for a score difference under the model."""
    diff = np.asarray(diff, float)
    return special.expit(diff) if model == "bt" else special.ndtr(diff / JOD_SIGMA)
