"""Ties ("No preference") modelled rather than split: the Davidson (1970) model beside the
report's "a tie counts half" Bradley–Terry fit, and how far apart the two scales are.

Davidson: P(i > j) = pi_i / D, P(tie) = nu sqrt(pi_i pi_j) / D, D = pi_i + pi_j + nu sqrt(pi_i pi_j),
with log pi the scores (mean 0) and nu >= 0 the tie propensity.  With no ties nu = 0 and it is
Bradley–Terry.  Fitted by maximum likelihood (scipy L-BFGS) on the identified methods only (a
separated method has no finite score in either model).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from stylestudy.analysis.pairwise import scale as pairwise_scale
from stylestudy.analysis.pairwise import scaling, separation


def _counts(comps: pd.DataFrame, methods: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(decisive wins w[i, j] of i over j, ties t[i, j] symmetric)."""
    index = {m: i for i, m in enumerate(methods)}
    m = len(methods)
    w, t = np.zeros((m, m)), np.zeros((m, m))
    a = comps["a"].map(index).to_numpy(int)
    b = comps["b"].map(index).to_numpy(int)
    o = comps["outcome"].to_numpy(float)
    np.add.at(w, (a[o == 1], b[o == 1]), 1)
    np.add.at(w, (b[o == 0], a[o == 0]), 1)
    np.add.at(t, (a[o == 0.5], b[o == 0.5]), 1)
    return w, t + t.T


def davidson(w: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(scores mean 0, nu, maximised log-likelihood) for decisive wins ``w`` and ties ``t``."""
    m = len(w)
    iu = np.triu_indices(m, 1)

    def negloglik(x: np.ndarray) -> float:
        theta = np.concatenate([[0.0], x[:-1]])
        log_nu = x[-1]
        ti, tj = theta[iu[0]], theta[iu[1]]
        log_d = np.logaddexp(np.logaddexp(ti, tj), log_nu + (ti + tj) / 2)
        ll = (w[iu] * (ti - log_d) + w.T[iu] * (tj - log_d) + t[iu] * (log_nu + (ti + tj) / 2 - log_d)).sum()
        return -float(ll)

    x0 = np.concatenate([np.zeros(m - 1), [np.log(max(t.sum() / 2, 0.5) / max(w.sum(), 1.0))]])
    res = optimize.minimize(negloglik, x0, method="L-BFGS-B",
                            bounds=[(-30, 30)] * (m - 1) + [(-30, 5)], options={"maxiter": 2000, "ftol": 1e-13})
    theta = np.concatenate([[0.0], res.x[:-1]])
    return theta - theta.mean(), float(np.exp(res.x[-1])), -float(res.fun)


def compare(comps: pd.DataFrame, methods: list[str]) -> dict:
    """Davidson beside ties-half BT on the identified methods: both scales, the largest absolute
    difference (log-strength units), Kendall's tau between the orders, nu and the tie share."""
    Wp, _ = pairwise_scale.participant_matrices(comps, methods)
    graph = separation.check(Wp.sum(0), methods)
    ties = int((comps["outcome"] == 0.5).sum())
    out: dict = {"ties": ties, "comparisons": len(comps), "methods": graph.identified}
    ident = [methods.index(m) for m in graph.identified]
    if len(ident) < 2:
        return {**out, "note": "fewer than two identified methods: nothing to compare"}
    half = scaling.fit(Wp.sum(0)[np.ix_(ident, ident)], "bt")
    w, t = _counts(comps, methods)
    dav, nu, _ = davidson(w[np.ix_(ident, ident)], t[np.ix_(ident, ident)])
    if len(ident) > 2:
        tau = sps.kendalltau(half, dav).statistic
    else:
        tau = 1.0 if np.sign(half[0] - half[1]) == np.sign(dav[0] - dav[1]) else -1.0
    return {**out, "bt_ties_half": dict(zip(graph.identified, half.tolist())),
            "davidson": dict(zip(graph.identified, dav.tolist())), "davidson_nu": nu,
            "max_abs_difference": float(np.abs(half - dav).max()), "kendall_tau": float(tau)}
