"""Per metric, agreement with the participants' per-condition scores with bootstrap CIs, the
share of pairwise choices it predicts, and the pairwise comparison of metrics (Holm)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from stylestudy.analysis.agreement import subjective
from stylestudy.analysis.agreement.measures import PointAgreement, mapped_pearson, point_agreement, spearman
from stylestudy.analysis.agreement.subjective import Subjective
from stylestudy.engine.study.errors import StyleStudyError

LEVEL = 0.95


@dataclass
class MetricAgreement:
    """One row of ``metric_agreement.csv``."""

    metric: str
    n: int
    pearson: float
    pearson_ci_low: float
    pearson_ci_high: float
    spearman: float
    spearman_ci_low: float
    spearman_ci_high: float
    kendall: float
    kendall_ci_low: float
    kendall_ci_high: float
    rmse: float
    rmse_star: float
    outlier_ratio: float
    choice_share: float  # pairwise: share of choices the metric predicts (NaN otherwise)
    choice_ci_low: float
    choice_ci_high: float
    direction: str  # which end of the metric the participants prefer ("higher" / "lower")


@dataclass
class MetricComparison:
    """|Spearman| of metric a minus that of metric b, bootstrap CI and p, Holm over pairs."""

    a: str
    b: str
    difference: float
    ci_low: float
    ci_high: float
    p: float
    p_holm: float


@dataclass
class AgreementResult:
    subjective: Subjective
    values: pd.DataFrame  # per condition: method, item, score, ci95, then each metric
    rows: list[MetricAgreement]
    comparisons: list[MetricComparison]
    points: dict[str, PointAgreement]
    reps: int

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.rows])


def _interval(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) < 10:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(low), float(high)


def _replicates(x: np.ndarray, s: Subjective) -> dict[str, np.ndarray]:
    """Spearman, Kendall and mapped Pearson of each bootstrap replicate."""
    reps = len(s.boot)
    out = {name: np.full(reps, np.nan) for name in ("spearman", "kendall", "pearson")}
    for b in range(reps):
        keep = np.isfinite(s.boot[b]) & (s.condition_weight[b] > 0)
        take = np.repeat(np.flatnonzero(keep), s.condition_weight[b][keep].astype(int))
        xb, yb = x[take], s.boot[b][take]
        out["spearman"][b] = spearman(xb, yb)
        out["kendall"][b] = float(sps.kendalltau(xb, yb)[0]) if len(xb) > 2 and np.ptp(xb) and np.ptp(yb) else np.nan
        out["pearson"][b] = mapped_pearson(xb, yb)
    return out


def _choices(comps: pd.DataFrame, s: Subjective, items: pd.Series, x: pd.Series, sign: float) -> np.ndarray:
    """(point, replicates...) share of choices where the preferred condition is the metric's better one."""
    diff = sign * (x[comps["a"]].to_numpy() - x[comps["b"]].to_numpy())
    o = comps["outcome"].to_numpy(float)
    agree = np.where(diff > 0, o, np.where(diff < 0, 1 - o, 0.5))
    p = comps["participant_id"].map({q: k for k, q in enumerate(s.participants)}).to_numpy(int)
    names = sorted(items.loc[s.conditions].unique())
    i = comps["a"].map(items).map({n: k for k, n in enumerate(names)}).to_numpy(int)
    A, N = np.zeros((len(s.participants), len(names))), np.zeros((len(s.participants), len(names)))
    np.add.at(A, (p, i), agree)
    np.add.at(N, (p, i), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.einsum("bp,pi,bi->b", s.participant_draws, A, s.item_draws) / np.einsum(
            "bp,pi,bi->b", s.participant_draws, N, s.item_draws)
    return np.concatenate([[A.sum() / N.sum()], boot])


def analyze_agreement(usable: pd.DataFrame, protocol: str, metrics: pd.DataFrame, names: list[str],
                      reps: int = 1000, seed: int = 0) -> AgreementResult:
    """``usable`` ratings of the analysis; ``metrics`` indexed by condition_id (``read_metrics``)."""
    usable = usable.copy()
    usable["rating"] = usable["rating"].astype(float)
    lacking = sorted(set(usable["condition_id"]) - set(metrics.index))
    if lacking:
        raise StyleStudyError(f"the metrics file has no row for {len(lacking)} rated condition(s) (e.g. {lacking[0]}); "
                              "it belongs to another run: run stylestudy metrics on this run's folder")
    items = metrics["item"]
    rng = np.random.default_rng(seed)
    build = subjective.from_pairwise if protocol == "pairwise" else subjective.from_ratings
    s = build(usable, items, reps, rng)
    comps = subjective.comparisons(usable) if protocol == "pairwise" else None
    values = pd.DataFrame({"condition_id": s.conditions, "method": metrics.loc[s.conditions, "method"].to_numpy(),
                           "item": items.loc[s.conditions].to_numpy(), "score": s.score, "ci95": s.ci95})
    rows, points, spearmans = [], {}, {}
    for name in names:
        x = metrics.loc[s.conditions, name].to_numpy(float)
        if not np.isfinite(x).all():
            continue  # a metric the run could not compute (e.g. MS-SSIM of small images)
        values[name] = x
        point = point_agreement(x, s.score, s.ci95)
        reps_ = _replicates(x, s)
        spearmans[name] = reps_["spearman"]
        sign = -1.0 if point.spearman < 0 else 1.0
        choice = (_choices(comps, s, items, metrics[name], sign) if comps is not None
                  else np.full(reps + 1, np.nan))
        points[name] = point
        rows.append(MetricAgreement(name, point.n, point.pearson, *_interval(reps_["pearson"]), point.spearman,
                                    *_interval(reps_["spearman"]), point.kendall, *_interval(reps_["kendall"]),
                                    point.rmse, point.rmse_star, point.outlier_ratio, float(choice[0]),
                                    *_interval(choice[1:]), "higher" if sign > 0 else "lower"))
    comparisons = []
    for a, b in combinations([r.metric for r in rows], 2):
        d = np.abs(spearmans[a]) - np.abs(spearmans[b])
        d = d[np.isfinite(d)]
        point = abs(points[a].spearman) - abs(points[b].spearman)
        p = min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())) if len(d) else float("nan")
        comparisons.append(MetricComparison(a, b, point, *_interval(d), p, float("nan")))
    ps = [c.p for c in comparisons]
    if ps and all(np.isfinite(ps)):
        for c, adjusted in zip(comparisons, multipletests(ps, method="holm")[1]):
            c.p_holm = float(adjusted)
    return AgreementResult(s, values, rows, comparisons, points, reps)
