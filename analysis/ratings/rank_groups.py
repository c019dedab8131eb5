"""Rank groups that show what the tests did not resolve: a compact letter display.

Methods sharing a letter were not told apart by the report's pairwise tests (Holm-corrected
p >= alpha); methods with no letter in common were.  The letters are the maximal cliques of the
"not told apart" graph (what Piepho's 2004 insert-and-absorb produces, J. Comput. Graph. Stat.
13:456), 'a' for the group of the best-ranked method.  A strict 1..m rank would claim more than
the data show.

Insert-and-absorb splits columns once per separated pair and grew exponentially: 61 methods did not
finish in 13 minutes.  Here the cliques come from the ranking's order: when "not told apart" is
consecutive along it (a method together with one ranked below is together with every method
between them, the usual pattern of tests on sorted means), the maximal cliques are the maximal runs
found in one sweep, O(m^2).  Otherwise Bron–Kerbosch with pivoting lists them under a budget of
m^3 steps; a pattern that needs more, or more letters than methods (at least 26), gets no letters
and a plain note instead (``letters`` returns None): such a display would not simplify anything.
"""

from __future__ import annotations

from string import ascii_lowercase

import pandas as pd

MIN_LETTERS = 26  # a display may always use a..z; beyond, at most one letter per method


def _consecutive_runs(order: list[str], together: list[int]) -> list[int] | None:
    """Maximal runs (bit masks over ``order``) when "together" is consecutive along it, else None."""
    m = len(order)
    reach = []
    for i in range(m):
        j = i
        while j + 1 < m and together[i] >> (j + 1) & 1:
            j += 1
        if together[i] >> (j + 1):  # together with a method ranked beyond one it was told apart from
            return None
        reach.append(j)
    if any(reach[i + 1] < reach[i] for i in range(m - 1)):  # i with k but i + 1 not with k
        return None
    return [((1 << (reach[i] + 1)) - 1) & ~((1 << i) - 1)
            for i in range(m) if i == 0 or reach[i] > reach[i - 1]]


class _OverBudget(Exception):
    pass


def _bron_kerbosch(together: list[int], budget: int) -> list[int]:
    """Every maximal clique (bit masks) by Bron–Kerbosch with Tomita's pivot; _OverBudget past ``budget`` calls."""
    cliques: list[int] = []
    steps = 0

    def expand(r: int, p: int, x: int) -> None:
        nonlocal steps
        steps += 1
        if steps > budget:
            raise _OverBudget
        if not p and not x:
            cliques.append(r)
            return
        pivot = max(_bits(p | x), key=lambda u: (p & together[u]).bit_count())
        for v in _bits(p & ~together[pivot]):
            expand(r | 1 << v, p & together[v], x & together[v])
            p &= ~(1 << v)
            x |= 1 << v

    expand(0, (1 << len(together)) - 1, 0)
    return cliques


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def letters(order: list[str], separated: set[frozenset[str]]) -> dict[str, str] | None:
    """Letters per method (``order`` best first, ``separated`` the pairs the tests told apart), or
    None where the pattern needs more letters than methods (and than 26) or m^3 search steps."""
    index = {m: k for k, m in enumerate(order)}
    full = (1 << len(order)) - 1
    together = [full] * len(order)  # each method is "together" with itself
    for pair in separated:
        i, j = (index[m] for m in pair)
        together[i] &= ~(1 << j)
        together[j] &= ~(1 << i)
    columns = _consecutive_runs(order, together)
    if columns is None:
        try:
            columns = _bron_kerbosch([t & ~(1 << k) for k, t in enumerate(together)], max(len(order) ** 3, 1000))
        except _OverBudget:
            return None
    if len(columns) > max(MIN_LETTERS, len(order)):
        return None
    columns.sort(key=_bits)
    names = [ascii_lowercase[k] if k < 26 else f"[{k}]" for k in range(len(columns))]
    return {m: "".join(n for n, c in zip(names, columns) if c >> k & 1) for k, m in enumerate(order)}


def from_pair_tests(order: list[str], tests: pd.DataFrame, p_column: str = "p_holm", alpha: float = 0.05,
                    a: str = "a", b: str = "b") -> dict[str, str] | None:
    """Letters from a pair-test table (one row per method pair; untested pairs stay together)."""
    separated = set()
    if len(tests):
        for x, y, p in tests[[a, b, p_column]].itertuples(index=False, name=None):
            if pd.notna(p) and p < alpha:  # NaN: not tested, not separated
                separated.add(frozenset((x, y)))
    return letters(order, separated)


def note(table: pd.DataFrame) -> str:
    """What the report says where a ranking table has no letters (``from_pair_tests`` gave None)."""
    return ("" if "rank_group" in table else
            " No rank-group letters: the tests' pattern needs more letters than methods or more search than the "
            "method count cubed; pair_tests.csv says which pairs were told apart.")
