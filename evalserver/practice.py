"""Practice trials: ``[protocol] practice = N`` trials in the real interface before the rated ones.

They show the briefing stimuli (a generated study's briefing styles, an import's ``--briefing``
items), never a rated condition, so nothing a participant practises on is analysed; their plan
entries have role ``practice`` (the export's ``role`` column, block ``practice``) and every
analysis keeps only role ``rated``.  A trial takes as many stimuli as the protocol shows (paired
and pairwise two of one briefing cell when it has two, else two different briefing stimuli; acr
one); with fewer briefing stimuli than trials, they are used again.
"""

from __future__ import annotations

import random

from stylestudy.engine.study.manifest import StudyManifest


def practice_plan(manifest: StudyManifest, seed: int) -> list[dict]:
    p = manifest.protocol
    briefing = [c.id for c in manifest.briefing]
    if not p.practice or not briefing:
        return []
    rng = random.Random(seed ^ 0x5EED)  # its own stream: the rated plan is the same with or without practice
    size = 1 if p.kind == "acr" else 2
    if size > len(briefing):
        return []
    cells: dict[str, list[str]] = {}
    for c in manifest.briefing:
        cells.setdefault(c.pair_id, []).append(c.id)
    groups = [ids[:2] for ids in cells.values() if len(ids) >= 2] if size == 2 else [[cid] for cid in briefing]
    if not groups:  # no briefing cell holds two stimuli: pair different ones
        groups = [briefing[k:k + 2] for k in range(0, len(briefing) - 1, 2)]
    plan = []
    for k in range(p.practice):
        if k % len(groups) == 0:
            rng.shuffle(groups)
        members = list(groups[k % len(groups)])
        rng.shuffle(members)
        plan.append({"pair_id": f"practice-{k + 1}", "conditions": members, "attention": None, "role": "practice",
                     "protocol": p.kind})
    return plan
