"""The participants' score of each condition, and its bootstrap over participants and items.

* ``acr`` and ``paired``: the MOS (mean rating) per condition; its 95% half-width t(M-1) s / sqrt(M).
* ``pairwise``: a JOD scale per cell (the conditions compared with each other, ``pair_id``), mean
  0 in each cell, fitted by maximum likelihood with a wide prior (sd 5 JOD) so a condition that
  always wins stays finite; its 95% half-width 1.96 x the bootstrap SE.

Each bootstrap replicate draws participants and items with replacement (both at once), and then
the conditions of each drawn item with replacement (two-stage: an item's conditions are a sample
too, and with few items the item draw alone gives intervals too narrow); a condition's score
comes from the drawn participants' answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from stylestudy.analysis.pairwise import preference, scaling
from stylestudy.analysis.pairwise.scale import RESAMPLE_PRIOR_SD, participant_matrices


@dataclass
class Subjective:
    """Per-condition scores, their intervals and their bootstrap replicates (the draws kept, so the
    choice shares resample the same participants and items)."""

    kind: str  # "mos" or "jod"
    conditions: list[str]
    item_index: np.ndarray  # (C,) index of each condition's item
    participants: list[str]
    score: np.ndarray  # (C,)
    ci95: np.ndarray  # (C,) 95% half-width of each score
    boot: np.ndarray  # (B, C) scores of each replicate (NaN: no drawn participant rated it)
    condition_weight: np.ndarray  # (B, C) times each condition was drawn (its item, then it within the item)
    participant_draws: np.ndarray  # (B, P) times each participant was drawn
    item_draws: np.ndarray  # (B, I)


def _draws(rng: np.random.Generator, reps: int, n: int) -> np.ndarray:
    return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(reps)]).astype(float)


def condition_draws(rng: np.random.Generator, item_draws: np.ndarray, item_index: np.ndarray) -> np.ndarray:
    """(B, C): each drawn copy of an item draws its n conditions with replacement; the copies together
    are one multinomial of (copies x n) draws."""
    out = np.zeros((len(item_draws), len(item_index)))
    for i in np.unique(item_index):
        members = np.flatnonzero(item_index == i)
        for b, copies in enumerate(item_draws[:, i].astype(int)):
            out[b, members] = rng.multinomial(copies * len(members), np.full(len(members), 1 / len(members)))
    return out


def _frame(usable: pd.DataFrame, items: pd.Series) -> tuple[list[str], np.ndarray, list[str]]:
    conditions = sorted(usable["condition_id"].unique())
    names = sorted(items.loc[conditions].unique())
    index = {n: i for i, n in enumerate(names)}
    return conditions, np.array([index[items[c]] for c in conditions]), names


def from_ratings(usable: pd.DataFrame, items: pd.Series, reps: int, rng: np.random.Generator) -> Subjective:
    """MOS per condition (acr, paired)."""
    conditions, item_index, names = _frame(usable, items)
    R = usable.pivot_table(index="participant_id", columns="condition_id", values="rating", aggfunc="mean")
    R = R.reindex(columns=conditions)
    values = R.to_numpy(float)
    rated = np.isfinite(values)
    filled = np.where(rated, values, 0.0)
    M = rated.sum(0)
    score = filled.sum(0) / M
    several = M > 1
    sd = np.full(len(conditions), np.nan)
    sd[several] = np.sqrt(((filled - score) ** 2 * rated).sum(0)[several] / (M[several] - 1))
    ci95 = np.where(several, sps.t.ppf(0.975, np.maximum(M - 1, 1)) * sd / np.sqrt(M), np.nan)
    pw, iw = _draws(rng, reps, len(R)), _draws(rng, reps, len(names))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (pw @ filled) / (pw @ rated)
    return Subjective("mos", conditions, item_index, list(R.index), score, ci95, boot,
                      condition_draws(rng, iw, item_index), pw, iw)


def comparisons(usable: pd.DataFrame) -> pd.DataFrame:
    """The pairwise comparisons between conditions (a, b condition ids), with their cell."""
    comps = preference.comparisons(usable.assign(method=usable["condition_id"]))
    cell = usable.drop_duplicates("condition_id").set_index("condition_id")["pair_id"]
    return comps.assign(cell=comps["a"].map(cell))


def from_pairwise(usable: pd.DataFrame, items: pd.Series, reps: int, rng: np.random.Generator) -> Subjective:
    """JOD per condition, per cell (pairwise)."""
    conditions, item_index, names = _frame(usable, items)
    comps = comparisons(usable)
    participants = sorted(usable["participant_id"].unique())
    pw, iw = _draws(rng, reps, len(participants)), _draws(rng, reps, len(names))
    score, boot = np.full(len(conditions), np.nan), np.full((reps, len(conditions)), np.nan)
    where = {c: k for k, c in enumerate(conditions)}
    for _, part in comps.groupby("cell"):
        members = sorted(set(part["a"]) | set(part["b"]))
        Wp, pids = participant_matrices(part, members)
        full = np.zeros((len(participants), len(members), len(members)))
        full[[participants.index(p) for p in pids]] = Wp
        cols = [where[m] for m in members]
        score[cols] = scaling.fit(full.sum(0), "jod", RESAMPLE_PRIOR_SD)
        boot[:, cols] = scaling.fit(np.tensordot(pw, full, axes=1), "jod", RESAMPLE_PRIOR_SD)
    ci95 = 1.96 * np.nanstd(boot, axis=0, ddof=1)
    return Subjective("jod", conditions, item_index, participants, score, ci95, boot,
                      condition_draws(rng, iw, item_index), pw, iw)
