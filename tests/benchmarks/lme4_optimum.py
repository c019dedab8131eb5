"""Does the mixed model reach lme4's optimum?  Generated rating sets across designs, each fitted
here (``analysis.models.reml``) and by R's lme4 + lmerTest (one Rscript run for all of them).

    nice -n 10 python -m tests.benchmarks.lme4_optimum [--sets 100] [--seed 0]

Model: the four-intercept model ``rating ~ method + (1 | participant) + (1 | participant:method)
+ (1 | item) + (1 | item:method)``, REML, the model the review found stopping short.  Designs
(cycled): balanced, 20% of the ratings missing at random, unequal counts (1-3 ratings per
participant, item and method); 2-40 participants, 4-12 items, 3 methods, with and without
participant x method and item x method variance, rounded 1-5 ratings, every method equal.
Printed: how often our REML criterion is worse than lme4's by more than 1e-4 (the target: never),
the largest gap each way, and, where both reach the same optimum (criteria within 1e-6), the
largest relative difference of every contrast's estimate, SE, Satterthwaite df, p and 95% CI
limits against lmerTest's ``contest`` (Satterthwaite, ``confint = TRUE``).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

METHODS = ("a", "b", "c")
PARTICIPANTS = (2, 3, 5, 8, 12, 20, 40)
ITEMS = (4, 6, 12)
DESIGNS = ("balanced", "20% missing", "unequal counts")

R_BATCH = r"""
suppressMessages(library(lmerTest))
args <- commandArgs(trailingOnly = TRUE)
all <- read.csv(args[1])
control <- if (args[2] == "tight") lmerControl(optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14,
                                                          ftol_rel = 1e-15, maxeval = 1e5)) else lmerControl()
out <- NULL
row <- function(ds, kind, name, estimate, se = NA, df = NA, p = NA, lower = NA, upper = NA)
  data.frame(dataset = ds, kind = kind, name = name, estimate = estimate, se = se, df = df, p = p,
             lower = lower, upper = upper)
