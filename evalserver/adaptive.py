"""Adaptive pairwise sampling: the next comparison is the one expected to teach the most.

``[protocol] sampling = "adaptive"`` (``kind = "pairwise"``).  Comparisons are only ever made
within an item (the methods' images of one content/style cell).  From the counts of every
answered comparison (``evalserver.adaptive_store`` keeps them in the database) the server fits
the Thurstone posterior of ``evalserver.pairwise_posterior`` over every (item, method) score and
hands the participant the pair with the largest expected information gain about the target
(``[protocol] adaptive_target``: ``"methods"``, the methods' mean scores over the items, which the
ranking reports; or ``"items"``, every (item, method) score as in ASAP) or, for ``"ranking"``,
the most method pairs it is expected to put in the right order, or, for ``"ranking+methods"``,
the pair best at both, each gain taken as a share of its best pair's (the order alone leaves
the score scale of settled pairs to the prior; the information alone spends comparisons on
pairs whose order is clear); skipping pairs this participant was already shown and discounting
pairs in flight to others (each counts as one expected answer).  Ties in gain are broken by a
random generator seeded with the participant's seed and trial, so the choice is a deterministic
function of the database.

This module is pure (no database): the server and ``simulate`` call the same ``choose``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import combinations

import numpy as np

from stylestudy.engine.study.manifest import StudyManifest
from stylestudy.engine.study.schema import ADAPTIVE_TARGETS
from stylestudy.evalserver.pairwise_posterior import Posterior, expected_gain, fit, pair_moments, ranking, ranking_gain

TIE_TOLERANCE = 1e-9  # gains this close (relative) count as equal
NO_GAIN = 1e-12  # "ranking+methods": a gain below this (method pairs or nats) is rounding, counted as 0


@dataclass(frozen=True)
class Design:
    """Which items and methods the sampler chooses among (every cell that all methods filled) and
    what its gain is about (``target``: one of ``ADAPTIVE_TARGETS``)."""

    items: tuple[str, ...]
    methods: tuple[str, ...]
    target: str = ADAPTIVE_TARGETS[0]

    @classmethod
    def from_manifest(cls, manifest: StudyManifest) -> Design:
        methods = tuple(manifest.methods)
        items = tuple(sorted(cell for cell, members in manifest.cells.items() if len(members) == len(methods)))
        return cls(items, methods, manifest.protocol.adaptive_target)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Method index pairs (i < j), as two arrays."""
        ij = list(combinations(range(len(self.methods)), 2))
        return np.array([i for i, _ in ij], dtype=int), np.array([j for _, j in ij], dtype=int)

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {item: k for k, item in enumerate(self.items)}

    @cached_property
    def method_index(self) -> dict[str, int]:
        return {m: i for i, m in enumerate(self.methods)}

    @property
    def size(self) -> int:
        """All possible comparisons (item x method pair)."""
        return len(self.items) * len(self.pairs[0])

    def key(self, item: str, a: str, b: str) -> tuple[int, int, int] | None:
        """(item index, i, j) with i < j, or None for an item or method outside the design."""
        k, i, j = self.item_index.get(item), self.method_index.get(a), self.method_index.get(b)
        if k is None or i is None or j is None or i == j:
            return None
        return (k, i, j) if i < j else (k, j, i)

    def wins(self, counts: Iterable[tuple[str, str, str, float, float, float]]) -> np.ndarray:
        """``wins[k, i, j]`` from rows (item, a, b, a_wins, b_wins, ties); a tie is half a win each way."""
        w = np.zeros((len(self.items), len(self.methods), len(self.methods)))
        for item, a, b, a_wins, b_wins, ties in counts:
            k, i, j = self.item_index.get(item), self.method_index.get(a), self.method_index.get(b)
            if k is None or i is None or j is None:
                continue
            w[k, i, j] += a_wins + 0.5 * ties
            w[k, j, i] += b_wins + 0.5 * ties
        return w


def gains(design: Design, post: Posterior, in_flight: Mapping[tuple[int, int, int], int] | None = None) -> np.ndarray:
    """What a comparison of every (item, method pair) is expected to give (rows items, columns
    ``design.pairs``): information in nats, method pairs put in order for ``"ranking"``, and for
    ``"ranking+methods"`` the mean of the two, each divided by its largest value (0..1)."""
    i, j = design.pairs
    pending = np.zeros((len(design.items), len(i)))
    column = {(a, b): c for c, (a, b) in enumerate(zip(i.tolist(), j.tolist()))}
    for (k, a, b), n in (in_flight or {}).items():
        pending[k, column[(a, b)]] += n
    if design.target == "ranking":
        return ranking_gain(post, i, j, pending)
    if design.target == "ranking+methods":
        return 0.5 * (_share(ranking_gain(post, i, j, pending))
                      + _share(expected_gain(*pair_moments(post, i, j, "methods"), pending)))
    return expected_gain(*pair_moments(post, i, j, design.target), pending)


