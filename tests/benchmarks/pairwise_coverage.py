"""Coverage of the pairwise scales' 95% intervals (docs/measurements/pairwise-coverage.md).

    python -m tests.benchmarks.pairwise_coverage [--sims 500] [--participants 5,10,30] [--reps 1000]

Planted truth: 4 methods with scores -0.9, -0.2, 0.3, 0.8 (centred) in each model's own units;
every participant compares every method pair 5 times (30 comparisons), outcomes drawn from the
model itself (Bradley–Terry for the BT intervals, Thurstone Case V in JOD for the JOD ones;
``--rater-sd``: each participant's own scores scattered around the planted ones).
For each simulated study the report's own code (``pairwise_scale.scale_from_matrices``) gives
the intervals; coverage = share of (study, method) intervals holding the planted score.  Beside
it, the percentile interval of the same bootstrap resamples (the report's method before), and
the number of studies in which a method was separated (never won / never lost; its one-sided
bound is then the interval).  With ``--rater-sd`` the target is ``estimand``: the scale of the
population's pooled preferences, which is what a pooled BT/JOD fit estimates.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from stylestudy.analysis.pairwise import scale as pairwise_scale
from stylestudy.analysis.pairwise import scaling

TRUE = np.array([-0.9, -0.2, 0.3, 0.8])
PER_PAIR = 5
METHODS = ["m1", "m2", "m3", "m4"]


def simulate_matrices(n: int, model: str, rng: np.random.Generator, rater_sd: float = 0.0) -> np.ndarray:
    """Per-participant win matrices (n, m, m) drawn from the model with the planted scores
    (each participant's own scores off by N(0, rater_sd^2) per method)."""
    m = len(TRUE)
    own = TRUE[None, :] + rng.normal(0, rater_sd, (n, m)) if rater_sd else np.broadcast_to(TRUE, (n, m))
    p = scaling.probability(own[:, :, None] - own[:, None, :], model)
    Wp = np.zeros((n, m, m))
    for i in range(m):
        for j in range(i + 1, m):
            wins = rng.binomial(PER_PAIR, p[:, i, j])
            Wp[:, i, j], Wp[:, j, i] = wins, PER_PAIR - wins
    return Wp


def estimand(model: str, rater_sd: float = 0.0) -> np.ndarray:
    """What a pooled fit estimates: the planted scores (centred), or with participants who
    differ, the scale of the population's pooled preference probabilities (attenuated towards
    0 relative to the planted means; computed from 200,000 simulated participants)."""
    if not rater_sd:
        return TRUE - TRUE.mean()
    own = TRUE[None, :] + np.random.default_rng(0).normal(0, rater_sd, (200_000, len(TRUE)))
    p = scaling.probability(own[:, :, None] - own[:, None, :], model).mean(axis=0)
    return scaling.fit(p * (1 - np.eye(len(TRUE))), model)


def coverage(model: str, n: int, sims: int, reps: int = 1000, seed: int = 0, rater_sd: float = 0.0) -> dict:
    """Coverage of the report's interval and of the percentile interval over ``sims`` studies."""
    rng = np.random.default_rng([seed, n, len(model)])
    truth = estimand(model, rater_sd)
    hits = pct_hits = intervals = pct_intervals = separated = 0
    widths = []
    for s in range(sims):
        Wp = simulate_matrices(n, model, rng, rater_sd)
        table, graph, boot = pairwise_scale.scale_from_matrices(Wp, METHODS, model, reps, seed=s)
        if not graph.strongly_connected:  # bounds: count them; the scale's centre differs, so compare bounds
            separated += 1
            ident = [METHODS.index(x) for x in graph.identified]
            centre = truth[ident].mean() if ident else 0.0
            planted = truth - centre
        else:
            planted = truth
        low, high = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
        ok = ~np.isnan(low)
        hits += int(((low <= planted) & (planted <= high))[ok].sum())
        intervals += int(ok.sum())
        widths.append(float(np.mean((high - low)[ok & np.isfinite(high - low)])))
        if graph.strongly_connected:
            lo, hi = np.quantile(boot, [0.025, 0.975], axis=0)
            pct_hits += int(((lo <= truth) & (truth <= hi)).sum())
            pct_intervals += len(truth)
    return {"model": model, "rater_sd": rater_sd, "participants": n, "studies": sims, "coverage": hits / intervals,
            "percentile_coverage": pct_hits / pct_intervals if pct_intervals else float("nan"),
            "mean_width": float(np.mean(widths)), "separated_studies": separated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=500)
    parser.add_argument("--participants", default="5,10,30")
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--rater-sd", type=float, default=0.0,
                        help="participants' own scores differ from the planted ones by N(0, sd^2) per method")
    args = parser.parse_args()
    rows = []
    for model in ("bt", "jod"):
        for n in (int(x) for x in args.participants.split(",")):
            start = time.perf_counter()
            result = coverage(model, n, args.sims, args.reps, rater_sd=args.rater_sd)
            rows.append({**result, "seconds": time.perf_counter() - start})
            print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f")
          if _has_tabulate() else pd.DataFrame(rows).round(3).to_string(index=False))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
