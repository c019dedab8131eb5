"""What a comparison graph lets a pairwise scale say, and bounds where it cannot say more.

Bradley–Terry and Thurstone maximum-likelihood scores exist (are finite) only when the "was
preferred at least once" graph is strongly connected (Zermelo 1929; Ford 1957): every method
beat, directly or through others, every other one.  A method that never won (or never lost)
has a maximum-likelihood score of -inf (+inf); any finite number printed for it is set by a
prior or a ridge, not by the data (choix's ridge gave -8.33 [-8.38, -8.29], moving 1.7 per
tenfold change of the ridge).  If the comparison graph is not even connected, the groups'
relative positions are not identified at all.

So: the largest strongly connected component (the *identified* methods) is scaled by maximum
likelihood alone; each other method gets a one-sided bound against it (the highest score at
which losing every comparison it had with them still has probability >= 2.5%; symmetrically
for never losing) and, clearly labelled, a prior-regularised value (MAP under the distance
prior, the others held at their estimates).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.sparse.csgraph import connected_components

from stylestudy.analysis.pairwise import scaling

BOUND_TAIL = 0.025  # one side of a 95% interval
PRIOR_SD = {"bt": 2.0, "jod": 2.0}  # distance prior for prior-regularised values, in the model's units


@dataclass
class GraphCheck:
    """The comparison graph's verdict (method names throughout)."""

    methods: list[str]
    connected: bool  # every method linked to every other by comparisons
    strongly_connected: bool  # maximum-likelihood scores exist
    identified: list[str]  # the largest strongly connected component
    never_won: list[str]
    never_lost: list[str]
    uncompared: list[str]  # methods without a single comparison
    components: list[list[str]] = field(default_factory=list)  # strongly connected components, best first

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def sentences(self) -> list[str]:
        out = []
        if self.uncompared:
            out.append(f"never compared: {', '.join(self.uncompared)} (no score)")
        if self.never_won:
            out.append(f"never preferred in any comparison: {', '.join(self.never_won)} (complete separation; "
                       "its maximum-likelihood score is -infinity, so only an upper bound is shown)")
        if self.never_lost:
            out.append(f"preferred in every comparison: {', '.join(self.never_lost)} (complete separation; its "
                       "maximum-likelihood score is +infinity, so only a lower bound is shown)")
        if not self.connected:
            out.append("the comparison graph is not connected: groups never compared with each other have no common "
                       "scale")
        elif not self.strongly_connected:
            groups = " > ".join("{" + ", ".join(c) + "}" for c in self.components)
            out.append(f"the preference graph is not strongly connected ({groups}): scores are by maximum likelihood "
                       f"only for {', '.join(self.identified)}")
        return out


def check(W: np.ndarray, methods: list[str]) -> GraphCheck:
    """Connectivity, strong connectivity and separation of win matrix ``W`` (ties half each side)."""
    W = np.asarray(W, float) * (1 - np.eye(len(methods)))
    n = W + W.T
    compared = n.sum(1) > 0
    n_weak, _ = connected_components(n > 0, directed=False)
    n_strong, labels = connected_components(W > 0, directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=n_strong)
    comps = [np.flatnonzero(labels == c) for c in range(n_strong)]
    # identified = the largest component (most comparisons on a tie); order: topological (a component
    # never lost to a later one), ties broken by win rate, best first
    rate = [W[c].sum() / max(n[c].sum(), 1e-12) for c in comps]
    weight = [n[np.ix_(c, c)].sum() for c in comps]
    main = max(range(n_strong), key=lambda c: (sizes[c], weight[c]))
    beats = {(x, y) for x in range(n_strong) for y in range(n_strong)
             if x != y and W[np.ix_(comps[x], comps[y])].sum() > 0}
    order: list[int] = []
    left = set(range(n_strong))
    while left:
        free = [c for c in left if not any((d, c) in beats for d in left)]
        pick = max(free, key=lambda c: rate[c])
        order.append(pick)
        left.remove(pick)
    names = np.asarray(methods)
    return GraphCheck(
        methods=list(methods), connected=bool(n_weak == 1), strongly_connected=bool(n_strong == 1),
        identified=[methods[i] for i in comps[main]],
        never_won=[methods[i] for i in range(len(methods)) if compared[i] and W[i].sum() == 0],
        never_lost=[methods[i] for i in range(len(methods)) if compared[i] and W[:, i].sum() == 0],
        uncompared=[methods[i] for i in range(len(methods)) if not compared[i]],
        components=[names[comps[c]].tolist() for c in order])


def _loglik_vs(theta_i: float, wins: np.ndarray, losses: np.ndarray, others: np.ndarray, model: str) -> float:
    p_win = np.clip(scaling.probability(theta_i - others, model), 1e-300, 1)
    p_loss = np.clip(scaling.probability(others - theta_i, model), 1e-300, 1)
    return float((wins * np.log(p_win) + losses * np.log(p_loss)).sum())


def outside_scores(W: np.ndarray, identified: np.ndarray, theta: np.ndarray, i: int, model: str) -> dict:
    """For method ``i`` outside the identified set (scores ``theta`` on ``identified``, the methods
    placed so far): its prior-regularised value and one-sided bound against them.  "never won"/"never
    lost" only for a method that never won/lost at all: one that lost 20 of 30 comparisons to other
    outside methods but beat every placed one is labelled by what it did."""
    wins, losses = W[i, identified], W[identified, i]
    n = wins + losses
    if n.sum() == 0:
        return {"value": float("nan"), "low": float("nan"), "high": float("nan"), "kind": "not identified"}
    sd = PRIOR_SD[model]
    spread = 10 * sd + np.abs(theta).max()

    def neg_post(t: float) -> float:
        return -_loglik_vs(t, wins, losses, theta, model) + float(((n > 0) * (t - theta) ** 2).sum()) / (2 * sd * sd)

    value = float(optimize.minimize_scalar(neg_post, bounds=(-spread, spread), method="bounded",
                                           options={"xatol": 1e-9}).x)
    target = np.log(BOUND_TAIL)
    if wins.sum() == 0:  # never beat an identified method: upper bound
        high = optimize.brentq(lambda t: _loglik_vs(t, wins, losses, theta, model) - target, -spread * 10, spread * 10)
        kind = "never won" if W[i].sum() == 0 else "lost every comparison with the methods placed above it"
        return {"value": value, "low": -np.inf, "high": float(high), "kind": f"{kind}: upper bound"}
    low = optimize.brentq(lambda t: _loglik_vs(t, wins, losses, theta, model) - target, -spread * 10, spread * 10)
    kind = "never lost" if W[:, i].sum() == 0 else "won every comparison with the methods placed below it"
    return {"value": value, "low": float(low), "high": np.inf, "kind": f"{kind}: lower bound"}
