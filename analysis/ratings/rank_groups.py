"""Rank groups that show what the tests did not resolve: a compact letter display.

Methods sharing a letter were not told apart by the report's pairwise tests (Holm-corrected
p >= alpha); methods with no letter in common were.  Letters by the insert-and-absorb algorithm
(Piepho 2004, Journal of Computational and Graphical Statistics 13:456), 'a' for the group of
the best-ranked method.  A strict 1..m rank would claim more than the data show.
"""

from __future__ import annotations

from string import ascii_lowercase

import pandas as pd


def letters(order: list[str], separated: set[frozenset[str]]) -> dict[str, str]:
    """Letters per method; ``order`` best first, ``separated`` the pairs the tests told apart."""
    columns: list[set[str]] = [set(order)]
    for pair in separated:
        i, j = tuple(pair)
        split: list[set[str]] = []
        for col in columns:
            if i in col and j in col:
                split += [col - {i}, col - {j}]
            else:
                split.append(col)
        columns = [c for k, c in enumerate(split)  # absorb: drop columns inside another one
                   if c and not any(c < o or (c == o and m < k) for m, o in enumerate(split))]
    rank = {m: k for k, m in enumerate(order)}
    columns.sort(key=lambda c: sorted(rank[m] for m in c))
    names = [ascii_lowercase[k] if k < 26 else f"[{k}]" for k in range(len(columns))]
    return {m: "".join(n for n, c in zip(names, columns) if m in c) for m in order}


def from_pair_tests(order: list[str], tests: pd.DataFrame, p_column: str = "p_holm", alpha: float = 0.05,
                    a: str = "a", b: str = "b") -> dict[str, str]:
    """Letters from a pair-test table (one row per method pair; untested pairs stay together)."""
    separated = set()
    if len(tests):
        for x, y, p in tests[[a, b, p_column]].itertuples(index=False, name=None):
            if pd.notna(p) and p < alpha:  # NaN: not tested, not separated
                separated.add(frozenset((x, y)))
    return letters(order, separated)
