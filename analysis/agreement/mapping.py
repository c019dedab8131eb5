"""ITU-T P.1401's monotonic third-order mapping of a metric onto the subjective scale.

A cubic least-squares fit; where it is not monotonic over the metric's range, the cubic that
minimises the squared error subject to a derivative of one sign (the linear fit's) at points
spanning the range (SLSQP).  x is standardised first so the coefficients are well scaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

PARAMETERS = 4  # a + b x + c x^2 + d x^3: P.1401's d in the RMSE's N - d
GRID = 128


@dataclass
class Mapping:
    coef: np.ndarray  # on standardised x, increasing powers
    mean: float
    scale: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.polynomial.polynomial.polyval((np.asarray(x, float) - self.mean) / self.scale, self.coef)


def fit_mapping(x: np.ndarray, y: np.ndarray) -> Mapping:
    x, y = np.asarray(x, float), np.asarray(y, float)
    mean, scale = float(x.mean()), float(x.std())
    if not scale > 0 or len(x) < 2:
        return Mapping(np.array([y.mean(), 0.0, 0.0, 0.0]), mean, 1.0)
    z = (x - mean) / scale
    degree = min(3, len(np.unique(z)) - 1)
    V = np.vander(z, PARAMETERS, increasing=True)[:, : degree + 1]
    coef = np.zeros(PARAMETERS)
    coef[: degree + 1] = np.linalg.lstsq(V, y, rcond=None)[0]
    grid = np.linspace(z.min(), z.max(), GRID)
    D = np.stack([np.zeros(GRID), np.ones(GRID), 2 * grid, 3 * grid**2], 1)  # d/dz of each power
    slope = D @ coef
    if (slope >= -1e-12).all() or (slope <= 1e-12).all():
        return Mapping(coef, mean, scale)
    sign = 1.0 if np.polyfit(z, y, 1)[0] >= 0 else -1.0
    V4 = np.vander(z, PARAMETERS, increasing=True)
    start = np.zeros(PARAMETERS)
    start[:2] = np.polyfit(z, y, 1)[::-1]
    result = minimize(lambda c: ((V4 @ c - y) ** 2).sum(), start, jac=lambda c: 2 * V4.T @ (V4 @ c - y),
                      constraints=[{"type": "ineq", "fun": lambda c: sign * (D @ c), "jac": lambda c: sign * D}],
                      method="SLSQP")
    return Mapping(result.x if result.success else start, mean, scale)
