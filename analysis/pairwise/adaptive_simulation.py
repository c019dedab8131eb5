"""Simulated participants taking an adaptive pairwise study with the server's own logic.

``SimulatedSampler`` holds in memory what the server keeps in its database (answered
comparison counts, the pairs each participant was shown) and fills each adaptive trial with
``evalserver.adaptive.next_entry``, the function the server calls, from the same posterior
(``evalserver.pairwise_posterior``).  Participants take part one after another, so nothing is
ever in flight.  Balanced plans pass through unchanged, so one loop simulates both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from stylestudy.engine.study.manifest import StudyManifest
from stylestudy.evalserver.adaptive import Design, next_entry, outcome_of
from stylestudy.evalserver.pairwise_posterior import Posterior, fit
from stylestudy.evalserver.schedule import trial_plan


class SimulatedSampler:
    def __init__(self, manifest: StudyManifest) -> None:
        self.manifest = manifest
        self.design = Design.from_manifest(manifest)
        m = len(self.design.methods)
        self.wins = np.zeros((len(self.design.items), m, m))
        self.shown: dict[int, list[tuple[int, int, int]]] = {}

    def posterior(self) -> Posterior:
        return fit(self.wins)

    def fill(self, participant: int, seed: int, trial: int, entry: dict) -> dict:
        """The entry as the server would serve it (adaptive trials get their pair now)."""
        if entry.get("sampling") != "adaptive" or entry.get("role") != "rated":
            return entry
        filled, key = next_entry(self.manifest, self.design, self.posterior(), self.shown.get(participant, []), {},
                                 seed, trial, entry)
        self.shown.setdefault(participant, []).append(key)
        return filled

    def record(self, entry: dict, choice: int | None) -> None:
        """Count a rated pairwise answer (balanced ones too, so both samplers share one estimate)."""
        if entry.get("role") != "rated" or entry.get("protocol") != "pairwise":
            return
        item, a, b, outcome = outcome_of(self.manifest, entry, choice)
        key = self.design.key(item, a, b)
        if outcome is None or key is None:
            return
        k, i, j = key
        first = self.design.methods[i] == a
        w_ab = outcome if first else 1 - outcome
        self.wins[k, i, j] += w_ab
        self.wins[k, j, i] += 1 - w_ab


def take_study(manifest: StudyManifest, participants: int, seed: int,
               answer: Callable[[int, dict], int | None]) -> Iterator[tuple[int, int, dict, int | None]]:
    """(participant, trial, served entry, choice) for each trial of each participant in turn;
    ``answer(participant, entry)`` gives the choice (1, 2, 0 = no preference, None)."""
    sampler = SimulatedSampler(manifest)
    for participant in range(participants):
        pseed = seed * 100_003 + participant
        for trial, entry in enumerate(trial_plan(manifest, pseed, ordinal=participant), start=1):
            served = sampler.fill(participant, pseed, trial, entry)
            choice = answer(participant, served)
            sampler.record(served, choice)
            yield participant, trial, served, choice
