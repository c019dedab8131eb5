"""How well one metric agrees with per-condition subjective scores (ITU-T P.1401, clause 7):
Pearson after the monotonic mapping, Spearman, Kendall, RMSE and the ε-insensitive RMSE*
(errors within a score's own 95% interval count as 0), the outlier ratio (errors beyond it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from stylestudy.analysis.agreement.mapping import PARAMETERS, Mapping, fit_mapping


@dataclass
class PointAgreement:
    n: int
    pearson: float
    spearman: float
    kendall: float
    rmse: float
    rmse_star: float
    outlier_ratio: float
    mapping: Mapping


def _correlation(f, a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(f(a, b)[0])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return _correlation(sps.spearmanr, x, y)


def mapped_pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson of the mapped metric with the scores (the metric's linear correlation after P.1401's mapping)."""
    return _correlation(sps.pearsonr, fit_mapping(x, y)(x), y) if len(x) >= 3 else float("nan")


def point_agreement(x: np.ndarray, y: np.ndarray, ci95: np.ndarray) -> PointAgreement:
    """``x`` the metric, ``y`` the scores, ``ci95`` each score's 95% half-width, per condition."""
    mapping = fit_mapping(x, y)
    error = np.abs(y - mapping(x))
    dof = len(x) - PARAMETERS
    beyond = np.maximum(0.0, error - ci95)
    return PointAgreement(
        n=len(x), pearson=_correlation(sps.pearsonr, mapping(x), y), spearman=spearman(x, y),
        kendall=_correlation(sps.kendalltau, x, y),
        rmse=float(np.sqrt((error**2).sum() / dof)) if dof > 0 else float("nan"),
        rmse_star=float(np.sqrt((beyond**2).sum() / dof)) if dof > 0 and np.isfinite(ci95).all() else float("nan"),
        outlier_ratio=float((error > ci95).mean()) if np.isfinite(ci95).all() else float("nan"), mapping=mapping)