def _share(gain: np.ndarray) -> np.ndarray:
    """Each gain as a share of the largest; gains within rounding of 0 (a settled order's ranking
    gain comes out near ±1e-27) count as 0, so they cannot be blown up to a share of 1."""
    gain = np.where(gain > NO_GAIN, gain, 0.0)
    return gain / gain.max() if gain.size and gain.max() > 0 else gain


def choose(design: Design, post: Posterior, shown: Iterable[tuple[int, int, int]],
           in_flight: Mapping[tuple[int, int, int], int], rng: random.Random) -> tuple[tuple[int, int, int], float] | None:
    """The (item, i, j) to compare next and its expected gain; None when ``shown`` holds every pair."""
    gain = gains(design, post, in_flight)
    i, j = design.pairs
    column = {(a, b): c for c, (a, b) in enumerate(zip(i.tolist(), j.tolist()))}
    for k, a, b in shown:
        gain[k, column[(a, b)]] = -np.inf
    best = gain.max() if gain.size else -np.inf
    if not np.isfinite(best):
        return None
    ties = np.flatnonzero(gain.ravel() >= best - TIE_TOLERANCE * max(abs(best), 1e-12))
    flat = int(ties[rng.randrange(len(ties))])
    k, c = divmod(flat, gain.shape[1])
    return (k, int(i[c]), int(j[c])), float(best)


def participant_rng(seed: int, trial: int) -> random.Random:
    """The tie-breaking generator of one participant's trial (and of its left/right order)."""
    return random.Random(seed * 1_000_003 + trial)


def next_entry(manifest: StudyManifest, design: Design, post: Posterior, shown: Iterable[tuple[int, int, int]],
               in_flight: Mapping[tuple[int, int, int], int], seed: int, trial: int, entry: dict) -> tuple[dict, tuple]:
    """The plan entry of an adaptive trial with its pair chosen and its two conditions in a random
    left/right order; and the pair's (item, i, j).  The server and ``simulate`` both call this."""
    rng = participant_rng(seed, trial)
    picked = choose(design, post, shown, in_flight, rng)
    if picked is None:  # cannot happen: a participant's budget is at most the number of pairs
        raise RuntimeError("no comparison left for this participant")
    (k, i, j), _gain = picked
    item, a, b = design.items[k], design.methods[i], design.methods[j]
    by_method = {c.method: c.id for c in manifest.cells[item]}
    ids = [by_method[a], by_method[b]]
    rng.shuffle(ids)
    return dict(entry, pair_id=f"{item}:{a}|{b}", conditions=ids), (k, i, j)


def outcome_of(manifest: StudyManifest, entry: dict, choice: int | None) -> tuple[str, str, str, float | None]:
    """(item, a, b, outcome) of an answered adaptive trial: 1 = a preferred, 0 = b, 0.5 = no
    preference (``choice`` 0), None = no answer; ``choice`` 1/2 is the image shown first/second."""
    item, pair = entry["pair_id"].rsplit(":", 1)
    a, b = pair.split("|")
    methods = [manifest.by_id[cid].method for cid in entry["conditions"]]
    outcome = None if choice is None else 0.5 if choice == 0 else float(methods[choice - 1] == a)
    return item, a, b, outcome


def stop_reasons(rules: list[str], design: Design, post: Posterior) -> list[str]:
    """The ``stop_when`` rules that hold now: ``comparisons:N`` (answered comparisons ≥ N),
    ``separated`` (every adjacent pair of the ranking has a 95% interval that excludes 0)."""
    def holds(rule: str) -> bool:
        name, _, value = rule.partition(":")
        if name == "comparisons":
            return post.comparisons >= int(value)
        return post.comparisons > 0 and ranking(post, list(design.methods)).separated()

    return [rule for rule in rules if holds(rule)]


def summary(design: Design, post: Posterior, in_flight: Mapping[tuple[int, int, int], int], rules: list[str]) -> dict:
    """What the admin sees: the ranking with 95% intervals, adjacent differences, the best next
    comparison's expected gain (nats; method pairs put in order for "ranking" and
    "ranking+methods", whose combined value has no unit) and which stop rules hold."""
    rank = ranking(post, list(design.methods))
    gain = gains(replace(design, target="ranking") if design.target == "ranking+methods" else design, post, in_flight)
    return {"comparisons": post.comparisons, "possible": design.size, "items": len(design.items),
            "ranking": rank.rows(), "adjacent": rank.adjacent(),
            "next_gain": max(float(gain.max()), 0.0) if gain.size else 0.0,  # a settled order: rounding below 0
            "gain_unit": "method pairs put in order" if design.target.startswith("ranking") else "nats",
            "in_flight": int(sum(in_flight.values())),
            "stop_when": list(rules), "stop_met": stop_reasons(rules, design, post)}


def posterior(design: Design, counts: Iterable[tuple[str, str, str, float, float, float]]) -> Posterior:
    return fit(design.wins(counts))