for (ds in unique(all$dataset)) {
  d <- all[all$dataset == ds, ]
  d$method <- factor(d$method, levels = sort(unique(d$method)))
  f <- rating ~ method + (1 | participant) + (1 | participant:method) + (1 | item) + (1 | item:method)
  m <- suppressMessages(suppressWarnings(lmer(f, data = d, REML = TRUE, control = control)))
  th <- getME(m, "theta")
  out <- rbind(out, row(ds, "theta", names(th), th), row(ds, "deviance", "REML", REMLcrit(m)))
  k <- nlevels(d$method)
  for (i in 1:(k - 1)) for (j in (i + 1):k) {
    L <- rep(0, k); if (i > 1) L[i] <- 1; if (j > 1) L[j] <- L[j] - 1
    ct <- contest(m, L, joint = FALSE, confint = TRUE, level = 0.95)
    out <- rbind(out, row(ds, "contrast", paste(levels(d$method)[i], levels(d$method)[j], sep = "-"),
                          ct$Estimate, ct$"Std. Error", ct$df, ct$"Pr(>|t|)", ct$lower, ct$upper))
  }
}
write.csv(out, stdout(), row.names = FALSE)
"""


def generated(index: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Data set ``index``: its design cycles through DESIGNS, PARTICIPANTS and ITEMS (so that
    every combination comes round), the variances and noise from ``seed + index``."""
    rng = np.random.default_rng(seed * 100_003 + index)
    design = DESIGNS[index % len(DESIGNS)]
    participants = PARTICIPANTS[(index // len(DESIGNS)) % len(PARTICIPANTS)]
    items = ITEMS[(index // (len(DESIGNS) * len(PARTICIPANTS))) % len(ITEMS)]
    rater_method_sd = (0.0, 0.3, 0.5)[index % 3 - (index // 3) % 2]  # not in step with the design
    item_method_sd = (0.0, 0.3)[(index // 5) % 2]
    level = rng.uniform(2, 4, items)
    leniency = rng.normal(0, 0.4, participants)
    rm = rng.normal(0, rater_method_sd, (participants, len(METHODS)))
    im = rng.normal(0, item_method_sd, (items, len(METHODS)))
    rows = []
    for p in range(participants):
        for j, method in enumerate(METHODS):
            for i in range(items):
                for _ in range(int(rng.integers(1, 4)) if design == "unequal counts" else 1):
                    v = level[i] + leniency[p] + rm[p, j] + im[i, j] + rng.normal(0, 0.8)
                    rows.append({"participant": f"p{p:02d}", "method": method, "item": f"i{i}",
                                 "rating": float(np.clip(np.rint(v), 1, 5))})
    data = pd.DataFrame(rows)
    if design == "20% missing":
        data = data.drop(index=rng.choice(len(data), size=len(data) // 5, replace=False)).reset_index(drop=True)
    return data, {"design": design, "participants": participants, "items": items,
                  "rater x method sd": rater_method_sd, "item x method sd": item_method_sd}


def lme4_fits(rscript: str, sets: list[pd.DataFrame], folder: Path, control: str = "default") -> pd.DataFrame:
    """Every set fitted by lme4 + lmerTest in one Rscript run (R's start-up is most of a fit's time);
    ``control`` "tight": lme4's optimiser (nloptwrap's BOBYQA) run to tolerances of 1e-14/1e-15
    instead of its defaults, which stop up to ~6e-4 short in theta along flat directions."""
    (folder / "batch.R").write_text(R_BATCH)
    pd.concat([d.assign(dataset=k) for k, d in enumerate(sets)]).to_csv(folder / "sets.csv", index=False)
    done = subprocess.run([rscript, str(folder / "batch.R"), str(folder / "sets.csv"), control], capture_output=True,
                          text=True, check=True)
    return pd.read_csv(io.StringIO(done.stdout))


def compare(data: pd.DataFrame, theirs: pd.DataFrame) -> dict:
    """Our fit of one set beside lme4's: the REML criteria (ours, and ours at lme4's theta), and
    per contrast the relative differences of estimate, SE, df, p and CI limits."""
    from stylestudy.analysis.models.lmm import method_model

    model = method_model(data, list(METHODS), "cs")
    fit = model.fit()
    theta = theirs[theirs["kind"] == "theta"].set_index("name")["estimate"]
    lme4 = float(theirs.loc[theirs["kind"] == "deviance", "estimate"].iloc[0])
    lme4_theta = np.array([theta[f"{t.name}.(Intercept)"] for t in model.terms])
    out = {"ours": fit.deviance, "lme4": lme4, "gap": fit.deviance - lme4, "converged": fit.converged,
           "ours at lme4's theta": model.profiled_deviance(lme4_theta),
           "theta gap": float(np.abs(fit.theta - lme4_theta).max()),
           "singular terms": ",".join(fit.singular_terms), "polished": fit.polish is not None}
    contrasts = theirs[theirs["kind"] == "contrast"].set_index("name")
    at_theirs = model.add_satterthwaite(model.fit_at(lme4_theta))
    out.update({f"rel {k}": v for k, v in _differences(fit, contrasts).items()})
    out.update({f"at lme4's theta: rel {k}": v for k, v in _differences(at_theirs, contrasts).items()})
    out["df capped"] = any(fit.contrast(c)["df"] >= fit.n_obs - len(fit.beta) for c in _contrast_vectors())
    return out


def _contrast_vectors() -> list[np.ndarray]:
    vectors = []
    for a, b in combinations(range(len(METHODS)), 2):
        c = np.zeros(len(METHODS))
        c[a] += a > 0
        c[b] -= b > 0
        vectors.append(c)
    return vectors


def _differences(fit, contrasts: pd.DataFrame) -> dict[str, float]:
    """Largest relative difference per quantity over the method pairs; the estimate and CI limits
    (which can be ~0) relative to lmerTest's SE."""
    worst = {key: 0.0 for key in ("estimate", "se", "df", "p", "ci")}
    for (a, b), c in zip(combinations(range(len(METHODS)), 2), _contrast_vectors()):
        ours = fit.contrast(c)
        row = contrasts.loc[f"{METHODS[a]}-{METHODS[b]}"]
        for key, mine, r in (("estimate", ours["estimate"], row["estimate"]), ("se", ours["se"], row["se"]),
                             ("df", ours["df"], row["df"]), ("p", ours["p"], row["p"]),
                             ("ci", ours["ci_low"], row["lower"]), ("ci", ours["ci_high"], row["upper"])):
            scale = row["se"] if key in ("estimate", "ci") else max(abs(r), 1e-12)
            worst[key] = max(worst[key], abs(mine - r) / scale)
    return worst


def run(rscript: str, sets: int, seed: int = 0, control: str = "default") -> pd.DataFrame:
    """One row per set: its design, the criteria and the relative differences."""
    generated_sets = [generated(k, seed) for k in range(sets)]
    with tempfile.TemporaryDirectory() as tmp:
        theirs = lme4_fits(rscript, [d for d, _ in generated_sets], Path(tmp), control)
    rows = []
    for k, (data, design) in enumerate(generated_sets):
        rows.append({"set": k, **design, "n": len(data), **compare(data, theirs[theirs["dataset"] == k])})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lme4-control", choices=("default", "tight"), default="default",
                        help="lme4's optimiser at its default tolerances, or run to 1e-14 (the same optimum as ours)")
    parser.add_argument("--csv", default="", help="also write the per-set table here")
    args = parser.parse_args()
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise SystemExit("Rscript with lme4 and lmerTest is needed (apt-get install r-base-core r-cran-lme4 "
                         "r-cran-lmertest)")
    t0 = time.perf_counter()
    table = run(rscript, args.sets, args.seed, args.lme4_control)
    same = table[(table["gap"].abs() <= 1e-6) & ~table["df capped"]]
    pd.set_option("display.width", 250)
    print(table.drop(columns=["polished"] + [c for c in table.columns if c.startswith("at lme4")]).to_string(
        index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\n{len(table)} sets ({time.perf_counter() - t0:.0f} s): our REML criterion worse than lme4's by more than "
          f"1e-4 in {int((table['gap'] > 1e-4).sum())}; largest gap ours - lme4 {table['gap'].max():+.2e}, "
          f"smallest {table['gap'].min():+.2e}; not converged {int((~table['converged']).sum())}; "
          f"Nelder-Mead polish in {int(table['polished'].sum())}; singular (a term at 0) in "
          f"{int((table['singular terms'] != '').sum())}")
    print(f"df capped at n - p (lmerTest does not cap) in {int(table['df capped'].sum())}")
    for label, part in (("2 participants", same[same["participants"] == 2]),
                        ("3-40 participants", same[same["participants"] > 2])):
        print(f"{label}: same optimum (criteria within 1e-6), no df capped, in {len(part)}; there the largest "
              "relative difference: " + ", ".join(f"{k[4:]} {part[k].max():.1e}" for k in part.columns
                                                  if k.startswith("rel "))
              + "; ours evaluated at lme4's theta: "
              + ", ".join(f"{k[21:]} {part[k].max():.1e}" for k in part.columns if k.startswith("at lme4's theta: rel "))
              + " (estimate and CI limits relative to the SE)")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
