"""Derivatives by Richardson extrapolation, step for step as R's numDeriv computes them
(``numDeriv::genD``/``hessian`` and ``jacobian``, method "Richardson", default arguments).

Why a port and not another library: lmerTest's Satterthwaite df are made of numDeriv's Hessian
of the REML deviance and numDeriv's Jacobian of Cov(beta); computed with the same steps and the
same extrapolation, the df agree with lmerTest's to rounding, where central differences at a
fixed step left them 4.6e-4 apart (``tests/benchmarks/lme4_optimum.py``).  numdifftools'
Richardson uses other steps and another extrapolation table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))  # numDeriv: |x| below this gets the absolute step eps
EPS = 1e-4
ROUNDS = 4  # r: step halvings, extrapolated
HESSIAN_STEP = 0.1  # d for hessian (genD's default)
JACOBIAN_STEP = 1e-4  # d for jacobian/grad


def _initial_steps(x: np.ndarray, d: float) -> np.ndarray:
    return np.abs(d * x) + EPS * (np.abs(x) < ZERO_TOL)


def _extrapolate(approximations: list) -> np.ndarray:
    """Richardson's table over step halvings (numDeriv's in-place loop: v = 2, so 4^m)."""
    a = list(approximations)
    for m in range(1, len(a)):
        for k in range(len(a) - m):
            a[k] = (a[k + 1] * 4**m - a[k]) / (4**m - 1)
    return a[0]


def hessian(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """numDeriv::hessian(f, x): the diagonal from central second differences, each off-diagonal
    from a step along e_i + e_j less the diagonals' share, all extrapolated over 4 halvings."""
    x = np.asarray(x, float)
    n = len(x)
    h0 = _initial_steps(x, HESSIAN_STEP)
    f0 = f(x)
    H = np.zeros((n, n))
    for i in range(n):
        approx, h = [], h0.copy()
        for _ in range(ROUNDS):
            e = np.zeros(n)
            e[i] = h[i]
            approx.append((f(x + e) - 2 * f0 + f(x - e)) / h[i] ** 2)
            h = h / 2
        H[i, i] = _extrapolate(approx)
    for i in range(n):
        for j in range(i):
            approx, h = [], h0.copy()
            for _ in range(ROUNDS):
                e = np.zeros(n)
                e[i], e[j] = h[i], h[j]
                approx.append((f(x + e) - 2 * f0 + f(x - e) - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2)
                              / (2 * h[i] * h[j]))
                h = h / 2
            H[i, j] = H[j, i] = _extrapolate(approx)
    return H


def jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """numDeriv::jacobian(f, x) for an array-valued f: per coordinate, the central differences
    over 4 halvings of the step, extrapolated; one array d f / d x_i per coordinate."""
    x = np.asarray(x, float)
    n = len(x)
    h0 = _initial_steps(x, JACOBIAN_STEP)
    out = []
    for i in range(n):
        approx, h = [], h0.copy()
        for _ in range(ROUNDS):
            e = np.zeros(n)
            e[i] = h[i]
            approx.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h[i]))
            h = h / 2
        out.append(_extrapolate(approx))
    return out
