"""The compact letter display: the same letters as Piepho's insert-and-absorb where that finishes,
polynomial where it did not (61 methods did not finish in 13 minutes), and a plain note past a
readable size."""

from __future__ import annotations

import re
import time
from itertools import combinations
from string import ascii_lowercase

import numpy as np
import pandas as pd
import pytest

from stylestudy.analysis.ratings import rank_groups

LETTER = r"\[\d+\]|[a-z]"  # 'a'..'z', then '[26]', '[27]', ...


def _insert_absorb(order: list[str], separated: set[frozenset[str]]) -> dict[str, str]:
    """The display before this change (Piepho 2004, as it was in rank_groups.py): the oracle."""
    columns: list[set[str]] = [set(order)]
    for pair in separated:
        i, j = tuple(pair)
        split: list[set[str]] = []
        for col in columns:
            if i in col and j in col:
                split += [col - {i}, col - {j}]
            else:
                split.append(col)
        columns = [c for k, c in enumerate(split)
                   if c and not any(c < o or (c == o and m < k) for m, o in enumerate(split))]
    rank = {m: k for k, m in enumerate(order)}
    columns.sort(key=lambda c: sorted(rank[m] for m in c))
    names = [ascii_lowercase[k] if k < 26 else f"[{k}]" for k in range(len(columns))]
    return {m: "".join(n for n, c in zip(names, columns) if m in c) for m in order}


def _sorted_means_pattern(rng, m: int, width: float) -> set[frozenset[str]]:
    """Pairs told apart when means differ by more than ``width`` (the consecutive pattern)."""
    means = np.sort(rng.normal(0, 1, m))[::-1]
    return {frozenset((f"m{i}", f"m{j}")) for i, j in combinations(range(m), 2) if means[i] - means[j] > width}


def _check_display(order, separated, got):
    for x, y in combinations(order, 2):
        shares = bool(set(re.findall(LETTER, got[x])) & set(re.findall(LETTER, got[y])))
        assert shares == (frozenset((x, y)) not in separated), (x, y)


@pytest.mark.parametrize("seed", range(60))
def test_letters_equal_insert_and_absorb_on_random_patterns(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 11))
    order = [f"m{i}" for i in range(m)]
    if seed % 3 == 1:  # any pattern at all (mostly not consecutive: the Bron–Kerbosch path)
        separated = {frozenset(p) for p in combinations(order, 2) if rng.random() < rng.uniform(0.1, 0.7)}
    elif seed % 3 == 2:  # sorted means with unequal uncertainty: nearly consecutive (both paths)
        means, se = np.sort(rng.normal(0, 1, m))[::-1], rng.uniform(0.05, 0.5, m)
        separated = {frozenset((order[i], order[j])) for i, j in combinations(range(m), 2)
                     if means[i] - means[j] > 2 * np.hypot(se[i], se[j])}
    else:  # the usual pattern of tests on sorted means (the sweep)
        separated = _sorted_means_pattern(rng, m, rng.uniform(0.2, 1.5))
    got = rank_groups.letters(order, separated)
    assert got == _insert_absorb(order, separated)
    _check_display(order, separated, got)


def test_a_hand_example_that_is_not_consecutive_along_the_order():
    order = ["A", "B", "C", "D"]
    # not consecutive: A with C but not with B (B-C together too); cliques {A, C}, {B, C}, {D}
    assert rank_groups.letters(order, {frozenset("AB"), frozenset("AD"), frozenset("BD"), frozenset("CD")}) == {
        "A": "a", "B": "b", "C": "ab", "D": "c"}


def test_together_past_a_gap_further_down_the_order_is_not_taken_for_consecutive():
    # C is told apart from D but not from E (below D): not consecutive, so not runs {A, B, C}, {D, E}
    order = ["A", "B", "C", "D", "E"]
    separated = {frozenset(p) for p in ("AD", "AE", "BD", "BE", "CD")}
    got = rank_groups.letters(order, separated)
    assert got == _insert_absorb(order, separated) == {"A": "a", "B": "a", "C": "ab", "D": "c", "E": "bc"}


def test_one_hundred_methods_in_well_under_a_second_on_sorted_means():
    rng = np.random.default_rng(3)
    order = [f"m{i}" for i in range(100)]
    separated = _sorted_means_pattern(rng, 100, 0.8)
    t0 = time.process_time()
    got = rank_groups.letters(order, separated)
    seconds = time.process_time() - t0
    assert got is not None and seconds < 1.0  # the old algorithm did not finish 61 methods in 13 minutes
    _check_display(order, separated, got)


def test_one_hundred_methods_with_unequal_uncertainty_not_consecutive():
    # tests with unequal standard errors: a precise method can be told apart from a nearer one
    # but not from a farther, vaguer one, so "not told apart" is not consecutive along the order
    rng = np.random.default_rng(5)
    means, se = np.sort(rng.normal(0, 1, 100))[::-1], rng.uniform(0.05, 0.4, 100)
    order = [f"m{i}" for i in range(100)]
    separated = {frozenset((order[i], order[j])) for i, j in combinations(range(100), 2)
                 if abs(means[i] - means[j]) > 2 * np.hypot(se[i], se[j])}
    t0 = time.process_time()
    got = rank_groups.letters(order, separated)
    assert time.process_time() - t0 < 2.0
    assert got is not None
    _check_display(order, separated, got)


def test_a_pattern_needing_too_many_letters_gets_the_plain_note():
    # 40 methods in 20 told-apart pairs (2i, 2i+1), everything else together: 2^20 maximal cliques
    order = [f"m{i}" for i in range(40)]
    separated = {frozenset((order[2 * i], order[2 * i + 1])) for i in range(20)}
    t0 = time.process_time()
    assert rank_groups.letters(order, separated) is None
    assert time.process_time() - t0 < 5.0
    table = pd.DataFrame({"method": order})
    assert "No rank-group letters" in rank_groups.note(table)
    assert rank_groups.note(table.assign(rank_group="a")) == ""
