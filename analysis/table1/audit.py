"""Consistency audit of a published mean±std table of integer ratings (GRIM/GRIMMER-style), and
reconstruction of the rating multisets each cell allows (SPRITE-style, but exhaustive).

With n ratings on a 1..k scale there are C(n+k-1, k-1) possible multisets (1001 for n=10, k=5),
so instead of SPRITE's random search we enumerate them all: a cell is consistent with a
standard-deviation formula when some multiset has a mean and a standard deviation (ddof=0 or
ddof=1) that round to the printed values.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PAPER_TABLE = Path(__file__).parent.parent / "data" / "paper_table1.csv"
EPS = 1e-9


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    """A published table: columns block,row,method,column,mean,std ('#' lines are comments)."""
    frame = pd.read_csv(path or PAPER_TABLE, comment="#")
    missing = {"block", "row", "method", "column", "mean", "std"} - set(frame.columns)
    if missing:
        from stylestudy.engine.study.errors import StyleStudyError

        raise StyleStudyError(f"{path} lacks column(s) {', '.join(sorted(missing))}; need block,row,method,column,mean,std")
    return frame


@functools.lru_cache(maxsize=32)
def multisets(n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All multisets of n ratings in 1..k: (counts (M, k), mean, sd ddof=0, sd ddof=1)."""
    counts = np.array([np.bincount(c, minlength=k + 1)[1:] for c in
                       itertools.combinations_with_replacement(range(1, k + 1), n)])
    values = np.arange(1, k + 1)
    mean = counts @ values / n
    var0 = counts @ values**2 / n - mean**2
    var0 = np.clip(var0, 0, None)
    sd0 = np.sqrt(var0)
    sd1 = np.sqrt(var0 * n / (n - 1)) if n > 1 else np.full_like(sd0, np.nan)
    return counts, mean, sd0, sd1


def _matches(value: np.ndarray, printed: float, decimals: int) -> np.ndarray:
    return np.abs(value - printed) <= 0.5 * 10**-decimals + EPS


@dataclass
class CellAudit:
    grim: bool  # some integer sum gives the printed mean
    ddof0: np.ndarray  # count vectors consistent under ddof=0
    ddof1: np.ndarray

    @property
    def verdict(self) -> str:
        if not self.grim:
            return "mean impossible (GRIM)"
        a, b = len(self.ddof0) > 0, len(self.ddof1) > 0
        return {(True, True): "both", (True, False): "ddof=0", (False, True): "ddof=1", (False, False): "neither"}[(a, b)]


def audit_cell(mean: float, std: float, n: int, k: int, mean_decimals: int = 1, std_decimals: int = 2) -> CellAudit:
    counts, m, sd0, sd1 = multisets(n, k)
    ok_mean = _matches(m, mean, mean_decimals)
    return CellAudit(bool(ok_mean.any()), counts[ok_mean & _matches(sd0, std, std_decimals)],
                     counts[ok_mean & _matches(sd1, std, std_decimals)])


def describe_multiset(counts: np.ndarray) -> str:
    return " ".join(f"{v}×{c}" for v, c in enumerate(counts, start=1) if c)


def audit_table(table: pd.DataFrame, n: int = 10, k: int = 5, mean_decimals: int = 1, std_decimals: int = 2,
                other_n: range | None = None) -> pd.DataFrame:
    """Per cell: the verdict, how many multisets fit each formula, and which n would fit."""
    other_n = other_n or range(max(2, n - 3), n + 4)
    rows = []
    for _, r in table.iterrows():
        a = audit_cell(r["mean"], r["std"], n, k, mean_decimals, std_decimals)
        fits = [m for m in other_n if audit_cell(r["mean"], r["std"], m, k, mean_decimals, std_decimals).verdict
                not in ("neither", "mean impossible (GRIM)")]
        rows.append({"block": r["block"], "row": r["row"], "method": r["method"], "column": r["column"],
                     "mean": r["mean"], "std": r["std"], "verdict": a.verdict, "multisets_ddof0": len(a.ddof0),
                     "multisets_ddof1": len(a.ddof1), "n_that_fit": ",".join(map(str, fits)),
                     "example_ddof0": describe_multiset(a.ddof0[0]) if len(a.ddof0) else "",
                     "example_ddof1": describe_multiset(a.ddof1[0]) if len(a.ddof1) else ""})
    return pd.DataFrame(rows)


def audit_summary(audit: pd.DataFrame, n: int) -> str:
    counts = audit["verdict"].value_counts()
    parts = [f"{counts.get(v, 0)} {label}" for v, label in (("both", "fit both formulas (std 0 or other ties)"),
                                                             ("ddof=1", "fit only the sample std (ddof=1)"),
                                                             ("ddof=0", "fit only the population std (ddof=0)"),
                                                             ("neither", "fit neither"),
                                                             ("mean impossible (GRIM)", "have an impossible mean"))]
    text = f"Of {len(audit)} cells with n={n}: " + "; ".join(parts) + "."
    bad = audit[audit["verdict"].isin(["neither", "mean impossible (GRIM)"])]
    for _, r in bad.iterrows():
        text += (f" Cell {r['block']}{r['row']} {r['method']} c{r['column']} ({r['mean']:.1f}±{r['std']:.2f}) fits "
                 + (f"n in {{{r['n_that_fit']}}}" if r["n_that_fit"] else "no nearby n") + ".")
    return text
